// Autograding endpoints (/api/course/items/<slug>/grading/…, pkg/grading):
// the tests of an item, Check, results per test, rubric lines, the release
// switch, regrades and the similarity report. Students reach Check and
// their own released results; the rest answers them 403.
import { getJSON, request, sendJSON } from './http'

interface Now {
  now: string
}

export type TestKind = 'io' | 'py'

/** A test as staff write it: an I/O case, or a pytest or unittest file. */
export interface GradingTest {
  id: number
  kind: TestKind
  name: string
  hidden: boolean
  /** An I/O case's points, or each test's in a file. */
  points: number
  main_file: string
  stdin: string
  expected: string
  ignore_trailing_whitespace: boolean
  ignore_case: boolean
  tolerance: number | null
  cpu_seconds: number
  source: string
  updated_by: string
  updated_at: string
}

export type GradingTestInput = Omit<GradingTest, 'id' | 'updated_by' | 'updated_at'>

export type Outcome = 'passed' | 'failed' | 'error' | 'timeout' | 'memory' | 'skipped' | 'not_run'

/** What one test gave. A student sees of a hidden test only whether it passed. */
export interface TestResult {
  test: number
  kind: TestKind | 'hidden'
  name: string
  hidden: boolean
  points: number
  max_points: number
  passed: boolean
  outcome: Outcome
  reason: string
  stdin?: string
  expected?: string
  actual?: string
  stderr?: string
  message?: string
  seconds: number
}

export interface Check {
  tests: TestResult[]
  score: number
  max_score: number
  error?: string
  /** Hidden tests a student's check left out: they count at grading. */
  hidden: number
  seconds: number
}

export interface Run {
  id: number
  n: number
  cause: 'submit' | 'regrade'
  score: number
  max_score: number
  passed: number
  failed: number
  error?: string
  by: string
  finished_at: string
  tests?: TestResult[]
}

export interface RubricLine {
  id: number
  points: number
  comment: string
}

export interface Result {
  item: string
  title: string
  username: string
  released: boolean
  pending: boolean
  score: number | null
  max_score: number | null
  proposed?: number | null
  override?: number | null
  feedback_md: string
  rubric: RubricLine[]
  run: Run | null
  runs?: Run[]
}

export interface Summary {
  username: string
  display_name: string
  n: number | null
  pending: boolean
  run: Run | null
  proposed: number | null
  override: number | null
  score: number | null
  max_score: number | null
  rubric: number
}

export interface Regrade {
  item: string
  total: number
  done: number
  failed: number
  by: string
  started_at: string
  finished_at: string | null
}

export interface Fragment {
  left_start: number
  left_end: number
  right_start: number
  right_end: number
}

export interface Pair {
  left: string
  right: string
  similarity: number
  longest_fragment: number
  overlap: number
  fragments: Fragment[] | null
}

export interface SimilarityReport {
  item: string
  state: 'running' | 'done' | 'failed'
  error?: string
  by: string
  started_at: string
  finished_at: string | null
  students: number
  pairs: Pair[] | null
  sources?: Record<string, string>
}

const seg = encodeURIComponent
const g = (slug: string) => `/api/course/items/${seg(slug)}/grading`

export const listTests = (slug: string) => getJSON<Now & { tests: GradingTest[] | null }>(`${g(slug)}/tests`)
export const createTest = (slug: string, input: GradingTestInput) =>
  sendJSON<Now & { test: GradingTest }>('POST', `${g(slug)}/tests`, input)
export const updateTest = (slug: string, id: number, input: GradingTestInput) =>
  sendJSON<Now & { test: GradingTest }>('PUT', `${g(slug)}/tests/${id}`, input)
export const deleteTest = (slug: string, id: number) => request('DELETE', `${g(slug)}/tests/${id}`)

export const check = (slug: string, files: string[]) =>
  sendJSON<Now & { check: Check }>('POST', `/api/course/items/${seg(slug)}/check`, { files })

export const results = (slug: string) =>
  getJSON<Now & { released: boolean; regrade: Regrade | null; students: Summary[] | null }>(`${g(slug)}/results`)
export const resultOf = (slug: string, user: string) => getJSON<Now & { result: Result }>(`${g(slug)}/results/${seg(user)}`)
export const myResults = () => getJSON<Now & { results: Result[] | null }>('/api/course/results')
export const setReleased = (slug: string, released: boolean) =>
  sendJSON<Now & { released: boolean }>('PUT', `${g(slug)}/release`, { released })
export const regrade = (slug: string) => sendJSON<Now & { regrade: Regrade }>('POST', `${g(slug)}/regrade`, {})
export const regradeStatus = (slug: string) => getJSON<Now & { regrade: Regrade | null }>(`${g(slug)}/regrade`)

export const rubric = (slug: string) => getJSON<Now & { rubric: RubricLine[] | null }>(`${g(slug)}/rubric`)
export const addRubricLine = (slug: string, points: number, comment: string) =>
  sendJSON<Now & { line: RubricLine }>('POST', `${g(slug)}/rubric`, { points, comment })
export const setMarks = (slug: string, user: string, ids: number[]) =>
  sendJSON<Now & { result: Result }>('PUT', `${g(slug)}/marks/${seg(user)}`, { ids })

export const resultsCSVURL = (slug: string) => `${g(slug)}/results.csv`
export const startSimilarity = (slug: string) =>
  sendJSON<Now & { similarity: SimilarityReport }>('POST', `${g(slug)}/similarity`, {})
export const similarity = (slug: string) => getJSON<Now & { similarity: SimilarityReport | null }>(`${g(slug)}/similarity`)
