import { describe, expect, it } from 'vitest'
import { itemFace, itemLine, materialFolder, routeKind } from './item'
import type { Assignment, Submission, Test } from '@/api/course'

const H = 3_600_000
const now = Date.parse('2030-03-04T12:00:00Z')
const iso = (ms: number) => new Date(ms).toISOString()

const assignment = (over: Partial<Assignment> = {}): Assignment => ({
  slug: 'hw1',
  title: 'Loops',
  description_md: '',
  publish_at: iso(now - 24 * H),
  due_at: iso(now + 48 * H),
  late_policy: 'none',
  late_cutoff_at: null,
  published: true,
  open: true,
  late_now: false,
  closes_at: iso(now + 48 * H),
  created_by: 'prof',
  updated_at: iso(now - 25 * H),
  ...over,
})

const test = (over: Partial<Test> = {}): Test => ({
  slug: 'midterm',
  title: 'Midterm',
  description_md: '',
  publish_at: iso(now - 24 * H),
  starts_at: iso(now - H),
  ends_at: iso(now + H),
  duration_minutes: null,
  restrict_workspace: false,
  restrict_repl: false,
  published: true,
  open: true,
  my_start: null,
  my_end: iso(now + H),
  created_by: 'prof',
  updated_at: iso(now - 25 * H),
  ...over,
})

const late: Submission = {
  item: 'hw1',
  kind: 'assignment',
  username: 'alice',
  n: 1,
  submitted_at: iso(now - H),
  late: true,
  auto: false,
  latest: true,
  files: [],
}

const student = { staff: false, now, history: [] }
const staff = { staff: true, now, history: [] }

describe('itemFace: one panel, each kind its own rules', () => {
  it('an open assignment, as a student with a late submission sees it', () => {
    const f = itemFace({ kind: 'assignment', item: assignment() }, { ...student, history: [late] })
    expect(f.tags.map((t) => [t.testid, t.text])).toEqual([
      ['assignment-phase', 'Open'],
      ['assignment-status', 'Submitted (late)'],
    ])
    expect(f.facts.map((x) => x.label)).toEqual(['Due', 'Late work', 'Material', 'Last submitted'])
    expect(f.facts.find((x) => x.label === 'Material')).toMatchObject({ link: 'Assignments/hw1', testid: 'material-link' })
    expect(f.facts.at(-1)!.text).toMatch(/ \(late\)$/)
    expect(f.notice).toBeNull()
  })

  it('a closed assignment tells the student; staff see when it is visible instead', () => {
    const closed = assignment({ due_at: iso(now - H), closes_at: iso(now - H) })
    expect(itemFace({ kind: 'assignment', item: closed }, student).notice).toMatchObject({ type: 'error', testid: 'deadline-passed' })
    const f = itemFace({ kind: 'assignment', item: closed }, staff)
    expect(f.notice).toBeNull()
    expect(f.tags.map((t) => t.testid)).toEqual(['assignment-phase'])
    expect(f.facts.map((x) => x.label)).toEqual(['Due', 'Late work', 'Material', 'Visible from'])
  })

  it('a test with restrictions: its tags, and a notice for the student until it ends', () => {
    const t = test({ restrict_workspace: true, restrict_repl: true })
    const f = itemFace({ kind: 'test', item: t }, student)
    expect(f.tags.map((x) => x.text)).toEqual(['In progress', 'Test folders only', 'No empty REPL'])
    expect(f.facts.map((x) => x.label)).toEqual(['Window', 'Time per student'])
    expect(f.notice?.title).toBe(
      'During the test you see only the test folders. The empty REPL is off during the test; run your files instead.',
    )
    expect(itemFace({ kind: 'test', item: t }, { ...student, now: now + 2 * H }).notice).toBeNull()
  })

  it('a test as staff see it: material only for them, drafts named', () => {
    const f = itemFace({ kind: 'test', item: test({ publish_at: null, published: false, duration_minutes: 1 }) }, staff)
    expect(f.tags[0]).toMatchObject({ text: 'Draft: students do not see it', testid: 'test-phase' })
    expect(f.facts.map((x) => [x.label, x.text])).toContainEqual(['Time per student', '1 minute from their start'])
    expect(f.facts.find((x) => x.label === 'Material')).toMatchObject({ link: 'Tests/midterm', note: expect.any(String) })
    expect(f.facts.at(-1)).toEqual({ label: 'Visible from', text: 'Not published (draft)' })
  })
})

describe('itemLine', () => {
  it('assignments: when it is due, and the student’s own state', () => {
    expect(itemLine({ kind: 'assignment', item: assignment() }, student)).toEqual({
      when: 'due in 2 days',
      tag: { text: 'Not submitted', type: 'info', plain: true },
    })
    expect(itemLine({ kind: 'assignment', item: assignment() }, staff).tag).toBeNull()
    expect(itemLine({ kind: 'assignment', item: assignment({ published: false }) }, staff).tag?.text).toBe('draft')
  })

  it('tests: the countdown, and how long a student has', () => {
    expect(itemLine({ kind: 'test', item: test() }, student)).toEqual({
      when: '1:00:00 left',
      tag: { text: 'window', type: 'success', plain: true },
    })
    expect(itemLine({ kind: 'test', item: test({ duration_minutes: 30, my_end: null }) }, staff)).toEqual({
      when: 'open now: not started',
      tag: { text: '30 min', type: 'success', plain: true },
    })
  })
})

describe('names', () => {
  it('the material folder and the address letter of each kind', () => {
    expect(materialFolder({ kind: 'assignment', item: assignment() })).toBe('Assignments/hw1')
    expect(materialFolder({ kind: 'test', item: test() })).toBe('Tests/midterm')
    expect([routeKind('assignment'), routeKind('test')]).toEqual(['a', 't'])
  })
})
