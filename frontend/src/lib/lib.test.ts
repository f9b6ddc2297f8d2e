import { describe, expect, it } from 'vitest'
import { parseCSV } from './csv'
import { decodeText, kindByName } from './filekind'
import { parentOf, rebase, sortEntries, validName, within } from './paths'
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
