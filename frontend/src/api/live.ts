// The live classroom's HTTP API (/api/live, docs/http-api.md): the help
// queue, broadcasts and run transcripts.
import { getJSON, request, sendJSON } from './http'

export interface HelpRequest {
  id: number
  username: string
  path: string
  message: string
  created_at: string
  taken_by: string
  taken_at: string | null
  open: boolean
  /** The student's console is open now: a helper can join it. */
  live: boolean
}

export interface Broadcast {
  id: string
  username: string
  display_name: string
  path: string
  started_at: string
}

export interface Transcript {
  id: number
  username: string
  path: string
  item: string
  started_at: string
  ended_at: string
  exit_code: number
  reason: string
  truncated: boolean
  bytes: number
}

export const askHelp = (tab: string, path: string, message: string) =>
  sendJSON<{ request: HelpRequest }>('POST', '/api/live/help', { tab, path, message }).then((r) => r.request)
export const helpQueue = () => getJSON<{ requests: HelpRequest[] }>('/api/live/help').then((r) => r.requests)
export const takeHelp = (id: number) =>
  sendJSON<{ request: HelpRequest }>('POST', `/api/live/help/${id}/take`, {}).then((r) => r.request)
export const endHelp = (id: number) => request('DELETE', `/api/live/help/${id}`).then(() => undefined)

export const startBroadcast = (tab: string, path: string) =>
  sendJSON<{ broadcast: Broadcast }>('POST', '/api/live/broadcast', { tab, path }).then((r) => r.broadcast)
export const stopBroadcast = () => request('DELETE', '/api/live/broadcast').then(() => undefined)
export const broadcasts = () => getJSON<{ broadcasts: Broadcast[] }>('/api/live/broadcasts').then((r) => r.broadcasts)
export const broadcastFile = (id: string) =>
  getJSON<{ path: string; content: string; version: string }>(`/api/live/broadcasts/${encodeURIComponent(id)}/file`)
export const tryBroadcast = (id: string) =>
  sendJSON<{ path: string }>('POST', `/api/live/broadcasts/${encodeURIComponent(id)}/try`, {}).then((r) => r.path)

export function transcripts(user: string, item = ''): Promise<Transcript[]> {
  const q = new URLSearchParams({ user })
  if (item) q.set('item', item)
  return getJSON<{ transcripts: Transcript[] }>(`/api/live/transcripts?${q}`).then((r) => r.transcripts)
}
export const transcriptBytes = (id: number) =>
  request('GET', `/api/live/transcripts/${id}`)
    .then((r) => r.arrayBuffer())
    .then((b) => new Uint8Array(b))
