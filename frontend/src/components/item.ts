// An assignment and a test are two kinds of one course item, shown by one
// panel (ItemPanel.vue) and one list (CourseView.vue). What differs between
// the kinds is here: the phase an item is in, its tags, its facts, the
// notice a student reads and its line in the list, each at the server's
// time. The rules themselves are the server's (pkg/course); these only say
// what to show.
import type { Assignment, CourseItem, ItemKind, Submission, Test } from '@/api/course'
import { assignmentStatus, testStatus } from '@/stores/course'
import { countdown, formatLocal, relative } from '@/lib/time'

type Tone = 'info' | 'success' | 'warning' | 'danger'

export interface Tag {
  text: string
  type?: Tone
  /** Outlined, for what describes the item rather than its phase. */
  plain?: boolean
  testid?: string
}

export interface Fact {
  label: string
  text: string
  /** Shown muted after the text: "(in 2 days)". */
  rel?: string
  /** A tree path: the text is a link that shows it in the IDE. */
  link?: string
  /** Shown muted after a link. */
  note?: string
  testid?: string
}

export interface Notice {
  type: 'error' | 'warning' | 'info'
  title: string
  testid?: string
}

/** What the panel shows of an item, apart from what every item has. */
export interface ItemFace {
  tags: Tag[]
  facts: Fact[]
  notice: Notice | null
  /** Said once staff published it or took it back to draft. */
  published: string
  unpublished: string
}

/** Who looks, when (server time, ms), and what they submitted of the item. */
export interface Viewer {
  staff: boolean
  now: number
  history: Submission[]
}

/** The folder of an item's material in the tree. */
export const materialFolder = (it: CourseItem) => `${it.kind === 'assignment' ? 'Assignments' : 'Tests'}/${it.item.slug}`

/** The letter of a kind in the course screen's address (/course/a/hw1). */
export const routeKind = (kind: ItemKind) => (kind === 'assignment' ? 'a' : 't')

export function itemFace(it: CourseItem, v: Viewer): ItemFace {
  return it.kind === 'assignment' ? assignmentFace(it.item, v) : testFace(it.item, v)
}

/** What every item tells staff: when students see it. */
function visibleFrom(publishAt: string | null): Fact {
  return { label: 'Visible from', text: publishAt ? formatLocal(publishAt) : 'Not published (draft)' }
}

function assignmentFace(a: Assignment, v: Viewer): ItemFace {
  const status = assignmentStatus(a, v.history, v.now)
  const phase = {
    draft: { text: 'Draft: students do not see it', type: 'info' as const },
    scheduled: { text: `Visible ${relative(Date.parse(a.publish_at ?? ''), v.now)}`, type: 'info' as const },
    open: { text: 'Open', type: 'success' as const },
    late: { text: 'Late submissions only', type: 'warning' as const },
    closed: { text: 'Closed', type: 'danger' as const },
  }[status.phase]
  const tags: Tag[] = [{ ...phase, testid: 'assignment-phase' }]
  if (!v.staff) tags.push({ text: status.label, type: status.tone, plain: true, testid: 'assignment-status' })

  const folder = materialFolder({ kind: 'assignment', item: a })
  const facts: Fact[] = [
    {
      label: 'Due',
      text: formatLocal(a.due_at),
      rel: `(${relative(Date.parse(a.due_at), v.now)})`,
      testid: 'assignment-due',
    },
    {
      label: 'Late work',
      text:
        a.late_policy === 'cutoff'
          ? `Accepted until ${formatLocal(a.late_cutoff_at)}, marked late`
          : 'Not accepted after the due time',
    },
    { label: 'Material', text: folder, link: folder, testid: 'material-link' },
  ]
  if (v.staff) facts.push(visibleFrom(a.publish_at))
  if (!v.staff && status.last) {
    facts.push({ label: 'Last submitted', text: `${formatLocal(status.last.submitted_at)}${status.last.late ? ' (late)' : ''}` })
  }

  let notice: Notice | null = null
  if (!v.staff && status.phase === 'closed') {
    notice = {
      type: 'error',
      testid: 'deadline-passed',
      title: `The deadline passed on ${formatLocal(a.closes_at)}. Submissions are closed; your submitted files are kept read-only.`,
    }
  } else if (!v.staff && status.phase === 'late') {
    notice = {
      type: 'warning',
      title: `The due time has passed. You can still submit until ${formatLocal(a.closes_at)} (${relative(Date.parse(a.closes_at), v.now)}), marked late.`,
    }
  }
  return {
    tags,
    facts,
    notice,
    published: 'Published: students see it now.',
    unpublished: 'Back to draft: students no longer see it.',
  }
}

function testFace(t: Test, v: Viewer): ItemFace {
  const status = testStatus(t, v.now)
  let phase: { text: string; type: Tone }
  if (!t.publish_at) phase = { text: 'Draft: students do not see it', type: 'info' }
  else if (Date.parse(t.publish_at) > v.now) phase = { text: 'Not visible yet', type: 'info' }
  else {
    phase = {
      upcoming: { text: 'Upcoming', type: 'info' as const },
      ready: { text: 'Open: not started', type: 'success' as const },
      running: { text: v.staff ? 'Open' : 'In progress', type: 'success' as const },
      finished: { text: 'Your time is up', type: 'warning' as const },
      ended: { text: 'Ended', type: 'danger' as const },
    }[status.phase]
  }
  const tags: Tag[] = [{ ...phase, testid: 'test-phase' }]
  if (t.restrict_workspace) tags.push({ text: 'Test folders only', plain: true })
  if (t.restrict_repl) tags.push({ text: 'No empty REPL', plain: true })

  const n = t.duration_minutes
  const facts: Fact[] = [
    { label: 'Window', text: `${formatLocal(t.starts_at)} – ${formatLocal(t.ends_at)}` },
    { label: 'Time per student', text: n ? `${n} minute${n === 1 ? '' : 's'} from their start` : 'The whole window' },
  ]
  if (v.staff) {
    const folder = materialFolder({ kind: 'test', item: t })
    facts.push(
      { label: 'Material', text: folder, link: folder, note: '(students see it only inside their window)', testid: 'material-link' },
      visibleFrom(t.publish_at),
    )
  }

  let notice: Notice | null = null
  if (!v.staff && (t.restrict_workspace || t.restrict_repl) && status.phase !== 'ended') {
    notice = {
      type: 'info',
      title: [
        t.restrict_workspace ? 'During the test you see only the test folders.' : '',
        t.restrict_repl ? 'The empty REPL is off during the test; run your files instead.' : '',
      ]
        .filter(Boolean)
        .join(' '),
    }
  }
  return {
    tags,
    facts,
    notice,
    published: 'Published: students see it (its material only inside the window).',
    unpublished: 'Back to draft.',
  }
}

/** An item's line in the course list: when, and a small tag. */
export interface ItemLine {
  when: string
  tag: Tag | null
}

export function itemLine(it: CourseItem, v: Viewer): ItemLine {
  const draft: Tag = { text: 'draft', type: 'info' }
  if (it.kind === 'assignment') {
    const a = it.item
    const st = assignmentStatus(a, v.history, v.now)
    const when =
      st.phase === 'closed' ? `closed ${relative(Date.parse(a.closes_at), v.now)}` : `due ${relative(Date.parse(a.due_at), v.now)}`
    if (!a.published) return { when, tag: draft }
    return { when, tag: v.staff ? null : { text: st.label, type: st.tone, plain: true } }
  }
  const t = it.item
  const st = testStatus(t, v.now)
  const when = {
    upcoming: `starts in ${countdown(st.remaining)}`,
    ready: 'open now: not started',
    running: v.staff ? 'open now' : `${countdown(st.remaining)} left`,
    finished: 'your time is up',
    ended: `ended ${relative(Date.parse(t.ends_at), v.now)}`,
  }[st.phase]
  if (!t.published) return { when, tag: draft }
  const tone = ({ upcoming: 'info', ready: 'success', running: 'success', finished: 'warning', ended: 'info' } as const)[st.phase]
  return { when, tag: { text: t.duration_minutes ? `${t.duration_minutes} min` : 'window', type: tone, plain: true } }
}
