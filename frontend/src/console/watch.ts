// A read-only console of another user's tab over /api/ws/watch: a help
// request's (the helper may type once the student grants it) or a
// broadcast's. It reconnects after a drop, when the server replays the
// scrollback; a close with CloseWatchEnded or CloseSessionEnded is final.
import { CloseSessionEnded, CloseWatchEnded, parseEvent, watchURL, type ServerEvent } from './protocol'
import { backoffDelay, type SocketFactory, type SocketLike } from '@/stores/console'

export interface WatchHandlers {
  output(bytes: Uint8Array): void
  /** Before a replay of the scrollback: clear the terminal. */
  reset(): void
  event(ev: ServerEvent): void
  /** The watch is over for good; reason is the server's words. */
  ended(reason: string): void
  connected?(up: boolean): void
}

export class WatchSocket {
  private socket: SocketLike | null = null
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private stopped = false

  constructor(
    private readonly what: { help: number } | { broadcast: string },
    private readonly h: WatchHandlers,
    private readonly factory: SocketFactory = (url) => new WebSocket(url),
  ) {}

  open(): void {
    if (this.stopped || this.socket) return
    const ws = this.factory(watchURL(location, this.what))
    ws.binaryType = 'arraybuffer'
    this.socket = ws
    // The scrollback comes first, then the current run's started: only a
    // later started (a new run) clears the console.
    let first = true
    let runs = 0
    ws.onopen = () => {
      this.attempt = 0
      this.h.connected?.(true)
    }
    ws.onmessage = (ev: MessageEvent) => {
      if (this.socket !== ws) return
      if (typeof ev.data === 'string') {
        const e = parseEvent(ev.data)
        if (e?.type === 'behind' || (e?.type === 'started' && runs++ > 0)) this.h.reset()
        if (e) this.h.event(e)
      } else if (ev.data instanceof ArrayBuffer) {
        if (first) this.h.reset()
        first = false
        this.h.output(new Uint8Array(ev.data))
      }
    }
    ws.onclose = (ev: CloseEvent) => {
      if (this.socket !== ws) return
      this.socket = null
      this.h.connected?.(false)
      if (this.stopped) return
      if (ev.code === CloseWatchEnded || ev.code === CloseSessionEnded || ev.code === 1000) {
        this.stopped = true
        this.h.ended(ev.reason || 'The live view has ended.')
        return
      }
      // A refused handshake looks like a drop: after a few tries, stop.
      if (this.attempt >= 5) {
        this.stopped = true
        this.h.ended('The live view could not be opened (it may have ended).')
        return
      }
      this.timer = setTimeout(() => {
        this.timer = null
        this.open()
      }, backoffDelay(this.attempt++))
    }
    ws.onerror = () => {}
  }

  send(msg: { type: 'stdin'; data: string } | { type: 'ask_keyboard' }): void {
    if (this.socket?.readyState === 1) this.socket.send(JSON.stringify(msg))
  }

  close(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    const ws = this.socket
    this.socket = null
    ws?.close(1000, 'bye')
  }
}
