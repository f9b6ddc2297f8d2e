// The grading store owns the staff's view of one item: its roster (who
// submitted, when, late, score), one student's submissions and their files,
// and saving a grade. Students never reach it: the server answers them 403.
import { defineStore } from 'pinia'
import * as api from '@/api/course'
import type { Grade, GradeInput, Roster, Submission } from '@/api/course'
import { decodeText } from '@/lib/filekind'

export interface FileView {
  loading: boolean
  /** The text, or null for a file that is not text. */
  text: string | null
  error: string
}

export const useGradingStore = defineStore('grading', {
  state: () => ({
    slug: '',
    roster: null as Roster | null,
    /** Everyone's grades of this item, by username (the feedback lives here). */
    grades: {} as Record<string, Grade>,
    loading: false,
    error: '',
    user: '',
    submissions: [] as Submission[],
    /** The submission number shown; the latest by default. */
    n: 0,
    files: {} as Record<string, FileView>,
  }),

  getters: {
    current: (s): Submission | undefined => s.submissions.find((x) => x.n === s.n),
    latestN: (s) => s.submissions.at(-1)?.n ?? 0,
    student: (s) => s.roster?.students.find((x) => x.username === s.user),
  },

  actions: {
    async loadRoster(slug: string) {
      if (slug !== this.slug) {
        this.$reset()
        this.slug = slug
      }
      this.loading = true
      try {
        const [roster, grades] = await Promise.all([api.roster(slug), api.grades()])
        if (this.slug !== slug) return
        this.roster = { ...roster, students: roster.students ?? [] }
        this.grades = {}
        for (const g of grades.grades ?? []) if (g.item === slug) this.grades[g.username] = g
        this.error = ''
      } catch (e) {
        this.error = e instanceof Error ? e.message : String(e)
      } finally {
        this.loading = false
      }
    },

    async openStudent(user: string) {
      this.user = user
      this.submissions = []
      this.n = 0
      this.files = {}
      if (!user) return
      const res = await api.submissionsOf(this.slug, user)
      if (this.user !== user) return
      this.submissions = res.submissions ?? []
      this.n = this.latestN
    },

    showSubmission(n: number) {
      this.n = n
      this.files = {}
    },

    async loadFile(name: string) {
      const n = this.n
      const key = `${n}/${name}`
      if (this.files[key] && !this.files[key].error) return
      this.files[key] = { loading: true, text: null, error: '' }
      try {
        const bytes = await api.submissionFile(this.slug, this.user, n, name)
        this.files[key] = { loading: false, text: decodeText(bytes), error: '' }
      } catch (e) {
        this.files[key] = { loading: false, text: null, error: e instanceof Error ? e.message : String(e) }
      }
    },

    async saveGrade(user: string, input: GradeInput) {
      const res = await api.setGrade(this.slug, user, input)
      this.grades[user] = res.grade
      const row = this.roster?.students.find((s) => s.username === user)
      if (row) {
        row.graded = true
        row.score = res.grade.score
        row.max_score = res.grade.max_score
      }
      return res.grade
    },
  },
})
