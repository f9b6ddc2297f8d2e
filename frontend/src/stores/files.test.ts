import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { autosaveDelayMs, useFilesStore } from './files'
import { FakeServer, json } from '@/testing/fakes'

// A tiny versioned file server behind the fake fetch: enough to exercise
// If-Match, 409 and listings the way the contract describes them.
function fileServer() {
  const srv = new FakeServer()
  const files = new Map<string, { text: string; version: number }>([
    ['Local/alice/hello.py', { text: 'print("hi")\n', version: 1 }],
    ['Lecture Notes/notes.py', { text: 'x = 1\n', version: 1 }],
  ])
  const entry = (path: string, type: 'file' | 'dir', writable: boolean) => ({
    name: path.slice(path.lastIndexOf('/') + 1),
    path,
    type,
    size: 0,
    modified: '2025-01-01T00:00:00Z',
    writable,
  })
  const listings: Record<string, unknown[]> = {
    '': [entry('Lecture Notes', 'dir', false), entry('Local', 'dir', false)],
    Local: [entry('Local/alice', 'dir', true)],
    'Local/alice': [entry('Local/alice/hello.py', 'file', true)],
    'Lecture Notes': [entry('Lecture Notes/notes.py', 'file', false)],
  }
  srv.on('GET', '/api/files', (req) => {
    const p = new URL(req.url).searchParams.get('path') ?? ''
    const entries = listings[p]
    return entries ? json(200, { path: p, entries }) : json(404, { error: 'not found' })
  })
  srv.on('GET', '/api/files/content', (req) => {
    const f = files.get(new URL(req.url).searchParams.get('path') ?? '')
    if (!f) return json(404, { error: 'not found' })
    return new Response(f.text, { headers: { ETag: `"v${f.version}"` } })
  })
  srv.on('PUT', '/api/files/content', async (req) => {
    const p = new URL(req.url).searchParams.get('path') ?? ''
    const f = files.get(p)
    if (!f) return json(404, { error: 'not found' })
    const match = req.headers.get('If-Match')
    if (match && match !== `"v${f.version}"`) return json(409, { error: 'stale' })
    f.text = await req.text()
    f.version++
    return json(200, { path: p, version: `"v${f.version}"`, size: f.text.length }, { ETag: `"v${f.version}"` })
  })
  return { srv, files, listings, entry }
}

let server: ReturnType<typeof fileServer>

beforeEach(() => {
  setActivePinia(createPinia())
  server = fileServer()
  vi.stubGlobal('fetch', server.srv.fetch)
})

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

async function openHello() {
  const s = useFilesStore()
  await s.init('Local/alice')
  await s.open('Local/alice/hello.py')
  return s
}

describe('files store', () => {
  it('loads the roots and expands the home folder', async () => {
    const s = useFilesStore()
    await s.init('Local/alice')
    expect(s.dirs['']!.map((e) => e.name)).toEqual(['Lecture Notes', 'Local'])
    expect(s.expanded['Local']).toBe(true)
    expect(s.expanded['Local/alice']).toBe(true)
    expect(s.selected).toBe('Local/alice')
    expect(s.targetDir('x')).toBe('Local/alice')
  })

  it('saves with If-Match and carries the new version into the next save', async () => {
    const s = await openHello()
    const tab = s.activeTab!
    expect(tab.text).toBe('print("hi")\n')
    expect(tab.version).toBe('"v1"')
    s.edit(tab.path, 'print("one")\n')
    expect(s.isDirty(tab)).toBe(true)
    expect(await s.save(tab.path)).toBe(true)
    expect(server.srv.last('PUT', '/api/files/content')!.headers.get('If-Match')).toBe('"v1"')
    expect(s.isDirty(tab)).toBe(false)
    s.edit(tab.path, 'print("two")\n')
    expect(await s.save(tab.path)).toBe(true)
    expect(server.srv.last('PUT', '/api/files/content')!.headers.get('If-Match')).toBe('"v2"')
    expect(server.files.get(tab.path)!.text).toBe('print("two")\n')
  })

  it('autosaves once after typing stops', async () => {
    const s = await openHello()
    vi.useFakeTimers()
    s.edit('Local/alice/hello.py', 'a')
    vi.advanceTimersByTime(autosaveDelayMs - 100)
    s.edit('Local/alice/hello.py', 'ab')
    vi.advanceTimersByTime(autosaveDelayMs - 1)
    expect(server.srv.requests.filter((r) => r.method === 'PUT')).toHaveLength(0)
    vi.advanceTimersByTime(1)
    vi.useRealTimers()
    await vi.waitFor(() => expect(server.files.get('Local/alice/hello.py')!.text).toBe('ab'))
    expect(server.srv.requests.filter((r) => r.method === 'PUT')).toHaveLength(1)
  })

  it('serialises overlapping saves so none is sent with a stale version', async () => {
    const s = await openHello()
    // Hold the first PUT on the "network" until the user has typed again.
    const realPut = server.srv.routes.get('PUT /api/files/content')!
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    server.srv.on('PUT', '/api/files/content', async (req) => {
      await gate
      return realPut(req)
    })
    s.edit('Local/alice/hello.py', 'first')
    const a = s.save('Local/alice/hello.py')
    await vi.waitFor(() => expect(server.srv.requests.filter((r) => r.method === 'PUT')).toHaveLength(1))
    s.edit('Local/alice/hello.py', 'second')
    const b = s.save('Local/alice/hello.py')
    release()
    expect(await a).toBe(false) // saved, but the text changed while it was in flight
    expect(await b).toBe(true)
    const puts = server.srv.requests.filter((r) => r.method === 'PUT')
    expect(puts.map((r) => [r.body, r.headers.get('If-Match')])).toEqual([
      ['first', '"v1"'],
      ['second', '"v2"'],
    ])
    expect(server.files.get('Local/alice/hello.py')).toEqual({ text: 'second', version: 3 })
    expect(s.activeTab!.conflict).toBeNull()
  })

  it('turns a 409 into a conflict; keep mine overwrites the newer version', async () => {
    const s = await openHello()
    server.files.set('Local/alice/hello.py', { text: 'theirs\n', version: 7 })
    s.edit('Local/alice/hello.py', 'mine\n')
    expect(await s.save('Local/alice/hello.py')).toBe(false)
    const tab = s.activeTab!
    expect(tab.conflict).toEqual({ theirs: 'theirs\n', version: '"v7"' })
    // No autosave may overwrite while the conflict is open.
    expect(await s.save('Local/alice/hello.py')).toBe(false)
    await s.resolveConflict(tab.path, 'mine')
    expect(tab.conflict).toBeNull()
    expect(server.files.get(tab.path)!.text).toBe('mine\n')
    expect(s.isDirty(tab)).toBe(false)
  })

  it('take theirs replaces the local text without writing', async () => {
    const s = await openHello()
    server.files.set('Local/alice/hello.py', { text: 'theirs\n', version: 7 })
    s.edit('Local/alice/hello.py', 'mine\n')
    await s.save('Local/alice/hello.py')
    const puts = server.srv.requests.filter((r) => r.method === 'PUT').length
    await s.resolveConflict('Local/alice/hello.py', 'theirs')
    const tab = s.activeTab!
    expect(tab.text).toBe('theirs\n')
    expect(s.isDirty(tab)).toBe(false)
    expect(tab.version).toBe('"v7"')
    expect(server.srv.requests.filter((r) => r.method === 'PUT').length).toBe(puts)
  })

  it('opens read-only files read-only and never writes them', async () => {
    const s = useFilesStore()
    await s.init('Local/alice')
    await s.expand('Lecture Notes')
    await s.open('Lecture Notes/notes.py')
    const tab = s.activeTab!
    expect(tab.writable).toBe(false)
    s.edit(tab.path, 'changed')
    expect(tab.text).toBe('x = 1\n')
    expect(await s.save(tab.path)).toBe(true)
    expect(server.srv.requests.some((r) => r.method === 'PUT')).toBe(false)
  })

  it('shows the server error when a save fails', async () => {
    const s = await openHello()
    server.srv.on('PUT', '/api/files/content', () => json(413, { error: 'file too large (10 MB max)' }))
    s.edit('Local/alice/hello.py', 'big')
    expect(await s.save('Local/alice/hello.py')).toBe(false)
    expect(s.activeTab!.saveError).toBe('file too large (10 MB max)')
    expect(s.anyUnsaved).toBe(true)
  })

  it('classifies binary bytes and CSV', async () => {
    server.srv.on('GET', '/api/files/content', (req) => {
      const p = new URL(req.url).searchParams.get('path') ?? ''
      if (p.endsWith('.bin')) return new Response(new Uint8Array([0, 159, 146, 150]), { headers: { ETag: '"b"' } })
      return new Response('a,b\n1,2\n', { headers: { ETag: '"c"' } })
    })
    const s = useFilesStore()
    await s.open('Local/alice/blob.bin')
    expect(s.activeTab!.kind).toBe('binary')
    await s.open('Local/alice/data.csv')
    expect(s.activeTab!.kind).toBe('csv')
    expect(s.activeTab!.text).toBe('a,b\n1,2\n')
    s.close('Local/alice/data.csv')
    expect(s.active).toBe('Local/alice/blob.bin')
  })
})

describe('files store across users', () => {
  it('drops the previous user’s tabs when someone else signs in on this browser', async () => {
    const s = await openHello()
    expect(s.tabs).toHaveLength(1)
    await s.init('Local/alice')
    expect(s.tabs).toHaveLength(1) // same user (e.g. after an expired session): keep
    await s.init('Local/bob').catch(() => undefined)
    expect(s.tabs).toHaveLength(0)
  })
})

describe('listings', () => {
  it('keeps the server’s order for the roots, sorts folders, and remembers the quota', async () => {
    const srv = new FakeServer()
    const e = (path: string, type: 'file' | 'dir') => ({ name: path.split('/').pop(), path, type, size: 0, modified: '', writable: true })
    srv.on('GET', '/api/files', (req) => {
      const p = new URL(req.url).searchParams.get('path')
      if (p === '') return json(200, { path: '', entries: [e('Local', 'dir'), e('Lecture Notes', 'dir')] })
      return json(200, { path: p, entries: [e(`${p}/b.py`, 'file'), e(`${p}/a`, 'dir')], quota: { used: 5, limit: 10 } })
    })
    vi.stubGlobal('fetch', srv.fetch)
    const s = useFilesStore()
    await s.loadDir('')
    expect(s.dirs['']!.map((x) => x.name)).toEqual(['Local', 'Lecture Notes'])
    await s.loadDir('Local')
    expect(s.dirs['Local']!.map((x) => x.name)).toEqual(['a', 'b.py'])
    expect(s.quota).toEqual({ used: 5, limit: 10 })
  })
})

describe('files store: reveal and read-only open', () => {
  it('expands every folder down to a path from a cold tree and selects it', async () => {
    const f = useFilesStore()
    await f.reveal('Local/alice/hello.py')
    expect(f.expanded).toMatchObject({ Local: true, 'Local/alice': true })
    expect(f.selected).toBe('Local/alice/hello.py')
    await f.reveal('Lecture Notes')
    expect(f.expanded['Lecture Notes']).toBe(true)
    expect(f.dirs['Lecture Notes']!.map((e) => e.name)).toEqual(['notes.py'])
  })

  it('finds a folder made after its parent was listed (starter files just copied)', async () => {
    const f = useFilesStore()
    await f.reveal('Local/alice')
    expect(f.dirs['Local/alice']!.map((e) => e.name)).toEqual(['hello.py'])
    server.listings['Local/alice'] = [server.entry('Local/alice/hw1', 'dir', true), server.entry('Local/alice/hello.py', 'file', true)]
    server.listings['Local/alice/hw1'] = [server.entry('Local/alice/hw1/starter.py', 'file', true)]
    await f.reveal('Local/alice/hw1')
    expect(f.selected).toBe('Local/alice/hw1')
    expect(f.expanded['Local/alice/hw1']).toBe(true)
    expect(f.dirs['Local/alice/hw1']!.map((e) => e.name)).toEqual(['starter.py'])
  })

  it('opens a writable file read-only when asked, so a grader cannot edit a submission', async () => {
    const f = useFilesStore()
    await f.reveal('Local/alice/hello.py')
    await f.open('Local/alice/hello.py', { readOnly: true })
    f.edit('Local/alice/hello.py', 'changed')
    expect(f.activeTab!.writable).toBe(false)
    expect(f.activeTab!.text).toBe('print("hi")\n')
  })

  it('locks a folder: keys stop, the last text is saved, then the tab is read-only', async () => {
    const s = await openHello()
    s.edit('Local/alice/hello.py', 'print("last line")\n')
    const failed = await s.lock('Local/alice')
    expect(failed).toEqual([])
    expect(server.files.get('Local/alice/hello.py')!.text).toBe('print("last line")\n')
    const tab = s.tabs[0]!
    expect(tab).toMatchObject({ locked: true, writable: false })
    // Typing after the lock changes nothing.
    s.edit('Local/alice/hello.py', 'too late')
    expect(tab.text).toBe('print("last line")\n')
  })

  it('names what a lock could not save, and keeps its text on screen', async () => {
    const s = await openHello()
    server.srv.on('PUT', '/api/files/content', () => json(403, { error: 'read-only for you' }))
    s.edit('Local/alice/hello.py', 'unsaved\n')
    expect(await s.lock('Local/alice')).toEqual(['Local/alice/hello.py'])
    expect(s.tabs[0]!.text).toBe('unsaved\n')
  })
})
