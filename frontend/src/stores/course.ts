// The course store owns what a user sees of the course: published assignments
// and tests, their own submissions and grades, and the server clock the
// countdowns run on. It never decides a rule: whether a submit is accepted is
// the server's answer; the states here only say what to show and offer.
import { defineStore } from 'pinia'
import * as api from '@/api/course'
import type { Assignment, AssignmentInput, CourseItem, Grade, ItemKind, Submission, Test, TestInput } from '@/api/course'
import { clockOffset } from '@/lib/time'

export type AssignmentPhase = 'draft' | 'scheduled' | 'open' | 'late' | 'closed'

export interface AssignmentStatus {
  phase: AssignmentPhase
  submissions: number
  /** The latest submission: the one that counts. */
  last: Submission | null
  /** What a student reads in the list: "Not submitted", "Submitted 2 times". */
  label: string
  tone: 'info' | 'success' | 'warning' | 'danger'
}

/**
 * Where an assignment stands at the server time `now` (ms), and what the
 * student did: computed from the deadlines, so a list left open turns
 * "closed" at the deadline without asking the server again.
 */
export function assignmentStatus(a: Assignment, history: Submission[] | undefined, now: number): AssignmentStatus {
  const publish = a.publish_at ? Date.parse(a.publish_at) : null
  const due = Date.parse(a.due_at)
  const closes = Date.parse(a.closes_at)
  let phase: AssignmentPhase
  if (publish === null) phase = 'draft'
  else if (now < publish) phase = 'scheduled'
  else if (now < due) phase = 'open'
  else if (now < closes) phase = 'late'
  else phase = 'closed'
  const subs = history ?? []
  const last = subs.at(-1) ?? null
  let label = 'Not submitted'
  let tone: AssignmentStatus['tone'] = phase === 'closed' ? 'danger' : 'info'
  if (last) {
    label = `Submitted${subs.length > 1 ? ` ${subs.length} times` : ''}${last.late ? ' (late)' : ''}`
    tone = last.late ? 'warning' : 'success'
  }
  return { phase, submissions: subs.length, last, label, tone }
}

export type TestPhase = 'upcoming' | 'ready' | 'running' | 'finished' | 'ended'

export interface TestStatus {
  phase: TestPhase
  /** What the countdown counts to (ms, server time), or null. */
  target: number | null
  /** Milliseconds until target at `now`. */
  remaining: number
}

/**
 * Where a test stands for the asking student at server time `now`:
 * upcoming (before the window), ready (a timed test not yet started),
 * running (their clock is on), finished (their own time is up), ended
 * (the window closed).
 */
export function testStatus(t: Test, now: number): TestStatus {
  const start = Date.parse(t.starts_at)
  const end = Date.parse(t.ends_at)
  const myEnd = t.my_end ? Date.parse(t.my_end) : null
  const at = (phase: TestPhase, target: number | null): TestStatus => ({
    phase,
    target,
    remaining: target === null ? 0 : Math.max(0, target - now),
  })
  if (now < start) return at('upcoming', start)
  if (now >= end) return at('ended', null)
  if (t.duration_minutes !== null && !t.my_start) return at('ready', end)
  if (myEnd !== null && now >= myEnd) return at('finished', null)
  return at('running', myEnd ?? end)
}

/** The warnings a student gets as their test time runs out, in ms left. */
export const testWarnings = [5 * 60_000, 60_000]

/**
 * The warning due with `remaining` ms left, given those already given: the
 * most urgent one passed that was not given yet, or null. A student who
 * opens the IDE with 3 minutes left gets the 5-minute one at once, and
 * never two at a time.
 */
export function dueWarning(remaining: number, given: ReadonlySet<number>): number | null {
  const passed = testWarnings.filter((w) => remaining <= w)
  const last = passed.at(-1)
  return last === undefined || given.has(last) ? null : last
}

/** How long before a test's end the editor stops taking keys, so the last save lands in time. */
export const lockLeadMs = 4000

/** The folder a student works in during a test. */
export const testFolder = (slug: string, user: string) => `Submissions/${slug}/${user}`

let clockTimer: ReturnType<typeof setInterval> | null = null
let clockUsers = 0

export const useCourseStore = defineStore('course', {
  state: () => ({
    assignments: [] as Assignment[],
    tests: [] as Test[],
    grades: [] as Grade[],
    /** The asking user's own submissions, by item slug, oldest first. */
    history: {} as Record<string, Submission[]>,
    /** Server time minus browser time, in ms, from the latest answer. */
    offset: 0,
    /** The browser's Date.now() at the latest tick: makes the clock reactive. */
    tickAt: Date.now(),
    loading: false,
    loaded: false,
    error: '',
  }),

  getters: {
    /** The server's time now, in ms. */
    serverNow: (s) => s.tickAt + s.offset,
    assignment: (s) => (slug: string) => s.assignments.find((a) => a.slug === slug),
    test: (s) => (slug: string) => s.tests.find((t) => t.slug === slug),
    /** The item slug of a kind, with its kind: what the item panel shows. */
    entry(): (kind: ItemKind, slug: string) => CourseItem | undefined {
      return (kind, slug) => {
        if (kind === 'assignment') {
          const item = this.assignment(slug)
          return item && { kind, item }
        }
        const item = this.test(slug)
        return item && { kind, item }
      }
    },
    gradeOf: (s) => (slug: string) => s.grades.find((g) => g.item === slug),
    /** The test whose clock runs for this student now (the one ending first), if any. */
    runningTest(): { test: Test; end: number } | undefined {
      const now = this.serverNow
      return this.tests
        .map((test) => ({ test, status: testStatus(test, now) }))
        .filter((x) => x.status.phase === 'running' && x.status.target !== null)
        .map((x) => ({ test: x.test, end: x.status.target as number }))
        .sort((a, b) => a.end - b.end)[0]
    },
  },

  actions: {
    /** Runs an API call and learns the server clock from its "now". */
    async timed<T extends { now: string }>(call: () => Promise<T>): Promise<T> {
      const sentAt = Date.now()
      const res = await call()
      const receivedAt = Date.now()
      const off = clockOffset(res.now, sentAt, receivedAt)
      if (off !== null) this.offset = off
      this.tickAt = receivedAt
      return res
    },

    tick() {
      this.tickAt = Date.now()
    },

    /** Screens with a countdown hold the clock while shown. */
    holdClock() {
      clockUsers++
      if (!clockTimer) clockTimer = setInterval(() => this.tick(), 1000)
    },
    releaseClock() {
      clockUsers = Math.max(0, clockUsers - 1)
      if (clockUsers === 0 && clockTimer) {
        clearInterval(clockTimer)
        clockTimer = null
      }
    },

    /** Loads the lists, the grades and, for a student, their own submissions. */
    async load(user: string, staff: boolean) {
      this.loading = true
      try {
        const [as, ts, gs] = await Promise.all([
          this.timed(api.listAssignments),
          this.timed(api.listTests),
          this.timed(api.grades),
        ])
        this.assignments = as.assignments ?? []
        this.tests = ts.tests ?? []
        this.grades = gs.grades ?? []
        if (!staff) {
          const slugs = [...this.assignments.map((a) => a.slug), ...this.tests.filter((t) => t.my_start || Date.parse(t.starts_at) <= this.serverNow).map((t) => t.slug)]
          await Promise.all(slugs.map((slug) => this.loadHistory(slug, user).catch(() => undefined)))
        }
        this.error = ''
        this.loaded = true
      } catch (e) {
        this.error = e instanceof Error ? e.message : String(e)
        throw e
      } finally {
        this.loading = false
      }
    },

    /** The tests alone: what the IDE's countdown needs. */
    async loadTests() {
      const ts = await this.timed(api.listTests)
      this.tests = ts.tests ?? []
    },

    async loadHistory(slug: string, user: string) {
      const res = await this.timed(() => api.submissionsOf(slug, user))
      this.history[slug] = res.submissions ?? []
    },

    upsertAssignment(a: Assignment) {
      this.assignments = upsert(this.assignments, a, (x) => x.due_at)
    },

    upsertTest(t: Test) {
      this.tests = upsert(this.tests, t, (x) => x.starts_at)
    },

    async copyStarter(slug: string) {
      return this.timed(() => api.copyStarter(slug))
    },

    /** Submits the chosen files; the new snapshot becomes the latest. */
    async submit(slug: string, files: string[]) {
      const res = await this.timed(() => api.submitAssignment(slug, files))
      this.addSubmission(res.submission)
      return res
    },

    addSubmission(sub: Submission) {
      const list = (this.history[sub.item] ?? []).map((s) => ({ ...s, latest: false }))
      list.push(sub)
      this.history[sub.item] = list
    },

    async startTest(slug: string) {
      const res = await this.timed(() => api.startTest(slug))
      this.upsertTest(res.test)
      return res.test
    },

    async submitTest(slug: string) {
      const res = await this.timed(() => api.submitTest(slug))
      this.addSubmission(res.submission)
      return res.submission
    },

    // Staff.

    async saveAssignment(input: AssignmentInput, existing: boolean) {
      const res = await this.timed(() =>
        existing ? api.updateAssignment(input.slug, input) : api.createAssignment(input),
      )
      this.upsertAssignment(res.assignment)
      return res.assignment
    },

    async saveTest(input: TestInput, existing: boolean) {
      const res = await this.timed(() => (existing ? api.updateTest(input.slug, input) : api.createTest(input)))
      this.upsertTest(res.test)
      return res.test
    },

    /** Publishes at the server's now (not the browser's). */
    async publishNow(kind: ItemKind, slug: string) {
      return this.setPublishAt(kind, slug, new Date(this.serverNow).toISOString())
    },

    async unpublish(kind: ItemKind, slug: string) {
      return this.setPublishAt(kind, slug, null)
    },

    /** Saves the item as it is with another publish time (null: a draft). */
    async setPublishAt(kind: ItemKind, slug: string, publish_at: string | null) {
      const it = this.entry(kind, slug)
      if (!it) throw new Error(`no such ${kind}: ${slug}`)
      if (it.kind === 'assignment') return this.saveAssignment({ ...assignmentInput(it.item), publish_at }, true)
      return this.saveTest({ ...testInput(it.item), publish_at }, true)
    },
  },
})

/**
 * The list with item in place of the one with its slug (or added), in the
 * order the server lists them: by the kind's time `at`, then by slug.
 */
function upsert<T extends { slug: string }>(list: T[], item: T, at: (x: T) => string): T[] {
  return [...list.filter((x) => x.slug !== item.slug), item].sort(
    (x, y) => Date.parse(at(x)) - Date.parse(at(y)) || x.slug.localeCompare(y.slug),
  )
}

export function assignmentInput(a: Assignment): AssignmentInput {
  return {
    slug: a.slug,
    title: a.title,
    description_md: a.description_md,
    publish_at: a.publish_at,
    due_at: a.due_at,
    late_policy: a.late_policy,
    late_cutoff_at: a.late_cutoff_at,
  }
}

export function testInput(t: Test): TestInput {
  return {
    slug: t.slug,
    title: t.title,
    description_md: t.description_md,
    publish_at: t.publish_at,
    starts_at: t.starts_at,
    ends_at: t.ends_at,
    duration_minutes: t.duration_minutes,
    restrict_workspace: t.restrict_workspace,
    restrict_repl: t.restrict_repl,
  }
}
