// The WebSocket protocol of /api/ws (docs/protocol.md): what the browser may
// send and the JSON events the server sends in text frames. Binary frames are
// raw TTY bytes and never pass through here. The Go side of these types is
// pkg/terminal/protocol.go with pkg/sandbox's exit reasons, and
// pkg/terminal/protocol_ts_test.go fails when the two differ: keep each union
// member on one line, as the test reads them.

export type ClientMessage =
  | { type: 'run'; path: string }
  | { type: 'repl' }
  | { type: 'stdin'; data: string }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'stop' }
  | { type: 'keyboard'; grant: boolean }
  | { type: 'ask_keyboard' }

export type ExitReason = 'finished' | 'error' | 'timeout' | 'memory' | 'stopped' | 'idle' | 'reaped' | 'quota'

export type ServerEvent =
  | { type: 'started'; session: string; path: string; folders: Record<string, string> }
  | { type: 'queued'; position: number }
  | { type: 'exited'; code: number; reason: ExitReason | string }
  | { type: 'output_limited' }
  | { type: 'error'; message: string }
  | { type: 'watchers'; names: string[]; typing: string }
  | { type: 'keyboard_request'; by: string }
  | { type: 'keyboard'; granted: boolean }
  | { type: 'behind' }

/** Parses a text frame; returns null for anything that is not a known event. */
export function parseEvent(text: string): ServerEvent | null {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return null
  }
  if (!v || typeof v !== 'object' || !('type' in v)) return null
  const o = v as Record<string, unknown>
  switch (o.type) {
    case 'started':
      return { type: 'started', session: String(o.session ?? ''), path: typeof o.path === 'string' ? o.path : '', folders: stringMap(o.folders) }
    case 'queued':
      return { type: 'queued', position: Number(o.position) || 0 }
    case 'exited':
      return { type: 'exited', code: Number(o.code ?? 0), reason: String(o.reason ?? '') }
    case 'output_limited':
      return { type: 'output_limited' }
    case 'error':
      return { type: 'error', message: String(o.message ?? 'unknown error') }
    case 'watchers':
      return {
        type: 'watchers',
        names: Array.isArray(o.names) ? o.names.map(String) : [],
        typing: typeof o.typing === 'string' ? o.typing : '',
      }
    case 'keyboard_request':
      return { type: 'keyboard_request', by: String(o.by ?? '') }
    case 'keyboard':
      return { type: 'keyboard', granted: o.granted === true }
    case 'behind':
      return { type: 'behind' }
    default:
      return null
  }
}

/** Only the string values of an object: a newer or broken server cannot put anything else in. */
function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x
  return out
}

// A few words for the state badge; the console's line says the whole of it
// (console/words.ts).
const reasonText: Record<string, string> = {
  finished: 'finished',
  error: 'error',
  timeout: 'time limit',
  memory: 'memory limit',
  stopped: 'stopped',
  idle: 'idle too long',
  reaped: 'ended by the server',
  quota: 'storage quota',
}

export function describeReason(reason: string): string {
  return reasonText[reason] ?? (reason || 'ended')
}

/** The limits the server holds runs to (GET /api/console), for the console's words. */
export interface Limits {
  memory_mb: number
  cpu_seconds: number
  session_cpu_seconds: number
  idle_seconds: number
  repl_after_error: boolean
}

/** What the console learns before the first run (pkg/terminal/settings.go). */
export interface ConsoleSettings {
  /** This user may open an empty REPL (a restrict_repl test still refuses it while open). */
  repl: boolean
  limits: Limits
}

/**
 * Same origin, ws:// or wss:// following the page, with this browser tab's
 * id: the server keys a REPL by user and tab, so a reload reattaches to the
 * same REPL while two tabs keep two REPLs.
 */
export function socketURL(loc: Pick<Location, 'protocol' | 'host'>, tab: string): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/ws?tab=${encodeURIComponent(tab)}`
}

const memory = new Map<string, string>()
const memoryStorage = {
  getItem: (k: string) => memory.get(k) ?? null,
  setItem: (k: string, v: string) => void memory.set(k, v),
}

/** A random id for this tab, kept in sessionStorage (per tab, survives reloads). */
export function tabID(
  storage: Pick<Storage, 'getItem' | 'setItem'> = typeof sessionStorage === 'undefined' ? memoryStorage : sessionStorage,
): string {
  let id = storage.getItem('pyide.tab')
  if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
    const bytes = new Uint8Array(12)
    crypto.getRandomValues(bytes)
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
    storage.setItem('pyide.tab', id)
  }
  return id
}

/** Close codes of /api/ws and /api/ws/watch besides the standard ones (protocol.md). */
export const CloseSessionEnded = 4001
export const CloseWatchEnded = 4003

/** The read-only console of another user's tab: a help request's or a broadcast's. */
export function watchURL(loc: Pick<Location, 'protocol' | 'host'>, what: { help: number } | { broadcast: string }): string {
  const q = 'help' in what ? `help=${what.help}` : `broadcast=${encodeURIComponent(what.broadcast)}`
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/ws/watch?${q}`
}
