import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { assignmentStatus, dueWarning, testStatus, useCourseStore } from './course'
import { useGradingStore } from './grading'
import { FakeServer, json } from '@/testing/fakes'
import { ApiError } from '@/api/http'
import type { Assignment, Submission, Test } from '@/api/course'

const H = 3_600_000
const serverNow = Date.parse('2030-03-04T12:00:00Z')

function assignment(over: Partial<Assignment> = {}): Assignment {
  return {
    slug: 'hw1',
    title: 'Loops',
    description_md: '# Loops',
    publish_at: new Date(serverNow - 24 * H).toISOString(),
    due_at: new Date(serverNow + 48 * H).toISOString(),
    late_policy: 'none',
    late_cutoff_at: null,
    published: true,
    open: true,
    late_now: false,
    closes_at: new Date(serverNow + 48 * H).toISOString(),
    created_by: 'prof',
    updated_at: new Date(serverNow - 25 * H).toISOString(),
    ...over,
  }
}

function test_(over: Partial<Test> = {}): Test {
  return {
    slug: 'midterm',
    title: 'Midterm',
    description_md: '',
    publish_at: new Date(serverNow - 24 * H).toISOString(),
    starts_at: new Date(serverNow - H).toISOString(),
    ends_at: new Date(serverNow + H).toISOString(),
    duration_minutes: null,
    restrict_workspace: false,
    restrict_repl: false,
    published: true,
    open: true,
    my_start: null,
    my_end: new Date(serverNow + H).toISOString(),
    created_by: 'prof',
    updated_at: new Date(serverNow - 25 * H).toISOString(),
    ...over,
  }
}

function submission(n: number, late = false): Submission {
  return {
    item: 'hw1',
    kind: 'assignment',
    username: 'alice',
    n,
    submitted_at: new Date(serverNow - (10 - n) * H).toISOString(),
    late,
    auto: false,
    latest: false,
    files: [{ name: 'main.py', size: 12, sha256: 'ab' }],
  }
}

let srv: FakeServer
beforeEach(() => {
  setActivePinia(createPinia())
  srv = new FakeServer()
  vi.stubGlobal('fetch', srv.fetch)
})
afterEach(() => {
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

/** A server whose clock reads `at` (ms) on every answer. */
function serveCourse(at: () => number, items: { assignments?: Assignment[]; tests?: Test[] } = {}) {
  const now = () => new Date(at()).toISOString()
  srv
    .on('GET', '/api/course/assignments', () => json(200, { now: now(), assignments: items.assignments ?? [] }))
    .on('GET', '/api/course/tests', () => json(200, { now: now(), tests: items.tests ?? [] }))
    .on('GET', '/api/course/grades', () => json(200, { now: now(), grades: [] }))
    .on('GET', '/api/course/items/hw1/submissions/alice', () =>
      json(200, { now: now(), submissions: [submission(1), { ...submission(2, true), latest: true }] }),
    )
    .on('GET', '/api/course/items/midterm/submissions/alice', () => json(200, { now: now(), submissions: [] }))
}

describe('course store: server clock', () => {
  it('counts down from the server time, whatever the browser clock says', async () => {
    vi.useFakeTimers()
    // The browser's clock is 3 hours and 17 seconds behind the server's.
    const skew = 3 * H + 17_000
    vi.setSystemTime(serverNow - skew)
    serveCourse(() => Date.now() + skew, { tests: [test_()] })
    const c = useCourseStore()
    await c.load('alice', false)

    expect(Math.abs(c.serverNow - serverNow)).toBeLessThan(1000)
    const t = c.test('midterm')!
    expect(testStatus(t, c.serverNow)).toMatchObject({ phase: 'running', remaining: H })

    c.holdClock()
    await vi.advanceTimersByTimeAsync(5000)
    expect(testStatus(t, c.serverNow).remaining).toBe(H - 5000)
    c.releaseClock()
    await vi.advanceTimersByTimeAsync(5000)
    // Released: the reactive clock stops where it was.
    expect(testStatus(t, c.serverNow).remaining).toBe(H - 5000)
  })

  it('takes the midpoint of a slow request as the moment the server read its clock', async () => {
    vi.useFakeTimers()
    vi.setSystemTime(1_000_000)
    srv.on('GET', '/api/course/tests', async () => {
      await vi.advanceTimersByTimeAsync(2000) // a 2 s round trip
      return json(200, { now: new Date(5_000_000).toISOString(), tests: [] })
    })
    const c = useCourseStore()
    await c.timed(() => import('@/api/course').then((m) => m.listTests()))
    // Sent at 1_000_000, received at 1_002_000: the server's 5_000_000 was at 1_001_000.
    expect(c.offset).toBe(5_000_000 - 1_001_000)
  })

  it('publishes at the server time, not the browser time', async () => {
    vi.useFakeTimers()
    vi.setSystemTime(serverNow - 10 * H)
    const draft = assignment({ publish_at: null, published: false })
    serveCourse(() => Date.now() + 10 * H, { assignments: [draft] })
    srv.on('PUT', '/api/course/assignments/hw1', async (req) => {
      const body = (await req.json()) as Record<string, unknown>
      return json(200, { now: new Date(serverNow).toISOString(), assignment: { ...draft, publish_at: body.publish_at, published: true } })
    })
    const c = useCourseStore()
    await c.load('prof', true)
    await c.publishNow('assignment', 'hw1')
    const sent = JSON.parse(srv.last('PUT', '/api/course/assignments/hw1')!.body) as Record<string, unknown>
    expect(Math.abs(Date.parse(sent.publish_at as string) - serverNow)).toBeLessThan(1000)
    expect(sent).toMatchObject({ slug: 'hw1', title: 'Loops', due_at: draft.due_at, late_policy: 'none' })
    expect(c.assignment('hw1')!.published).toBe(true)
  })
})

describe('course store: one path for both kinds', () => {
  it('takes a test back to draft and keeps the list in the server’s order', async () => {
    const final = test_({ slug: 'final', starts_at: new Date(serverNow + 5 * H).toISOString() })
    serveCourse(() => serverNow, { tests: [test_(), final] })
    srv.on('PUT', '/api/course/tests/midterm', async (req) => {
      const body = (await req.json()) as Record<string, unknown>
      // Moved after the final by another edit meanwhile: the answer is what counts.
      const moved = test_({ publish_at: body.publish_at as null, published: false, starts_at: new Date(serverNow + 6 * H).toISOString() })
      return json(200, { now: new Date(serverNow).toISOString(), test: moved })
    })
    const c = useCourseStore()
    await c.load('prof', true)
    await c.unpublish('test', 'midterm')
    const sent = JSON.parse(srv.last('PUT', '/api/course/tests/midterm')!.body) as Record<string, unknown>
    expect(sent).toEqual({
      slug: 'midterm',
      title: 'Midterm',
      description_md: '',
      publish_at: null,
      starts_at: test_().starts_at,
      ends_at: test_().ends_at,
      duration_minutes: null,
      restrict_workspace: false,
      restrict_repl: false,
    })
    expect(c.tests.map((t) => [t.slug, t.published])).toEqual([
      ['final', true],
      ['midterm', false],
    ])
    expect(c.entry('test', 'midterm')).toEqual({ kind: 'test', item: c.test('midterm') })
    expect(c.entry('assignment', 'midterm')).toBeUndefined()
    await expect(c.publishNow('assignment', 'nope')).rejects.toThrow('no such assignment: nope')
  })
})

describe('course store: loading and submitting', () => {
  it('loads a student’s own history of each item; staff load none', async () => {
    serveCourse(() => serverNow, { assignments: [assignment()], tests: [test_()] })
    const c = useCourseStore()
    await c.load('alice', false)
    expect(c.history.hw1!.map((s) => s.n)).toEqual([1, 2])
    expect(c.history.midterm).toEqual([])

    setActivePinia(createPinia())
    srv.requests = []
    const staff = useCourseStore()
    await staff.load('prof', true)
    expect(srv.requests.filter((r) => r.url.pathname.includes('/submissions/'))).toEqual([])
  })

  it('submits the chosen files and makes the new snapshot the latest', async () => {
    serveCourse(() => serverNow, { assignments: [assignment()] })
    srv.on('POST', '/api/course/assignments/hw1/submit', () =>
      json(201, { now: new Date(serverNow).toISOString(), submission: { ...submission(3), latest: true } }),
    )
    const c = useCourseStore()
    await c.load('alice', false)
    await c.submit('hw1', ['Local/alice/hw1/main.py', 'Local/alice/hw1/util.py'])
    expect(JSON.parse(srv.last('POST', '/api/course/assignments/hw1/submit')!.body)).toEqual({
      files: ['Local/alice/hw1/main.py', 'Local/alice/hw1/util.py'],
    })
    expect(c.history.hw1!.map((s) => [s.n, s.latest])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ])
    const st = assignmentStatus(c.assignment('hw1')!, c.history.hw1, c.serverNow)
    expect(st).toMatchObject({ phase: 'open', submissions: 3, label: 'Submitted 3 times', tone: 'success' })
  })

  it('passes the server’s refusal on as it is', async () => {
    serveCourse(() => serverNow, { assignments: [assignment()] })
    srv.on('POST', '/api/course/assignments/hw1/submit', () =>
      json(409, { error: 'the deadline passed at 2030-03-06T12:00:00Z; submissions are closed' }),
    )
    const c = useCourseStore()
    await c.load('alice', false)
    const err = await c.submit('hw1', ['Local/alice/a.py']).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).message).toContain('submissions are closed')
    expect(c.history.hw1).toHaveLength(2)
  })

  it('starts a timed test and counts down to the student’s own end', async () => {
    const timed = test_({ duration_minutes: 30, my_end: null })
    serveCourse(() => serverNow, { tests: [timed] })
    srv.on('POST', '/api/course/tests/midterm/start', () =>
      json(200, {
        now: new Date(serverNow).toISOString(),
        test: { ...timed, my_start: new Date(serverNow).toISOString(), my_end: new Date(serverNow + 30 * 60_000).toISOString() },
      }),
    )
    const c = useCourseStore()
    await c.load('alice', false)
    expect(testStatus(c.test('midterm')!, c.serverNow).phase).toBe('ready')
    await c.startTest('midterm')
    expect(testStatus(c.test('midterm')!, serverNow + 60_000)).toEqual({
      phase: 'running',
      target: serverNow + 30 * 60_000,
      remaining: 29 * 60_000,
    })
  })
})

describe('assignmentStatus', () => {
  const cutoff = assignment({
    late_policy: 'cutoff',
    due_at: new Date(serverNow).toISOString(),
    late_cutoff_at: new Date(serverNow + 24 * H).toISOString(),
    closes_at: new Date(serverNow + 24 * H).toISOString(),
  })
  it.each([
    { name: 'draft', a: assignment({ publish_at: null }), subs: [], at: serverNow, phase: 'draft', label: 'Not submitted' },
    { name: 'scheduled', a: assignment({ publish_at: new Date(serverNow + H).toISOString() }), subs: [], at: serverNow, phase: 'scheduled', label: 'Not submitted' },
    { name: 'open, nothing yet', a: assignment(), subs: [], at: serverNow, phase: 'open', label: 'Not submitted', tone: 'info' },
    { name: 'open, submitted once', a: assignment(), subs: [submission(1)], at: serverNow, phase: 'open', label: 'Submitted', tone: 'success' },
    { name: 'late window', a: cutoff, subs: [submission(1)], at: serverNow + H, phase: 'late', label: 'Submitted', tone: 'success' },
    { name: 'latest late', a: cutoff, subs: [submission(1), submission(2, true)], at: serverNow + H, phase: 'late', label: 'Submitted 2 times (late)', tone: 'warning' },
    { name: 'closed, nothing', a: cutoff, subs: [], at: serverNow + 25 * H, phase: 'closed', label: 'Not submitted', tone: 'danger' },
    { name: 'closed exactly at the cut-off', a: cutoff, subs: [], at: serverNow + 24 * H, phase: 'closed', label: 'Not submitted' },
  ])('$name', ({ a, subs, at, phase, label, tone }) => {
    const st = assignmentStatus(a, subs, at)
    expect(st.phase).toBe(phase)
    expect(st.label).toBe(label)
    if (tone) expect(st.tone).toBe(tone)
    expect(st.last?.n ?? null).toBe(subs.at(-1)?.n ?? null)
  })
})

describe('testStatus', () => {
  const start = serverNow
  const end = serverNow + 2 * H
  const base = test_({ starts_at: new Date(start).toISOString(), ends_at: new Date(end).toISOString(), my_end: new Date(end).toISOString() })
  const timed = { ...base, duration_minutes: 30, my_end: null }
  const started = { ...timed, my_start: new Date(start + H).toISOString(), my_end: new Date(start + H + 30 * 60_000).toISOString() }
  it.each([
    { name: 'before the window', t: base, at: start - 90_000, phase: 'upcoming', remaining: 90_000 },
    { name: 'whole window', t: base, at: start + H, phase: 'running', remaining: H },
    { name: 'timed, not started', t: timed, at: start + H, phase: 'ready', remaining: H },
    { name: 'timed, started', t: started, at: start + H + 60_000, phase: 'running', remaining: 29 * 60_000 },
    { name: 'timed, own time up', t: started, at: start + H + 30 * 60_000, phase: 'finished', remaining: 0 },
    { name: 'window closed', t: base, at: end, phase: 'ended', remaining: 0 },
    { name: 'timed, never started, window closed', t: timed, at: end + 1, phase: 'ended', remaining: 0 },
  ])('$name', ({ t, at, phase, remaining }) => {
    expect(testStatus(t, at)).toMatchObject({ phase, remaining })
  })
})

describe('the IDE test clock', () => {
  it.each([
    { name: 'plenty of time', left: 30 * 60_000, given: [], want: null },
    { name: 'five minutes left', left: 5 * 60_000, given: [], want: 5 * 60_000 },
    { name: 'five given, four left', left: 4 * 60_000, given: [5 * 60_000], want: null },
    { name: 'one minute left', left: 60_000, given: [5 * 60_000], want: 60_000 },
    { name: 'opened with 40 s left: only the urgent one', left: 40_000, given: [], want: 60_000 },
    { name: 'both given', left: 10_000, given: [60_000], want: null },
  ])('$name', ({ left, given, want }) => {
    expect(dueWarning(left, new Set(given))).toBe(want)
  })

  it('runs for the test whose time is on, the one ending first', async () => {
    const at = serverNow + 10 * 60_000
    serveCourse(() => at, {
      tests: [
        test_({ slug: 'late', ends_at: new Date(serverNow + 2 * H).toISOString(), my_end: new Date(serverNow + 2 * H).toISOString() }),
        test_({ slug: 'soon', duration_minutes: 20, my_start: new Date(serverNow).toISOString(), my_end: new Date(serverNow + 20 * 60_000).toISOString() }),
        test_({ slug: 'unstarted', duration_minutes: 20, my_end: null }),
      ],
    })
    const c = useCourseStore()
    expect(c.runningTest).toBeUndefined()
    await c.loadTests()
    expect(c.runningTest?.test.slug).toBe('soon')
    expect(c.runningTest!.end).toBe(serverNow + 20 * 60_000)
  })
})

describe('grading store', () => {
  it('loads the roster with each student’s feedback and saves a grade', async () => {
    const row = { username: 'alice', display_name: 'Alice', disabled: false, submitted: true, submissions: 2, n: 2,
      submitted_at: new Date(serverNow).toISOString(), late: false, auto: false, graded: false, score: null, max_score: null }
    srv
      .on('GET', '/api/course/items/hw1/submissions', () =>
        json(200, { now: '', item: 'hw1', kind: 'assignment', title: 'Loops', students: [row, { ...row, username: 'bob', submitted: false, n: null }] }),
      )
      .on('GET', '/api/course/grades', () =>
        json(200, { now: '', grades: [
          { item: 'hw1', kind: 'assignment', title: 'Loops', username: 'bob', score: null, max_score: 10, feedback_md: 'Where is it?', graded_by: 'prof', graded_at: '' },
          { item: 'hw2', kind: 'assignment', title: 'Other', username: 'alice', score: 1, max_score: 10, feedback_md: 'no', graded_by: 'prof', graded_at: '' },
        ] }),
      )
      .on('GET', '/api/course/items/hw1/grading/results', () =>
        json(200, { now: '', released: false, regrade: null, students: [
          { username: 'alice', display_name: 'Alice', n: 2, pending: false, run: { id: 1, n: 2, cause: 'submit', score: 3, max_score: 4, passed: 3, failed: 1, by: 'alice', finished_at: '' },
            proposed: 3, override: null, score: 3, max_score: 4, rubric: 0 },
        ] }),
      )
      .on('PUT', '/api/course/items/hw1/grading/release', async (req) => json(200, { now: '', released: ((await req.json()) as { released: boolean }).released }))
      .on('PUT', '/api/course/items/hw1/grades/alice', async (req) => {
        const b = (await req.json()) as { score: number; max_score: number; feedback_md: string }
        return json(200, { now: '', grade: { item: 'hw1', kind: 'assignment', title: 'Loops', username: 'alice', ...b, graded_by: 'prof', graded_at: '' } })
      })
    const g = useGradingStore()
    await g.loadRoster('hw1')
    expect(g.roster!.students.map((s) => s.username)).toEqual(['alice', 'bob'])
    expect(Object.keys(g.grades)).toEqual(['bob'])
    expect(g.summaries.alice!.run!.score).toBe(3)
    expect(g.released).toBe(false)
    await g.setReleased(true)
    expect(g.released).toBe(true)
    expect(JSON.parse(srv.last('PUT', '/api/course/items/hw1/grading/release')!.body)).toEqual({ released: true })

    await g.saveGrade('alice', { score: 8.5, max_score: 10, feedback_md: 'Good **loops**.' })
    expect(JSON.parse(srv.last('PUT', '/api/course/items/hw1/grades/alice')!.body)).toEqual({
      score: 8.5,
      max_score: 10,
      feedback_md: 'Good **loops**.',
    })
    expect(g.roster!.students[0]).toMatchObject({ graded: true, score: 8.5, max_score: 10 })
    expect(g.grades.alice!.feedback_md).toBe('Good **loops**.')
  })

  it('shows the latest submission first and reads its files as text, or says they are not', async () => {
    srv
      .on('GET', '/api/course/items/hw1/submissions/alice', () =>
        json(200, { now: '', submissions: [submission(1), { ...submission(2), latest: true }] }),
      )
      .on('GET', '/api/course/items/hw1/submissions/alice/2/files', (req) => {
        const p = new URL(req.url).searchParams.get('path')
        if (p === 'main.py') return new Response('print("hi")\n')
        if (p === 'pic.png') return new Response(new Uint8Array([0x89, 0x50, 0x00, 0x01]))
        return json(404, { error: `submission 2 has no file "${p}"` })
      })
    const g = useGradingStore()
    g.slug = 'hw1'
    await g.openStudent('alice')
    expect(g.n).toBe(2)
    await Promise.all([g.loadFile('main.py'), g.loadFile('pic.png'), g.loadFile('gone.py')])
    expect(g.files['2/main.py']).toEqual({ loading: false, text: 'print("hi")\n', error: '' })
    expect(g.files['2/pic.png']).toMatchObject({ text: null, error: '' })
    expect(g.files['2/gone.py']!.error).toBe('submission 2 has no file "gone.py"')
  })
})
