import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { formatWait, loginErrorText, useAuthStore } from './auth'
import { FakeServer, json } from '@/testing/fakes'
import { parseRetryAfter } from '@/api/http'

let srv: FakeServer
beforeEach(() => {
  setActivePinia(createPinia())
  srv = new FakeServer()
  vi.stubGlobal('fetch', srv.fetch)
})
afterEach(() => vi.unstubAllGlobals())

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
