import { afterEach, describe, expect, it, vi } from 'vitest'
import { renameFiles, TracebackNamer, treePath } from './tracebacks'

const folders = {
  '/home/student': 'Local/alice',
  '/course/Lecture Notes': 'Lecture Notes',
  '/submissions/hw1': 'Submissions/hw1/alice',
}
const enc = (s: string) => new TextEncoder().encode(s)

afterEach(() => vi.useRealTimers())

describe('traceback files as the tree names them', () => {
  it.each([
    { inside: '/home/student/oops.py', want: 'Local/alice/oops.py' },
    { inside: '/home/student/sub/deep.py', want: 'Local/alice/sub/deep.py' },
    { inside: '/course/Lecture Notes/week 1/demo.py', want: 'Lecture Notes/week 1/demo.py' },
    { inside: '/submissions/hw1/a.py', want: 'Submissions/hw1/alice/a.py' },
    { inside: '/home/studentx/a.py', want: null },
    { inside: '/usr/lib/python3.11/json/__init__.py', want: null },
  ])('$inside', ({ inside, want }) => {
    expect(treePath(inside, folders)).toBe(want)
  })

  it('renames only the files of frames, and leaves the library alone', () => {
    const tb =
      'Traceback (most recent call last):\n' +
      '  File "/home/student/main.py", line 3, in <module>\n' +
      '  File "/course/Lecture Notes/helpers.py", line 7, in load\n' +
      '  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads\n' +
      'print("/home/student/x")\n'
    expect(renameFiles(tb, folders)).toBe(
      'Traceback (most recent call last):\n' +
        '  File "Local/alice/main.py", line 3, in <module>\n' +
        '  File "Lecture Notes/helpers.py", line 7, in load\n' +
        '  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads\n' +
        'print("/home/student/x")\n',
    )
  })

  it('renames a file line split across chunks, and remembers the last place in the tree', () => {
    vi.useFakeTimers()
    let out = ''
    const n = new TracebackNamer((t) => (out += t))
    n.folders = folders
    n.push(enc('Traceback (most recent call last):\r\n  File "/home/stu'))
    expect(out).toBe('Traceback (most recent call last):\r\n')
    n.push(enc('dent/oops.py", line 2, in <module>\r\n'))
    n.push(enc('  File "/usr/lib/python3.11/x.py", line 9, in f\r\nZeroDivisionError: division by zero\r\n'))
    expect(out).toContain('  File "Local/alice/oops.py", line 2, in <module>')
    expect(n.last).toEqual({ path: 'Local/alice/oops.py', line: 2 })
  })

  it('lets a prompt through at once and a held line after a moment', () => {
    vi.useFakeTimers()
    let out = ''
    const n = new TracebackNamer((t) => (out += t), 50)
    n.push(enc('name? '))
    expect(out).toBe('name? ')
    n.push(enc('\r\n  F'))
    expect(out).toBe('name? \r\n')
    vi.advanceTimersByTime(50)
    expect(out).toBe('name? \r\n  F')
  })

  it('decodes UTF-8 split between chunks', () => {
    let out = ''
    const n = new TracebackNamer((t) => (out += t))
    const b = enc('héllo\r\n')
    n.push(b.slice(0, 2))
    n.push(b.slice(2))
    expect(out).toBe('héllo\r\n')
  })
})
