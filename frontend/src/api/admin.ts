// Admin endpoints (/api/admin, pkg/admin): server status and live sandboxes
// for staff, user management for admins.
import { getJSON, request, sendJSON } from './http'
import type { Role } from './types'

export interface Health {
  status: 'ok' | 'down'
  error?: string
}

export interface SandboxStats {
  running: number
  queued: number
  spares: number
  cap: number
}

export interface Status {
  time: string
  database: Health
  docker: Health
  /** Absent while Docker is down. */
  sandboxes?: SandboxStats
  disk?: { path: string; total_bytes: number; free_bytes: number }
}

export interface Sandbox {
  id: string
  user: string
  file: string
  spare: boolean
  state: string
  started: string
  idle_seconds: number
  cpu_seconds: number
  memory_bytes: number
}

export interface AdminUser {
  username: string
  display_name: string
  email: string
  role: Role
  disabled: boolean
  created: string
  /** When they last signed in; null: never. */
  last_login: string | null
}

export interface AuditEntry {
  id: number
  at: string
  actor: string
  action: string
  target: string
  details: Record<string, unknown>
}

/** What the audit log shows: empty fields show everything. */
export interface AuditFilter {
  actor: string
  /** The start of the action: "user." is every user action. */
  action: string
  /** A part of the target, in any case. */
  target: string
}

export interface NewUser {
  username: string
  display_name: string
  role: Role
  email: string
}

export interface RosterResult {
  created: string[]
  updated: string[]
  unchanged: string[]
  /** One-time passwords of the users just created: shown once, never stored. */
  passwords: Record<string, string> | null
}

export type ReapRequest = { idle_seconds: number } | { user: string } | { all: true }

const user = (name: string) => `/api/admin/users/${encodeURIComponent(name)}`

export const status = () => getJSON<Status>('/api/admin/status')
export const sandboxes = () => getJSON<{ sandboxes: Sandbox[] | null; stats: SandboxStats }>('/api/admin/sandboxes')
export const stopSandbox = (id: string) => request('DELETE', `/api/admin/sandboxes/${encodeURIComponent(id)}`)
export const reap = (req: ReapRequest) => sendJSON<{ reaped: number }>('POST', '/api/admin/sandboxes/reap', req)

export const users = () => getJSON<{ users: AdminUser[] | null }>('/api/admin/users')
export const addUser = (u: NewUser) => sendJSON<RosterResult>('POST', '/api/admin/users', u)
export async function importRoster(csv: string): Promise<RosterResult> {
  const res = await request('POST', '/api/admin/users/import', { body: csv, headers: { 'Content-Type': 'text/csv' } })
  return (await res.json()) as RosterResult
}
export const disableUser = (name: string) => request('POST', `${user(name)}/disable`)
export const enableUser = (name: string) => request('POST', `${user(name)}/enable`)
export const setRole = (name: string, role: Role) => sendJSON('POST', `${user(name)}/role`, { role })
export const deleteUser = (name: string) => request('DELETE', user(name))

/** A page of the audit log, newest first; before: the oldest id already shown. */
export function audit(f: AuditFilter, before = 0) {
  const q = new URLSearchParams()
  if (f.actor) q.set('actor', f.actor)
  if (f.action) q.set('action', f.action)
  if (f.target) q.set('target', f.target)
  if (before) q.set('before', String(before))
  return getJSON<{ entries: AuditEntry[] | null; more: boolean }>(`/api/admin/audit?${q}`)
}

export const resetPassword = (name: string) =>
  sendJSON<{ username: string; password: string }>('POST', `${user(name)}/reset-password`, {})
