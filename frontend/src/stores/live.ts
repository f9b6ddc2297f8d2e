// The live classroom: a student's own help request, the queue that teaching
// staff answer, the broadcasts students may follow and the professor's own.
// Polled while a screen that shows them is open.
import { defineStore } from 'pinia'
import * as api from '@/api/live'
import type { Broadcast, HelpRequest } from '@/api/live'
import { tabID } from '@/console/protocol'

export const useLiveStore = defineStore('live', {
  state: () => ({
    requests: [] as HelpRequest[],
    broadcasts: [] as Broadcast[],
    /** The professor's own broadcast, while it runs. */
    myBroadcast: null as Broadcast | null,
    error: '',
    timer: null as ReturnType<typeof setInterval> | null,
    users: 0,
  }),

  getters: {
    /** A student's own open request (the server lists only theirs). */
    mine: (s) => s.requests[0] ?? null,
  },

  actions: {
    async refresh() {
      try {
        const [rs, bs] = await Promise.all([api.helpQueue(), api.broadcasts()])
        this.$patch({ requests: rs, broadcasts: bs, error: '' })
      } catch (e) {
        this.error = e instanceof Error ? e.message : String(e)
      }
    },

    /** Keeps the queue and the broadcasts fresh while a user (a screen) wants them. */
    watch(): () => void {
      this.users++
      if (!this.timer) {
        void this.refresh()
        this.timer = setInterval(() => void this.refresh(), 3000)
      }
      return () => {
        if (--this.users === 0 && this.timer) {
          clearInterval(this.timer)
          this.timer = null
        }
      }
    },

    async ask(path: string, message: string) {
      const r = await api.askHelp(tabID(), path, message)
      this.requests = [r]
    },

    async cancel(id: number) {
      await api.endHelp(id)
      this.requests = this.requests.filter((r) => r.id !== id)
    },

    async startBroadcast(path: string) {
      this.myBroadcast = await api.startBroadcast(tabID(), path)
    },

    async stopBroadcast() {
      await api.stopBroadcast()
      this.myBroadcast = null
    },
  },
})
