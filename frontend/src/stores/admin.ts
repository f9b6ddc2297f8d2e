// The admin store owns the dashboard's data: the server's status, the live
// sandboxes (refreshed every few seconds while the page is shown) and, for
// admins, the users. One-time passwords pass through here to the screen
// that shows them once; the store keeps none of them.
import { defineStore } from 'pinia'
import * as api from '@/api/admin'
import type { AdminUser, AuditEntry, AuditFilter, NewUser, ReapRequest, Sandbox, SandboxStats, Status } from '@/api/admin'
import type { Role } from '@/api/types'

export const refreshEveryMs = 5000

let timer: ReturnType<typeof setInterval> | null = null

export const useAdminStore = defineStore('admin', {
  state: () => ({
    status: null as Status | null,
    statusError: '',
    sandboxes: [] as Sandbox[],
    stats: null as SandboxStats | null,
    sandboxError: '',
    users: [] as AdminUser[],
    usersError: '',
    audit: [] as AuditEntry[],
    auditMore: false,
    auditError: '',
    /** When the sandboxes were last refreshed (browser time, ms). */
    refreshedAt: 0,
  }),

  getters: {
    /** Sandboxes running a student's program or REPL (spares wait unseen). */
    active: (s) => s.sandboxes.filter((x) => !x.spare),
    spareCount: (s) => s.sandboxes.filter((x) => x.spare).length,
  },

  actions: {
    async refresh() {
      await Promise.all([this.loadStatus(), this.loadSandboxes()])
      this.refreshedAt = Date.now()
    },

    async loadStatus() {
      try {
        this.status = await api.status()
        this.statusError = ''
      } catch (e) {
        this.statusError = message(e)
      }
    },

    async loadSandboxes() {
      try {
        const res = await api.sandboxes()
        this.sandboxes = (res.sandboxes ?? []).sort((a, b) => a.user.localeCompare(b.user) || a.started.localeCompare(b.started))
        this.stats = res.stats
        this.sandboxError = ''
      } catch (e) {
        this.sandboxError = message(e)
        this.sandboxes = []
      }
    },

    /** Refreshes every few seconds while the page is visible; call stop when the screen goes. */
    startAutoRefresh(doc: { hidden: boolean } = globalThis.document) {
      this.stopAutoRefresh()
      void this.refresh()
      timer = setInterval(() => {
        if (!doc?.hidden) void this.refresh()
      }, refreshEveryMs)
    },

    stopAutoRefresh() {
      if (timer) clearInterval(timer)
      timer = null
    },

    async stop(id: string) {
      await api.stopSandbox(id)
      this.sandboxes = this.sandboxes.filter((s) => s.id !== id)
      void this.loadSandboxes()
    },

    async reap(req: ReapRequest): Promise<number> {
      const res = await api.reap(req)
      await this.loadSandboxes()
      return res.reaped
    },

    /** Reaps every sandbox idle for at least `minutes`. */
    reapIdle(minutes: number) {
      const idle_seconds = Math.round(minutes * 60)
      if (!(idle_seconds > 0)) throw new Error('Give a number of minutes above 0.')
      return this.reap({ idle_seconds })
    },

    async loadUsers() {
      try {
        const res = await api.users()
        this.users = res.users ?? []
        this.usersError = ''
      } catch (e) {
        this.usersError = message(e)
      }
    },

    /** Adds a user; resolves to their one-time password. */
    async addUser(u: NewUser): Promise<string> {
      const res = await api.addUser(u)
      await this.loadUsers()
      return res.passwords?.[u.username] ?? ''
    },

    async importRoster(csv: string) {
      const res = await api.importRoster(csv)
      await this.loadUsers()
      return res
    },

    async setDisabled(name: string, disabled: boolean) {
      await (disabled ? api.disableUser(name) : api.enableUser(name))
      const u = this.users.find((x) => x.username === name)
      if (u) u.disabled = disabled
    },

    /** Gives a user another role; the server ends their sessions. */
    async setRole(name: string, role: Role) {
      await api.setRole(name, role)
      const u = this.users.find((x) => x.username === name)
      if (u) u.role = role
    },

    async deleteUser(name: string) {
      await api.deleteUser(name)
      this.users = this.users.filter((x) => x.username !== name)
    },

    /** The audit log from the newest entry, or (more) the page after what is shown. */
    async loadAudit(f: AuditFilter, more = false) {
      try {
        const res = await api.audit(f, more ? (this.audit.at(-1)?.id ?? 0) : 0)
        this.audit = more ? [...this.audit, ...(res.entries ?? [])] : (res.entries ?? [])
        this.auditMore = res.more
        this.auditError = ''
      } catch (e) {
        this.auditError = message(e)
      }
    },

    async resetPassword(name: string): Promise<string> {
      return (await api.resetPassword(name)).password
    },
  },
})

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}
