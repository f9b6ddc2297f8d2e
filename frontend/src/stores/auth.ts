// The auth store owns who is logged in. The session itself is an HttpOnly
// cookie the server sets; the browser never sees a token.
import { defineStore } from 'pinia'
import { ApiError, getJSON, sendJSON } from '@/api/http'
import type { User } from '@/api/types'

export const useAuthStore = defineStore('auth', {
  state: () => ({
    user: null as User | null,
    /** True once /api/auth/me has answered (either way). */
    checked: false,
  }),

  getters: {
    isStaff: (s) => s.user?.role === 'professor' || s.user?.role === 'admin',
    /** Reads students' work, grades and answers the help queue: staff and teaching assistants. */
    teaches: (s) => s.user?.role === 'professor' || s.user?.role === 'admin' || s.user?.role === 'ta',
    /** The user's own workspace folder. */
    home: (s) => (s.user ? `Local/${s.user.username}` : ''),
    displayName: (s) => s.user?.display_name || s.user?.username || '',
    /** The user must replace a handed-out password before the IDE opens. */
    mustChangePassword: (s) => s.user?.must_change_password === true,
  },

  actions: {
    /** Asks the server who we are; a 401 simply means "not logged in". */
    async fetchMe() {
      try {
        const data = await getJSON<{ user: User }>('/api/auth/me')
        this.user = data.user
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 401) throw e
        this.user = null
      } finally {
        this.checked = true
      }
    },

    async login(username: string, password: string) {
      const data = await sendJSON<{ user: User }>('POST', '/api/auth/login', { username, password })
      this.user = data.user
      this.checked = true
    },

    async logout() {
      try {
        await sendJSON('POST', '/api/auth/logout', {})
      } finally {
        this.user = null
      }
    },

    async changePassword(current: string, next: string) {
      await sendJSON('POST', '/api/auth/password', { current_password: current, new_password: next })
      if (this.user) this.user.must_change_password = false
    },

    /** The server refused a request until the password is changed (a 403 with its code). */
    passwordChangeRequired() {
      if (this.user) this.user.must_change_password = true
    },

    /** The session ended server-side (a 401 from any API call). */
    expired() {
      this.user = null
    },
  },
})

/** What to tell a user whose login failed; throttling says how long to wait. */
export function loginErrorText(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 429) {
      const wait = e.retryAfter
      const when = wait === null ? 'a little while' : formatWait(wait)
      return `Too many login attempts. Try again in ${when}.`
    }
    return e.message
  }
  return e instanceof Error ? e.message : String(e)
}

export function formatWait(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`
  const m = Math.ceil(seconds / 60)
  return `${m} minute${m === 1 ? '' : 's'}`
}
