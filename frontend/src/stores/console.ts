// The console store owns the one WebSocket to /api/ws: it turns the user's
// Run/REPL/Stop/keystrokes into protocol messages and the server's events into
// a visible state. TTY bytes go straight to the attached terminal sink, never
// into reactive state (streams would make Vue re-render on every chunk).
import { defineStore } from 'pinia'
import { markRaw } from 'vue'
import { getJSON } from '@/api/http'
import { describeReason, parseEvent, socketURL, tabID, type ClientMessage, type ConsoleSettings, type ServerEvent } from '@/console/protocol'
import { TracebackNamer, type Place } from '@/console/tracebacks'
import { ctrlCCode, exitSentence, nextStep, sessionEndedSentence } from '@/console/words'

export type Phase = 'idle' | 'starting' | 'queued' | 'running' | 'exited'

/** What the terminal widget must offer; xterm.js in the app, a recorder in tests. */
export interface TerminalSink {
  write(data: Uint8Array | string): void
  reset(): void
}

/** The subset of the browser WebSocket the store uses, so tests can supply a fake. */
export interface SocketLike {
  binaryType: BinaryType
  readonly readyState: number
  onopen: ((ev: Event) => unknown) | null
  onclose: ((ev: CloseEvent) => unknown) | null
  onerror: ((ev: Event) => unknown) | null
  onmessage: ((ev: MessageEvent) => unknown) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

export type SocketFactory = (url: string) => SocketLike

const OPEN = 1
/** The server's close code for a login session that ended (docs/protocol.md). */
const sessionEndedCode = 4001
const maxBackoffMs = 10_000

let socketFactory: SocketFactory = (url) => new WebSocket(url)
/** Tests swap in a fake socket here. */
export function setSocketFactory(f: SocketFactory): void {
  socketFactory = f
}

// Backoff with jitter so a classroom of browsers does not reconnect in lockstep
// after a server restart.
export function backoffDelay(attempt: number, random = Math.random): number {
  const base = Math.min(maxBackoffMs, 500 * 2 ** attempt)
  return Math.round(base * (0.75 + random() * 0.5))
}

const prompt = [0x3e, 0x3e, 0x3e, 0x20] // ">>> "
function endsWithPrompt(b: Uint8Array): boolean {
  if (b.length < prompt.length) return false
  return prompt.every((c, i) => b[b.length - prompt.length + i] === c)
}

// Bright black, not SGR 2 (dim): xterm lets dim text fall to half the
// minimum contrast (see ConsolePane).
const dim = (s: string) => `\r\n\x1b[90m${s}\x1b[0m\r\n`
const red = (s: string) => `\r\n\x1b[31m${s}\x1b[0m\r\n`
/** Keys typed before a program can take them wait here, up to this many characters. */
const typeAheadMax = 4096

export const useConsoleStore = defineStore('console', {
  state: () => ({
    connected: false,
    /** True once a connection dropped and we are trying again. */
    reconnecting: false,
    phase: 'idle' as Phase,
    kind: null as 'run' | 'repl' | null,
    /** The file being run; '' for an empty REPL. */
    path: '',
    session: '',
    queuePosition: 0,
    exitCode: null as number | null,
    exitReason: '',
    error: '',
    outputLimited: false,
    /** The script finished and Python's prompt appeared: the REPL is live. */
    atPrompt: false,
    /** Who watches this console now (a helper, followers of a broadcast). */
    watchers: [] as string[],
    /** The helper who may type now; '' for nobody. */
    typing: '',
    /** A helper who asks to type and awaits the answer; '' for none. */
    keyboardRequest: '',
    /** The user pressed Stop for this run. */
    stoppedByUser: false,
    /** Where the error that ended the last run points, in the tree; null if nowhere. */
    errorAt: null as Place | null,
    /** The server's console settings (GET /api/console); null until they arrive. */
    settings: null as ConsoleSettings | null,
    /** The login session ended (close code 4001): why, in the server's words; '' while it lives. */
    sessionEnded: '',
    // Non-reactive plumbing.
    socket: null as SocketLike | null,
    sink: null as TerminalSink | null,
    pending: null as ClientMessage | null,
    size: null as { cols: number; rows: number } | null,
    attempt: 0,
    timer: null as ReturnType<typeof setTimeout> | null,
    wanted: false,
    everOpened: false,
    /** After a reconnect the server replays scrollback: clear before the first byte. */
    replayPending: false,
    /** Renames traceback files to tree paths on the way to the sink. */
    namer: null as TracebackNamer | null,
    /** Keys typed while the program was starting, waiting, or the socket reconnecting. */
    typedAhead: '',
    /** "Nothing is running" was said since the last run: once is enough. */
    hinted: false,
  }),

  getters: {
    busy: (s) => s.phase === 'starting' || s.phase === 'queued' || s.phase === 'running',
    badge(s): string {
      switch (s.phase) {
        case 'idle':
          return 'Idle'
        case 'starting':
          return 'Starting…'
        case 'queued':
          return s.queuePosition > 0 ? `Queued #${s.queuePosition}` : 'Queued'
        case 'running':
          return (s.kind === 'repl' && !s.path) || s.atPrompt ? 'REPL' : 'Running'
        case 'exited':
          if (s.exitReason === 'error' && s.exitCode === ctrlCCode) return 'Stopped: Ctrl-C'
          if (s.exitReason === 'stopped' && s.stoppedByUser) return 'Stopped by you'
          // The exit code only tells a student something when their program failed.
          return `Exited: ${describeReason(s.exitReason)}${s.exitReason === 'error' || (s.exitReason === 'finished' && s.exitCode) ? ` (${s.exitCode})` : ''}`
      }
      return s.phase
    },
  },

  actions: {
    attach(sink: TerminalSink | null) {
      this.sink = sink ? markRaw(sink) : null
      this.namer = sink ? markRaw(new TracebackNamer((text) => this.sink?.write(text))) : null
    },

    /** Learns whether this user may open an empty REPL, and the limits a run is held to. */
    async loadSettings() {
      this.settings = await getJSON<ConsoleSettings>('/api/console')
    },

    /** Opens the socket (and keeps it open across drops until disconnect). */
    connect() {
      this.wanted = true
      if (this.socket) return
      if (this.timer) {
        clearTimeout(this.timer)
        this.timer = null
      }
      const ws = markRaw(socketFactory(socketURL(location, tabID())))
      ws.binaryType = 'arraybuffer'
      this.socket = ws
      ws.onopen = () => {
        if (this.socket !== ws) return
        this.connected = true
        this.replayPending = this.everOpened
        // The server says again who watches, if anyone does.
        this.$patch({ watchers: [], typing: '', keyboardRequest: '' })
        this.everOpened = true
        this.reconnecting = false
        this.attempt = 0
        if (this.size) this.rawSend({ type: 'resize', ...this.size })
        if (this.pending) {
          this.rawSend(this.pending)
          this.pending = null
        }
        this.sendTypedAhead()
      }
      ws.onmessage = (ev: MessageEvent) => {
        if (this.socket !== ws) return
        if (typeof ev.data === 'string') {
          const event = parseEvent(ev.data)
          if (event) this.handle(event)
        } else if (ev.data instanceof ArrayBuffer) {
          this.output(new Uint8Array(ev.data))
        }
      }
      ws.onclose = (ev: CloseEvent) => {
        if (this.socket !== ws) return
        this.socket = null
        this.connected = false
        if (ev.code === sessionEndedCode) {
          // The login is over for good: say why, and stop knocking.
          this.wanted = false
          this.sessionEnded = ev.reason || 'session ended'
          this.$patch({ phase: 'idle', reconnecting: false })
          this.sink?.write(red(sessionEndedSentence(this.sessionEnded)))
          return
        }
        if (!this.wanted) return
        this.reconnecting = true
        this.timer = setTimeout(() => {
          this.timer = null
          if (this.wanted) this.connect()
        }, backoffDelay(this.attempt++))
      }
      ws.onerror = () => {
        /* a close event always follows; reconnect is handled there */
      }
    },

    disconnect() {
      this.wanted = false
      if (this.timer) clearTimeout(this.timer)
      this.timer = null
      const ws = this.socket
      this.socket = null
      this.connected = false
      this.reconnecting = false
      this.pending = null
      ws?.close(1000, 'bye')
      this.$patch({ phase: 'idle', kind: null, path: '', session: '', error: '' })
    },

    run(path: string) {
      this.start({ type: 'run', path }, 'run', path)
    },

    repl() {
      this.start({ type: 'repl' }, 'repl', '')
    },

    stop() {
      if (this.phase === 'queued' || this.phase === 'starting' || this.phase === 'running') {
        this.stoppedByUser = true
        this.send({ type: 'stop' })
      }
    },

    /**
     * Keystrokes from the terminal. A live process takes them; while it
     * starts, waits in line or the socket reconnects they wait for it; with
     * nothing running the console says so once, so that nothing typed
     * disappears without a word.
     */
    input(data: string) {
      if (this.phase === 'running' && this.connected) {
        this.sendTypedAhead()
        this.rawSend({ type: 'stdin', data })
        return
      }
      if (this.phase === 'running' || this.phase === 'starting' || this.phase === 'queued') {
        const room = typeAheadMax - this.typedAhead.length
        if (data.length > room) this.sink?.write(red('You typed more than the program can be given before it starts; the rest was not sent.'))
        this.typedAhead += data.slice(0, Math.max(0, room))
        return
      }
      if (this.hinted) return
      this.hinted = true
      const repl = this.settings?.repl ? ' For a Python prompt, choose View → Show REPL.' : ''
      this.sink?.write(dim(`Nothing is running, so what you type here is not sent anywhere. Press Run (F5) to run the open file.${repl}`))
    },

    sendTypedAhead() {
      if (!this.typedAhead || this.phase !== 'running' || !this.connected) return
      const data = this.typedAhead
      this.typedAhead = ''
      this.rawSend({ type: 'stdin', data })
    },

    /** Lets the helper who asked type (true), or declines and takes the keyboard back (false). */
    keyboard(grant: boolean) {
      this.keyboardRequest = ''
      if (this.connected) this.rawSend({ type: 'keyboard', grant })
    },

    resize(cols: number, rows: number) {
      if (cols <= 0 || rows <= 0) return
      if (this.size && this.size.cols === cols && this.size.rows === rows) return
      this.size = { cols, rows }
      if (this.connected) this.rawSend({ type: 'resize', cols, rows })
    },

    start(msg: ClientMessage, kind: 'run' | 'repl', path: string) {
      this.sink?.reset()
      this.namer?.reset({})
      this.replayPending = false
      this.typedAhead = ''
      this.hinted = false
      this.$patch({
        phase: 'starting',
        kind,
        path,
        session: '',
        queuePosition: 0,
        exitCode: null,
        exitReason: '',
        error: '',
        outputLimited: false,
        atPrompt: false,
        stoppedByUser: false,
        errorAt: null,
      })
      this.send(msg)
    },

    /** Sends now, or as soon as the socket opens (only the latest command is kept). */
    send(msg: ClientMessage) {
      if (this.connected && this.socket?.readyState === OPEN) {
        this.rawSend(msg)
        return
      }
      this.pending = msg
      this.connect()
    },

    rawSend(msg: ClientMessage) {
      this.socket?.send(JSON.stringify(msg))
    },

    output(bytes: Uint8Array) {
      if (this.replayPending) {
        this.replayPending = false
        this.sink?.reset()
        this.namer?.reset()
      }
      if (this.namer) this.namer.push(bytes)
      else this.sink?.write(bytes)
      // Only the first prompt of a run changes state, so streaming output
      // costs no reactive writes.
      if (!this.atPrompt && this.phase === 'running' && endsWithPrompt(bytes)) this.atPrompt = true
    },

    handle(ev: ServerEvent) {
      switch (ev.type) {
        case 'started':
          // The line that said "waiting in line" gives way to the program.
          if (this.phase === 'queued') this.sink?.write('\r\x1b[2K')
          this.$patch({ phase: 'running', session: ev.session, path: ev.path, error: '', queuePosition: 0 })
          if (!this.kind) this.kind = ev.path ? 'run' : 'repl'
          if (this.namer) this.namer.folders = ev.folders
          this.sendTypedAhead()
          break
        case 'queued':
          this.$patch({ phase: 'queued', queuePosition: ev.position })
          this.sink?.write(`\r\x1b[2K\x1b[90mWaiting for a free place to run your program: you are number ${ev.position} in line…\x1b[0m`)
          break
        case 'exited': {
          this.namer?.flush()
          this.$patch({ phase: 'exited', exitCode: ev.code, exitReason: ev.reason })
          const x = { reason: ev.reason, code: ev.code, kind: this.kind, stoppedByUser: this.stoppedByUser, limits: this.settings?.limits ?? null }
          const next = nextStep(x)
          this.sink?.write(dim(`── ${exitSentence(x)} ──${next ? `\r\n${next}` : ''}`))
          if (ev.reason === 'error' && x.code !== ctrlCCode) this.errorAt = this.namer?.last ?? null
          this.typedAhead = ''
          break
        }
        case 'output_limited':
          this.outputLimited = true
          this.sink?.write(red('── too much output: the rest was dropped ──'))
          break
        case 'error':
          this.error = ev.message
          if (this.phase === 'starting' || this.phase === 'queued') this.phase = 'idle'
          this.sink?.write(red(ev.message))
          break
        case 'watchers':
          this.$patch({ watchers: ev.names, typing: ev.typing })
          if (!ev.names.includes(this.keyboardRequest)) this.keyboardRequest = ''
          break
        case 'keyboard_request':
          this.keyboardRequest = ev.by
          break
        case 'keyboard':
        case 'behind':
          break // for watchers only
      }
    },
  },
})
