// Fakes for the two boundaries the stores cross: the browser's WebSocket and
// fetch. Everything behind them (the Go server) is tested in its own packages
// and end to end in a real browser.
import type { SocketLike } from '@/stores/console'

export class FakeSocket implements SocketLike {
  static all: FakeSocket[] = []
  binaryType: BinaryType = 'blob'
  readyState = 0
  sent: unknown[] = []
  closedByClient = false
  onopen: ((ev: Event) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null

  constructor(readonly url: string) {
    FakeSocket.all.push(this)
  }

  static last(): FakeSocket {
    const s = FakeSocket.all[FakeSocket.all.length - 1]
    if (!s) throw new Error('no socket was opened')
    return s
  }

  send(data: string) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    this.sent.push(JSON.parse(data))
  }

  close() {
    this.closedByClient = true
    this.readyState = 3
  }

  // Server side.
  open() {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }
  event(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) } as MessageEvent)
  }
  bytes(s: string) {
    this.onmessage?.({ data: new TextEncoder().encode(s).buffer } as MessageEvent)
  }
  drop() {
    this.closeWith(1006, '')
  }
  closeWith(code: number, reason: string) {
    this.readyState = 3
    this.onclose?.({ code, reason } as CloseEvent)
  }
}

export type Handler = (req: Request) => Response | Promise<Response>

/** A fetch that routes "METHOD /path" to handlers and records every request. */
export class FakeServer {
  routes = new Map<string, Handler>()
  requests: { method: string; url: URL; headers: Headers; body: string }[] = []

  on(method: string, path: string, h: Handler) {
    this.routes.set(`${method} ${path}`, h)
    return this
  }

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = new Request(new URL(String(input), 'http://ide.test'), init)
    const url = new URL(req.url)
    const body = req.method === 'GET' ? '' : await req.clone().text()
    this.requests.push({ method: req.method, url, headers: req.headers, body })
    const h = this.routes.get(`${req.method} ${url.pathname}`)
    if (!h) return json(404, { error: `no route ${req.method} ${url.pathname}` })
    return h(req)
  }

  last(method: string, path: string) {
    return this.requests.filter((r) => r.method === method && r.url.pathname === path).at(-1)
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } })
}
