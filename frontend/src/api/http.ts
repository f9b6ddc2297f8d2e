// The one place the app talks HTTP to the server. Every error becomes an
// ApiError carrying the server's {"error": "..."} message, so screens can show
// it as is.

export class ApiError extends Error {
  readonly status: number
  /** Seconds from Retry-After on 429, else null. */
  readonly retryAfter: number | null
  /** The server's machine-readable "code", when it sent one (e.g. password_change_required). */
  readonly code: string | null

  constructor(status: number, message: string, retryAfter: number | null = null, code: string | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.retryAfter = retryAfter
    this.code = code
  }
}

/** The 403 code of a user who must replace a handed-out password before anything else. */
export const PASSWORD_CHANGE_REQUIRED = 'password_change_required'

type Hook = () => void
let onUnauthorized: Hook | null = null
let onPasswordChange: Hook | null = null

/** Called on any 401 except from the auth endpoints themselves (the session ended). */
export function setUnauthorizedHook(hook: Hook | null): void {
  onUnauthorized = hook
}

/** Called on any 403 with code password_change_required: the change-password dialog must open. */
export function setPasswordChangeHook(hook: Hook | null): void {
  onPasswordChange = hook
}

export interface RequestOptions {
  json?: unknown
  body?: BodyInit
  headers?: Record<string, string>
  signal?: AbortSignal
}

/** Sends a request and returns the Response when it is 2xx; throws ApiError otherwise. */
export async function request(method: string, url: string, opts: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers }
  let body = opts.body
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.json)
  }
  let res: Response
  try {
    res = await fetch(url, { method, headers, body, credentials: 'same-origin', signal: opts.signal })
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e
    throw new ApiError(0, 'Cannot reach the server. Check your connection and try again.')
  }
  if (res.ok) return res
  throw await errorFrom(res, url)
}

export async function getJSON<T>(url: string): Promise<T> {
  return (await request('GET', url)).json() as Promise<T>
}

export async function sendJSON<T>(method: string, url: string, json: unknown): Promise<T> {
  const res = await request(method, url, { json })
  const text = await res.text()
  return (text ? JSON.parse(text) : {}) as T
}

async function errorFrom(res: Response, url: string): Promise<ApiError> {
  let message = ''
  let code: string | null = null
  try {
    const data: unknown = await res.clone().json()
    if (data && typeof data === 'object' && 'error' in data && typeof data.error === 'string') message = data.error
    if (data && typeof data === 'object' && 'code' in data && typeof data.code === 'string') code = data.code
  } catch {
    message = (await res.text().catch(() => '')).trim().slice(0, 300)
  }
  if (!message) message = `${res.status} ${res.statusText || 'request failed'}`
  const retry = res.headers.get('Retry-After')
  const retryAfter = res.status === 429 ? parseRetryAfter(retry) : null
  if (res.status === 401 && !url.startsWith('/api/auth/') && onUnauthorized) onUnauthorized()
  if (res.status === 403 && code === PASSWORD_CHANGE_REQUIRED && onPasswordChange) onPasswordChange()
  return new ApiError(res.status, message, retryAfter, code)
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null
  const trimmed = value.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed)
  const when = Date.parse(trimmed)
  if (Number.isNaN(when)) return null
  return Math.max(0, Math.ceil((when - now) / 1000))
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message
  return String(e)
}

/** Query-string helper: paths contain spaces and slashes ("Lecture Notes/week 1.pdf"). */
export function withPath(base: string, path: string): string {
  return `${base}?path=${encodeURIComponent(path)}`
}
