import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { formatWait, loginErrorText, useAuthStore } from './auth'
import { FakeServer, json } from '@/testing/fakes'
import { ApiError, getJSON, parseRetryAfter, setPasswordChangeHook } from '@/api/http'

let srv: FakeServer
beforeEach(() => {
  setActivePinia(createPinia())
  srv = new FakeServer()
  vi.stubGlobal('fetch', srv.fetch)
})
afterEach(() => {
  vi.unstubAllGlobals()
  setPasswordChangeHook(null)
})

describe('auth store', () => {
  it('treats 401 from /me as logged out', async () => {
    srv.on('GET', '/api/auth/me', () => json(401, { error: 'not logged in' }))
    const a = useAuthStore()
    await a.fetchMe()
    expect(a.user).toBeNull()
    expect(a.checked).toBe(true)
  })

  it('logs in and knows the role and home folder', async () => {
    srv.on('POST', '/api/auth/login', () =>
      json(200, { user: { username: 'prof', display_name: 'Prof. Ada', role: 'professor' } }),
    )
    const a = useAuthStore()
    await a.login('prof', 'secret')
    expect(JSON.parse(srv.last('POST', '/api/auth/login')!.body)).toEqual({ username: 'prof', password: 'secret' })
    expect(a.isStaff).toBe(true)
    expect(a.home).toBe('Local/prof')
  })

  it('shows the server message for a wrong password', async () => {
    srv.on('POST', '/api/auth/login', () => json(401, { error: 'wrong username or password' }))
    const err = await useAuthStore()
      .login('a', 'b')
      .catch((e: unknown) => e)
    expect(loginErrorText(err)).toBe('wrong username or password')
  })

  it('tells a throttled user how long to wait', async () => {
    srv.on('POST', '/api/auth/login', () => json(429, { error: 'slow down' }, { 'Retry-After': '90' }))
    const err = await useAuthStore()
      .login('a', 'b')
      .catch((e: unknown) => e)
    expect(loginErrorText(err)).toBe('Too many login attempts. Try again in 2 minutes.')
  })

  it('sends the password change the server expects', async () => {
    srv.on('POST', '/api/auth/password', () => json(200, {}))
    await useAuthStore().changePassword('old', 'new-password')
    expect(JSON.parse(srv.last('POST', '/api/auth/password')!.body)).toEqual({
      current_password: 'old',
      new_password: 'new-password',
    })
  })
})

describe('a handed-out password', () => {
  const newbie = { username: 'newbie', display_name: 'New Student', role: 'student', must_change_password: true }

  it('is known from the login answer', async () => {
    srv.on('POST', '/api/auth/login', () => json(200, { user: newbie, must_change_password: true }))
    const a = useAuthStore()
    await a.login('newbie', 'from the roster')
    expect(a.mustChangePassword).toBe(true)
  })

  it('is known from /me on load', async () => {
    srv.on('GET', '/api/auth/me', () => json(200, { user: newbie, must_change_password: true }))
    const a = useAuthStore()
    await a.fetchMe()
    expect(a.mustChangePassword).toBe(true)
  })

  it('is known from a 403 with its code on any other request', async () => {
    srv.on('GET', '/api/auth/me', () => json(200, { user: { ...newbie, must_change_password: false } }))
    srv.on('GET', '/api/files', () =>
      json(403, { error: 'choose your own password first', code: 'password_change_required' }),
    )
    const a = useAuthStore()
    await a.fetchMe()
    expect(a.mustChangePassword).toBe(false)
    setPasswordChangeHook(() => a.passwordChangeRequired())
    const err = await getJSON('/api/files?path=Local').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).code).toBe('password_change_required')
    expect(a.mustChangePassword).toBe(true)
  })

  it('is cleared by a successful change, and kept by a failed one', async () => {
    srv.on('POST', '/api/auth/login', () => json(200, { user: newbie, must_change_password: true }))
    const a = useAuthStore()
    await a.login('newbie', 'from the roster')
    srv.on('POST', '/api/auth/password', () => json(400, { error: 'password policy: the password must be at least 8 characters' }))
    await expect(a.changePassword('from the roster', 'short')).rejects.toThrow('at least 8')
    expect(a.mustChangePassword).toBe(true)
    srv.on('POST', '/api/auth/password', () => new Response(null, { status: 204 }))
    await a.changePassword('from the roster', 'my own secret')
    expect(a.mustChangePassword).toBe(false)
  })
})

describe('Retry-After', () => {
  it.each([
    { name: 'seconds', value: '42', want: 42 },
    { name: 'http date', value: new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), want: 30 },
    { name: 'missing', value: null, want: null },
    { name: 'garbage', value: 'soon', want: null },
  ])('$name', ({ value, want }) => {
    expect(parseRetryAfter(value, Date.UTC(2030, 0, 1))).toBe(want)
  })

  it('formats waits in words', () => {
    expect(formatWait(1)).toBe('1 second')
    expect(formatWait(59)).toBe('59 seconds')
    expect(formatWait(60)).toBe('1 minute')
    expect(formatWait(61)).toBe('2 minutes')
  })
})
