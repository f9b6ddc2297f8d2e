// Course endpoints (/api/course, pkg/course): assignments, tests,
// submissions and grades. Every answer about items carries the server's
// "now"; the course store turns it into a clock offset.
import { getJSON, request, sendJSON } from './http'

export type LatePolicy = 'none' | 'cutoff'

/** The two kinds of course item; they share a namespace of slugs. */
export type ItemKind = 'assignment' | 'test'

export interface Assignment {
  slug: string
  title: string
  description_md: string
  publish_at: string | null
  due_at: string
  late_policy: LatePolicy
  late_cutoff_at: string | null
  published: boolean
  /** Takes submissions now. */
  open: boolean
  /** A submission now would be late. */
  late_now: boolean
  closes_at: string
  created_by: string
  updated_at: string
}

export interface AssignmentInput {
  slug: string
  title: string
  description_md: string
  publish_at: string | null
  due_at: string | null
  late_policy: LatePolicy
  late_cutoff_at: string | null
}

export interface Test {
  slug: string
  title: string
  description_md: string
  publish_at: string | null
  starts_at: string
  ends_at: string
  duration_minutes: number | null
  restrict_workspace: boolean
  restrict_repl: boolean
  published: boolean
  /** Open for the asking user now. */
  open: boolean
  my_start: string | null
  /** The asking user's own end: what the countdown counts to. */
  my_end: string | null
  created_by: string
  updated_at: string
}

export interface TestInput {
  slug: string
  title: string
  description_md: string
  publish_at: string | null
  starts_at: string | null
  ends_at: string | null
  duration_minutes: number | null
  restrict_workspace: boolean
  restrict_repl: boolean
}

/** An item with its kind. */
export type CourseItem = { kind: 'assignment'; item: Assignment } | { kind: 'test'; item: Test }

export interface SubmissionFile {
  name: string
  size: number
  sha256: string
}

export interface Submission {
  item: string
  kind: ItemKind
  username: string
  n: number
  submitted_at: string
  late: boolean
  auto: boolean
  /** The one that counts. */
  latest: boolean
  files: SubmissionFile[]
}

export interface RosterEntry {
  username: string
  display_name: string
  disabled: boolean
  submitted: boolean
  submissions: number
  n: number | null
  submitted_at: string | null
  late: boolean
  auto: boolean
  graded: boolean
  score: number | null
  max_score: number | null
  /** A test: when this student started a timed one, and when their time ends. */
  started_at: string | null
  ends_at: string | null
}

export interface Roster {
  now: string
  item: string
  kind: ItemKind
  title: string
  students: RosterEntry[]
}

export interface Grade {
  item: string
  kind: ItemKind | ''
  title: string
  username: string
  score: number | null
  max_score: number
  feedback_md: string
  graded_by: string
  graded_at: string
}

/**
 * A change of a grade: only the fields sent change, the server keeps the
 * rest (score null takes the score away). A first grade needs max_score.
 */
export interface GradeInput {
  score?: number | null
  max_score?: number
  feedback_md?: string
}

export interface CopyResult {
  now: string
  folder: string
  copied: string[]
  skipped: string[]
}

interface Now {
  now: string
}

const seg = encodeURIComponent
const a = (slug: string) => `/api/course/assignments/${seg(slug)}`
const t = (slug: string) => `/api/course/tests/${seg(slug)}`
const item = (slug: string) => `/api/course/items/${seg(slug)}`

export const listAssignments = () => getJSON<Now & { assignments: Assignment[] }>('/api/course/assignments')
export const getAssignment = (slug: string) => getJSON<Now & { assignment: Assignment }>(a(slug))
export const createAssignment = (input: AssignmentInput) =>
  sendJSON<Now & { assignment: Assignment }>('POST', '/api/course/assignments', input)
export const updateAssignment = (slug: string, input: AssignmentInput) =>
  sendJSON<Now & { assignment: Assignment }>('PUT', a(slug), input)
export const copyStarter = (slug: string) => sendJSON<CopyResult>('POST', `${a(slug)}/copy-starter`, {})
export const submitAssignment = (slug: string, files: string[]) =>
  sendJSON<Now & { submission: Submission; warning?: string }>('POST', `${a(slug)}/submit`, { files })

export const listTests = () => getJSON<Now & { tests: Test[] }>('/api/course/tests')
export const createTest = (input: TestInput) => sendJSON<Now & { test: Test }>('POST', '/api/course/tests', input)
export const updateTest = (slug: string, input: TestInput) => sendJSON<Now & { test: Test }>('PUT', t(slug), input)
export const startTest = (slug: string) => sendJSON<Now & { test: Test }>('POST', `${t(slug)}/start`, {})
export const submitTest = (slug: string) => sendJSON<Now & { submission: Submission }>('POST', `${t(slug)}/submit`, {})

export const roster = (slug: string) => getJSON<Roster>(`${item(slug)}/submissions`)
export const submissionsOf = (slug: string, user: string) =>
  getJSON<Now & { submissions: Submission[] | null }>(`${item(slug)}/submissions/${seg(user)}`)
export const submissionFileURL = (slug: string, user: string, n: number, name: string) =>
  `${item(slug)}/submissions/${seg(user)}/${n}/files?path=${seg(name)}`
export const gradesCSVURL = (slug: string) => `${item(slug)}/grades.csv`
export const setGrade = (slug: string, user: string, input: GradeInput) =>
  sendJSON<Now & { grade: Grade }>('PUT', `${item(slug)}/grades/${seg(user)}`, input)
export const grades = () => getJSON<Now & { grades: Grade[] | null }>('/api/course/grades')

/** The bytes of one submitted file, as text when they decode as UTF-8. */
export async function submissionFile(slug: string, user: string, n: number, name: string): Promise<ArrayBuffer> {
  return (await request('GET', submissionFileURL(slug, user, n, name))).arrayBuffer()
}
