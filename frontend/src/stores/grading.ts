// The grading store owns the staff's view of one item: its roster (who
// submitted, when, late, score), one student's submissions and their files,
// and saving a grade. Students never reach it: the server answers them 403.
import { defineStore } from 'pinia'
import * as api from '@/api/course'
import type { Grade, GradeInput, Roster, Submission } from '@/api/course'
import * as gradingApi from '@/api/grading'
import type { Regrade, Summary } from '@/api/grading'
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
    /** The autograder's view of each student (latest run, proposed score), by username. */
    summaries: {} as Record<string, Summary>,
    /** Whether students see their scores and feedback. */
    released: false,
    /** The latest regrade of the item, with its progress. */
    regrade: null as Regrade | null,
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
        const [roster, grades, results] = await Promise.all([api.roster(slug), api.grades(), gradingApi.results(slug)])
        if (this.slug !== slug) return
        this.summaries = Object.fromEntries((results.students ?? []).map((x) => [x.username, x]))
        this.released = results.released
        this.regrade = results.regrade
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

    async setReleased(on: boolean) {
      this.released = (await gradingApi.setReleased(this.slug, on)).released
    },

    /** Starts a regrade of every latest submission; poll with pollRegrade. */
    async startRegrade() {
      this.regrade = (await gradingApi.regrade(this.slug)).regrade
    },

    async pollRegrade() {
      this.regrade = (await gradingApi.regradeStatus(this.slug)).regrade
      return this.regrade
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
      // The score that counts: the one typed, else the proposed one.
      const sum = this.summaries[user]
      if (sum) {
        sum.override = res.grade.score
        sum.score = res.grade.score ?? sum.proposed
        sum.max_score = res.grade.max_score
      }
      return res.grade
    },
  },
})
