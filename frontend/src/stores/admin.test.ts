import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { refreshEveryMs, useAdminStore } from './admin'
import { FakeServer, json } from '@/testing/fakes'
import type { AdminUser, Sandbox } from '@/api/admin'

const box = (over: Partial<Sandbox>): Sandbox => ({
  id: 's1',
  user: 'alice',
  file: 'Local/alice/a.py',
  spare: false,
  state: 'running',
  started: '2030-01-01T10:00:00Z',
  idle_seconds: 30,
  cpu_seconds: 1.5,
  memory_bytes: 20 << 20,
  ...over,
})

const stats = { running: 2, queued: 1, spares: 1, cap: 40 }

let srv: FakeServer
beforeEach(() => {
  setActivePinia(createPinia())
  srv = new FakeServer()
  vi.stubGlobal('fetch', srv.fetch)
})
afterEach(() => {
  useAdminStore().stopAutoRefresh()
  vi.unstubAllGlobals()
  vi.useRealTimers()
})

function serveStatus(sandboxes: Sandbox[]) {
  srv
    .on('GET', '/api/admin/status', () =>
      json(200, {
        time: '2030-01-01T10:00:00Z',
        database: { status: 'ok' },
        docker: { status: 'ok' },
        sandboxes: stats,
        disk: { path: '/data', total_bytes: 100 << 30, free_bytes: 40 << 30 },
      }),
    )
    .on('GET', '/api/admin/sandboxes', () => json(200, { sandboxes, stats }))
}

describe('admin store: sandboxes', () => {
  it('loads status and sandboxes, spares apart', async () => {
    serveStatus([box({ id: 'b', user: 'bob' }), box({ id: 'sp', spare: true, file: '' }), box({ id: 'a' })])
    const a = useAdminStore()
    await a.refresh()
    expect(a.status!.database.status).toBe('ok')
    expect(a.active.map((s) => s.id)).toEqual(['a', 'b'])
    expect(a.spareCount).toBe(1)
    expect(a.stats).toEqual(stats)
  })

  it('says plainly when Docker is away', async () => {
    srv
      .on('GET', '/api/admin/status', () => json(200, { time: '', database: { status: 'ok' }, docker: { status: 'down', error: 'no Docker engine answers' } }))
      .on('GET', '/api/admin/sandboxes', () => json(503, { error: 'execution is unavailable: no Docker engine answers' }))
    const a = useAdminStore()
    await a.refresh()
    expect(a.status!.docker).toEqual({ status: 'down', error: 'no Docker engine answers' })
    expect(a.sandboxError).toBe('execution is unavailable: no Docker engine answers')
    expect(a.sandboxes).toEqual([])
  })

  it('refreshes every 5 s while the page is visible, and stops', async () => {
    vi.useFakeTimers()
    serveStatus([])
    const doc = { hidden: false }
    const a = useAdminStore()
    const count = () => srv.requests.filter((r) => r.url.pathname === '/api/admin/sandboxes').length
    a.startAutoRefresh(doc)
    await vi.advanceTimersByTimeAsync(0)
    expect(count()).toBe(1)
    await vi.advanceTimersByTimeAsync(refreshEveryMs * 2)
    expect(count()).toBe(3)
    doc.hidden = true
    await vi.advanceTimersByTimeAsync(refreshEveryMs * 3)
    expect(count()).toBe(3)
    doc.hidden = false
    await vi.advanceTimersByTimeAsync(refreshEveryMs)
    expect(count()).toBe(4)
    a.stopAutoRefresh()
    await vi.advanceTimersByTimeAsync(refreshEveryMs * 3)
    expect(count()).toBe(4)
  })

  it('reaps one, and all idle longer than N minutes', async () => {
    serveStatus([box({ id: 'a' }), box({ id: 'b' })])
    srv
      .on('DELETE', '/api/admin/sandboxes/a', () => new Response(null, { status: 204 }))
      .on('POST', '/api/admin/sandboxes/reap', () => json(200, { reaped: 2 }))
    const a = useAdminStore()
    await a.refresh()
    await a.stop('a')
    expect(srv.last('DELETE', '/api/admin/sandboxes/a')).toBeTruthy()
    expect(await a.reapIdle(15)).toBe(2)
    expect(JSON.parse(srv.last('POST', '/api/admin/sandboxes/reap')!.body)).toEqual({ idle_seconds: 900 })
    expect(() => a.reapIdle(0)).toThrow('above 0')
  })
})

describe('admin store: users', () => {
  const alice: AdminUser = { username: 'alice', display_name: 'Alice', email: '', role: 'student', disabled: false, created: '', last_login: null }
  let users: AdminUser[]
  beforeEach(() => {
    users = [alice]
    srv.on('GET', '/api/admin/users', () => json(200, { users }))
  })

  it('adds a user and hands back the one-time password once', async () => {
    srv.on('POST', '/api/admin/users', async (req) => {
      const b = (await req.json()) as AdminUser
      users = [...users, { ...b, disabled: false, created: '', last_login: null }]
      return json(200, { created: [b.username], updated: [], unchanged: [], passwords: { [b.username]: 'tulip-orbit-42' } })
    })
    const a = useAdminStore()
    const pw = await a.addUser({ username: 'carol', display_name: 'Carol', role: 'student', email: 'c@example.edu' })
    expect(pw).toBe('tulip-orbit-42')
    expect(JSON.parse(srv.last('POST', '/api/admin/users')!.body)).toEqual({
      username: 'carol',
      display_name: 'Carol',
      role: 'student',
      email: 'c@example.edu',
    })
    expect(a.users.map((u) => u.username)).toEqual(['alice', 'carol'])
    expect(JSON.stringify(a.$state)).not.toContain('tulip-orbit-42')
  })

  it('imports a roster as text/csv and shows the server’s error for a bad line', async () => {
    srv.on('POST', '/api/admin/users/import', (req) =>
      req.headers.get('Content-Type') === 'text/csv'
        ? json(200, { created: ['dan'], updated: ['alice'], unchanged: [], passwords: { dan: 'pw' } })
        : json(415, { error: 'wrong type' }),
    )
    const a = useAdminStore()
    const csv = 'username,display_name,role\ndan,Dan,student\nalice,Alice B,student\n'
    const res = await a.importRoster(csv)
    expect(srv.last('POST', '/api/admin/users/import')!.body).toBe(csv)
    expect(res.passwords).toEqual({ dan: 'pw' })

    srv.on('POST', '/api/admin/users/import', () => json(400, { error: 'roster line 3: role "teacher" is not one of student, professor, admin' }))
    await expect(a.importRoster('x')).rejects.toThrow('roster line 3')
  })

  it('disables, enables and resets a password', async () => {
    srv
      .on('POST', '/api/admin/users/alice/disable', () => new Response(null, { status: 204 }))
      .on('POST', '/api/admin/users/alice/enable', () => new Response(null, { status: 204 }))
      .on('POST', '/api/admin/users/alice/reset-password', () => json(200, { username: 'alice', password: 'new-one-time' }))
    const a = useAdminStore()
    await a.loadUsers()
    await a.setDisabled('alice', true)
    expect(a.users[0]!.disabled).toBe(true)
    await a.setDisabled('alice', false)
    expect(a.users[0]!.disabled).toBe(false)
    expect(await a.resetPassword('alice')).toBe('new-one-time')
  })

  it('changes a role and deletes an account', async () => {
    srv
      .on('POST', '/api/admin/users/alice/role', () => new Response(null, { status: 204 }))
      .on('DELETE', '/api/admin/users/alice', () => new Response(null, { status: 204 }))
    const a = useAdminStore()
    await a.loadUsers()
    await a.setRole('alice', 'professor')
    expect(JSON.parse(srv.last('POST', '/api/admin/users/alice/role')!.body)).toEqual({ role: 'professor' })
    expect(a.users[0]!.role).toBe('professor')
    await a.deleteUser('alice')
    expect(a.users).toEqual([])
  })

  it('filters the audit log and pages back from the oldest entry shown', async () => {
    const entry = (id: number) => ({ id, at: '', actor: 'root', action: 'user.disable', target: 'alice', details: {} })
    srv.on('GET', '/api/admin/audit', (req) => {
      const before = new URL(req.url).searchParams.get('before')
      return json(200, before ? { entries: [entry(1)], more: false } : { entries: [entry(3), entry(2)], more: true })
    })
    const a = useAdminStore()
    await a.loadAudit({ actor: 'root', action: 'user.', target: '' })
    expect(srv.last('GET', '/api/admin/audit')!.url.search).toBe('?actor=root&action=user.')
    expect(a.auditMore).toBe(true)
    await a.loadAudit({ actor: 'root', action: 'user.', target: '' }, true)
    expect(srv.last('GET', '/api/admin/audit')!.url.searchParams.get('before')).toBe('2')
    expect(a.audit.map((e) => e.id)).toEqual([3, 2, 1])
    expect(a.auditMore).toBe(false)
  })

  it('keeps the error of a refused listing (a professor is not an admin)', async () => {
    srv.on('GET', '/api/admin/users', () => json(403, { error: 'admins only' }))
    const a = useAdminStore()
    await a.loadUsers()
    expect(a.usersError).toBe('admins only')
  })
})
