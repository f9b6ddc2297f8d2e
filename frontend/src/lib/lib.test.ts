import { describe, expect, it } from 'vitest'
import { parseCSV } from './csv'
import { decodeText, kindByName } from './filekind'
import { parentOf, pythonPath, rebase, sortEntries, validName, within } from './paths'
import { renderMarkdown } from './markdown'
import { lineDiff } from './diff'
import { clockOffset, countdown, formatBytes, formatSeconds, fromLocalInput, relative, toLocalInput } from './time'
import type { Entry } from '@/api/types'

describe('parseCSV', () => {
  it.each([
    { name: 'plain', text: 'a,b\n1,2\n', want: [['a', 'b'], ['1', '2']] },
    { name: 'crlf and no final newline', text: 'a,b\r\n1,2', want: [['a', 'b'], ['1', '2']] },
    { name: 'quotes, commas and newlines inside', text: '"x, y","say ""hi""\nthere"\n', want: [['x, y', 'say "hi"\nthere']] },
    { name: 'empty fields', text: ',a,\n', want: [['', 'a', '']] },
    { name: 'byte order mark', text: '\ufeffh\n', want: [['h']] },
  ])('$name', ({ text, want }) => {
    expect(parseCSV(text).rows).toEqual(want)
  })

  it('stops at the row cap and says so', () => {
    const t = parseCSV('1\n2\n3\n4\n', 2)
    expect(t.rows).toEqual([['1'], ['2']])
    expect(t.truncated).toBe(true)
  })
})

describe('file kinds', () => {
  it.each([
    { path: 'Lecture Notes/w1.PDF', want: 'pdf' },
    { path: 'a/b.png', want: 'image' },
    { path: 'data.csv', want: 'csv' },
    { path: 'hello.py', want: null },
    { path: '.bashrc', want: null },
  ])('$path', ({ path, want }) => {
    expect(kindByName(path)).toBe(want)
  })

  it('decodes UTF-8 text and refuses binary', () => {
    expect(decodeText(new TextEncoder().encode('héllo').buffer)).toBe('héllo')
    expect(decodeText(new Uint8Array([0xff, 0xfe, 0x00]).buffer)).toBeNull()
    expect(decodeText(new Uint8Array([0x61, 0x00]).buffer)).toBeNull()
  })
})

describe('paths', () => {
  it('splits and rebases', () => {
    expect(parentOf('Local/alice/a.py')).toBe('Local/alice')
    expect(parentOf('Local')).toBe('')
    expect(within('Local/alice/a.py', 'Local/alice')).toBe(true)
    expect(within('Local/alice2', 'Local/alice')).toBe(false)
    expect(rebase('Local/a/x/y.py', 'Local/a/x', 'Local/a/z')).toBe('Local/a/z/y.py')
  })

  it('validates names', () => {
    expect(validName('ok.py')).toBeNull()
    expect(validName('..')).not.toBeNull()
    expect(validName('a/b')).not.toBeNull()
    expect(validName('  ')).not.toBeNull()
  })

  it('sorts folders first, numbers naturally', () => {
    const e = (name: string, type: 'file' | 'dir'): Entry => ({ name, path: name, type, size: 0, modified: '', writable: true })
    expect(sortEntries([e('w10.py', 'file'), e('w2.py', 'file'), e('data', 'dir')]).map((x) => x.name)).toEqual([
      'data',
      'w2.py',
      'w10.py',
    ])
  })
})

describe('renderMarkdown', () => {
  it('renders the usual Markdown', () => {
    const html = renderMarkdown('# Task\n\nWrite **two** functions:\n\n- `add`\n- `sub`\n\n```python\nprint(1)\n```\n')
    expect(html).toContain('<h1>Task</h1>')
    expect(html).toContain('<strong>two</strong>')
    expect(html).toContain('<li><code>add</code></li>')
    expect(html).toContain('<pre><code class="language-python">print(1)\n</code></pre>')
  })

  it.each([
    { name: 'script tag', src: '<script>alert(1)</script>', bad: '<script' },
    { name: 'img onerror', src: '<img src=x onerror="alert(1)">', bad: '<img' },
    { name: 'javascript link', src: '[click](javascript:alert(1))', bad: 'href="javascript' },
    { name: 'data html link', src: '[x](data:text/html;base64,PHNjcmlwdD4=)', bad: 'href="data' },
    { name: 'attribute break-out in a link', src: '[x](https://a.example/"onmouseover="alert(1))', bad: '" onmouseover' },
  ])('escapes $name', ({ src, bad }) => {
    expect(renderMarkdown(src)).not.toContain(bad)
  })

  it('leaves file names as text, and links only written-out addresses', () => {
    const html = renderMarkdown('Save it as main.py next to data.csv, then see https://docs.python.org/3/ or mail help@uni.edu.')
    expect(html).not.toContain('href="http://main.py"')
    expect(html.match(/<a /g)).toHaveLength(1)
    expect(html).toContain('href="https://docs.python.org/3/"')
  })

  it('opens links in a new tab without an opener', () => {
    expect(renderMarkdown('[docs](https://docs.python.org/3/)')).toContain(
      '<a href="https://docs.python.org/3/" target="_blank" rel="noopener noreferrer">docs</a>',
    )
  })
})

describe('time', () => {
  it('takes the server clock at the middle of the round trip', () => {
    expect(clockOffset('1970-01-01T00:00:10Z', 2000, 4000)).toBe(7000)
    expect(clockOffset('not a time', 0, 0)).toBeNull()
  })

  it.each([
    { d: 30_000, want: 'in less than a minute' },
    { d: -30_000, want: 'less than a minute ago' },
    { d: 5 * 60_000, want: 'in 5 minutes' },
    { d: 3_600_000, want: 'in 1 hour' },
    { d: 2 * 86_400_000 + 3_600_000, want: 'in 2 days' },
    { d: -3 * 3_600_000, want: '3 hours ago' },
    { d: 8 * 86_400_000, want: 'in 1 week' },
  ])('relative $d', ({ d, want }) => {
    expect(relative(1_000_000_000 + d, 1_000_000_000)).toBe(want)
  })

  it.each([
    { ms: 0, want: '00:00' },
    { ms: -5000, want: '00:00' },
    { ms: 65_900, want: '01:05' },
    { ms: 3_723_000, want: '1:02:03' },
    { ms: 2 * 86_400_000 + 3_723_000, want: '2 d 01:02:03' },
  ])('countdown $ms', ({ ms, want }) => {
    expect(countdown(ms)).toBe(want)
  })

  it('round-trips datetime-local values through instants', () => {
    const iso = fromLocalInput('2030-03-04T09:30')!
    expect(toLocalInput(iso)).toBe('2030-03-04T09:30')
    expect(fromLocalInput('')).toBeNull()
  })

  it('formats bytes and seconds', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(3.5 * 1048576)).toBe('3.5 MB')
    expect(formatBytes(12 * 1073741824)).toBe('12 GB')
    expect(formatSeconds(45)).toBe('45 s')
    expect(formatSeconds(750)).toBe('12 min')
    expect(formatSeconds(3 * 3600 + 300)).toBe('3 h 05 min')
  })
})

describe('pythonPath', () => {
  const student = { home: 'Local/alice', user: 'alice', staff: false }
  const prof = { home: 'Local/prof', user: 'prof', staff: true }
  const inTest = { home: 'Submissions/exam/alice', user: 'alice', staff: false }
  it.each([
    { tree: 'Local/alice', o: student, want: '/home/student' },
    { tree: 'Local/alice/data/scores.csv', o: student, want: '/home/student/data/scores.csv' },
    { tree: 'Lecture Notes/week 1/data.csv', o: student, want: '/course/Lecture Notes/week 1/data.csv' },
    { tree: 'Assignments/hw1/starter.py', o: student, want: '/course/Assignments/hw1/starter.py' },
    { tree: 'Tests/exam/q1.txt', o: student, want: '/course/Tests/exam/q1.txt' },
    { tree: 'Submissions/hw1/alice/a.py', o: student, want: '/submissions/hw1/a.py' },
    { tree: 'Submissions/hw1/bob/a.py', o: student, want: null },
    { tree: 'Submissions/hw1/bob/a.py', o: prof, want: '/course/Submissions/hw1/bob/a.py' },
    { tree: 'Local/bob/x.py', o: prof, want: null },
    { tree: 'Submissions/exam/alice/answer.py', o: inTest, want: '/home/student/answer.py' },
  ])('$tree', ({ tree, o, want }) => {
    expect(pythonPath(tree, o)).toBe(want)
  })
})

describe('lineDiff', () => {
  const ops = (now: string, then: string, max?: number) => lineDiff(now, then, max).map((l) => `${{ same: ' ', now: '-', then: '+' }[l.op]}${l.text}`)
  it('marks what a restore would remove and bring back', () => {
    expect(ops('a\nb\nc\nd', 'a\nc\nx\nd')).toEqual([' a', '-b', ' c', '+x', ' d'])
  })
  it('says nothing differs for the same text', () => {
    expect(ops('a\nb', 'a\nb')).toEqual([' a', ' b'])
  })
  it('still tells the truth when the middle is too long to compare', () => {
    expect(ops('a\nb\nc\nz', 'a\nx\ny\nz', 4)).toEqual([' a', '-b', '-c', '+x', '+y', ' z'])
  })
})
