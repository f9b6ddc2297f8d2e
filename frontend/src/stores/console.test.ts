import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { backoffDelay, setSocketFactory, useConsoleStore, type TerminalSink } from './console'
import { FakeSocket } from '@/testing/fakes'

class RecordingSink implements TerminalSink {
  out = ''
  resets = 0
  write(d: Uint8Array | string) {
    this.out += typeof d === 'string' ? d : new TextDecoder().decode(d)
  }
  reset() {
    this.resets++
    this.out = ''
  }
}

function setup() {
  const store = useConsoleStore()
  const sink = new RecordingSink()
  store.attach(sink)
  return { store, sink }
}

beforeEach(() => {
  setActivePinia(createPinia())
  FakeSocket.all = []
  setSocketFactory((url) => new FakeSocket(url))
  vi.stubGlobal('location', { protocol: 'https:', host: 'ide.example.edu' })
})

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('console store', () => {
  it('connects same-origin with wss on https and binary frames as array buffers', () => {
    const { store } = setup()
    store.connect()
    const ws = FakeSocket.last()
    expect(ws.url).toMatch(/^wss:\/\/ide\.example\.edu\/api\/ws\?tab=[0-9a-f]{24}$/)
    expect(ws.binaryType).toBe('arraybuffer')
  })

  it('queues a run until the socket opens, sending the terminal size first', () => {
    const { store } = setup()
    store.resize(100, 30)
    store.run('Local/alice/hello.py')
    expect(store.phase).toBe('starting')
    const ws = FakeSocket.last()
    expect(ws.sent).toEqual([])
    ws.open()
    expect(ws.sent).toEqual([
      { type: 'resize', cols: 100, rows: 30 },
      { type: 'run', path: 'Local/alice/hello.py' },
    ])
  })

  it('follows the server events through a run', () => {
    const { store, sink } = setup()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    store.run('Local/alice/hello.py')
    expect(store.badge).toBe('Starting…')
    ws.event({ type: 'queued', position: 3 })
    expect(store.phase).toBe('queued')
    expect(store.badge).toBe('Queued #3')
    // A line in the console says so, not an empty pane.
    expect(sink.out).toContain('you are number 3 in line')
    ws.event({ type: 'queued', position: 1 })
    expect(sink.out).toContain('you are number 1 in line')
    ws.event({ type: 'started', session: 's1', path: 'Local/alice/hello.py', folders: {} })
    expect(store.phase).toBe('running')
    expect(store.badge).toBe('Running')
    sink.out = ''
    ws.bytes('hello\r\n')
    expect(store.badge).toBe('Running')
    ws.bytes('>>> ')
    expect(sink.out).toBe('hello\r\n>>> ')
    expect(store.badge).toBe('REPL') // the script ended in Python's prompt
    ws.event({ type: 'exited', code: 1, reason: 'error' })
    expect(store.phase).toBe('exited')
    expect(store.exitReason).toBe('error')
    expect(store.badge).toBe('Exited: error (1)')
    expect(sink.out).toContain('The program stopped with an error (exit code 1).')
  })

  it('labels an empty REPL and sends the repl command', () => {
    const { store } = setup()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    store.repl()
    expect(ws.sent.at(-1)).toEqual({ type: 'repl' })
    ws.event({ type: 'started', session: 's2', path: '', folders: {} })
    expect(store.badge).toBe('REPL')
  })

  it('sends keystrokes only to a live process, and never drops them without a word', () => {
    const { store, sink } = setup()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    store.input('x')
    expect(ws.sent).toEqual([])
    expect(sink.out).toContain('Nothing is running, so what you type here is not sent anywhere')
    // Said once, not on every key.
    const said = sink.out
    store.input('y')
    expect(sink.out).toBe(said)
    store.run('a.py')
    // Typed while the program starts: kept, and sent once it runs.
    store.input('ali')
    store.input('ce\r')
    ws.event({ type: 'started', session: 's', path: 'a.py', folders: {} })
    expect(ws.sent.at(-1)).toEqual({ type: 'stdin', data: 'alice\r' })
    store.input('print(1)\r')
    expect(ws.sent.at(-1)).toEqual({ type: 'stdin', data: 'print(1)\r' })
    store.stop()
    expect(ws.sent.at(-1)).toEqual({ type: 'stop' })
    ws.event({ type: 'exited', code: -1, reason: 'stopped' })
    expect(store.badge).toBe('Stopped by you')
    expect(sink.out).toContain('Stopped by you.')
    const before = ws.sent.length
    store.input('y')
    store.stop()
    expect(ws.sent.length).toBe(before)
  })

  it('says, after an error with no REPL, that typing does nothing and how to go on', () => {
    const { store, sink } = setup()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    store.run('Local/alice/oops.py')
    ws.event({ type: 'started', session: 's', path: 'Local/alice/oops.py', folders: { '/home/student': 'Local/alice' } })
    ws.bytes('Traceback (most recent call last):\r\n  File "/home/student/oops.py", line 2, in <module>\r\n    1/0\r\nZeroDivisionError: division by zero\r\n')
    ws.event({ type: 'exited', code: 1, reason: 'error' })
    expect(sink.out).toContain('File "Local/alice/oops.py", line 2')
    expect(sink.out).not.toContain('/home/student')
    expect(sink.out).toContain('No Python prompt after an error: fix the line it points to')
    expect(store.errorAt).toEqual({ path: 'Local/alice/oops.py', line: 2 })
  })

  it('names the configured limit that stopped a run', () => {
    const { store, sink } = setup()
    store.settings = { repl: false, limits: { memory_mb: 96, cpu_seconds: 12, session_cpu_seconds: 60, idle_seconds: 1200, repl_after_error: false } }
    store.handle({ type: 'exited', code: 137, reason: 'memory' })
    expect(sink.out).toContain('more than the 96 MB memory limit')
    store.handle({ type: 'exited', code: -9, reason: 'timeout' })
    expect(sink.out).toContain('CPU time limit (12 s of computing per command)')
    store.handle({ type: 'exited', code: 0, reason: 'idle' })
    expect(sink.out).toContain('nothing was typed for 20 minutes')
    store.handle({ type: 'exited', code: 130, reason: 'error' })
    expect(sink.out).toContain('Stopped by Ctrl-C.')
    expect(store.badge).toBe('Stopped: Ctrl-C')
  })

  it('stops reconnecting when the login ended, and says why', () => {
    vi.useFakeTimers()
    const { store, sink } = setup()
    store.connect()
    FakeSocket.last().open()
    FakeSocket.last().closeWith(4001, 'session ended: disabled')
    expect(store.sessionEnded).toBe('session ended: disabled')
    expect(sink.out).toContain('An administrator disabled your account')
    vi.advanceTimersByTime(60_000)
    expect(FakeSocket.all.length).toBe(1)
  })

  it('shows a server error plainly and returns to idle', () => {
    const { store, sink } = setup()
    store.connect()
    FakeSocket.last().open()
    store.run('a.py')
    FakeSocket.last().event({ type: 'error', message: 'execution is unavailable: no Docker engine' })
    expect(store.phase).toBe('idle')
    expect(store.error).toBe('execution is unavailable: no Docker engine')
    expect(sink.out).toContain('execution is unavailable')
  })

  it('flags output that the server dropped', () => {
    const { store, sink } = setup()
    store.connect()
    FakeSocket.last().open()
    FakeSocket.last().event({ type: 'output_limited' })
    expect(store.outputLimited).toBe(true)
    expect(sink.out).toContain('too much output')
  })

  it('ignores unknown or malformed text frames', () => {
    const { store } = setup()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    ws.onmessage?.({ data: 'not json' } as MessageEvent)
    ws.event({ type: 'surprise' })
    expect(store.phase).toBe('idle')
  })

  it('reconnects with backoff and clears the terminal before the replayed scrollback', () => {
    vi.useFakeTimers()
    vi.spyOn(Math, 'random').mockReturnValue(0.5)
    const { store, sink } = setup()
    store.connect()
    const first = FakeSocket.last()
    first.open()
    store.run('a.py')
    first.event({ type: 'started', session: 's', path: 'a.py', folders: {} })
    first.bytes('line 1\r\n')
    first.drop()
    expect(store.connected).toBe(false)
    expect(store.reconnecting).toBe(true)
    expect(store.phase).toBe('running') // the server keeps the REPL for a grace period
    vi.advanceTimersByTime(backoffDelay(0, () => 0.5) - 1)
    expect(FakeSocket.all.length).toBe(1)
    vi.advanceTimersByTime(1)
    expect(FakeSocket.all.length).toBe(2)
    // Fails again: the next delay is longer.
    FakeSocket.last().drop()
    vi.advanceTimersByTime(backoffDelay(0, () => 0.5))
    expect(FakeSocket.all.length).toBe(2)
    vi.advanceTimersByTime(backoffDelay(1, () => 0.5))
    expect(FakeSocket.all.length).toBe(3)
    const third = FakeSocket.last()
    third.open()
    expect(store.reconnecting).toBe(false)
    third.bytes('line 1\r\nline 2\r\n')
    expect(sink.out).toBe('line 1\r\nline 2\r\n')
    third.bytes('>>> ')
    expect(sink.out).toBe('line 1\r\nline 2\r\n>>> ')
  })

  it('does not reconnect after disconnect', () => {
    vi.useFakeTimers()
    const { store } = setup()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    store.disconnect()
    expect(ws.closedByClient).toBe(true)
    ws.drop()
    vi.advanceTimersByTime(60_000)
    expect(FakeSocket.all.length).toBe(1)
  })

  it('a Run while reconnecting connects at once instead of waiting for the backoff', () => {
    vi.useFakeTimers()
    const { store } = setup()
    store.connect()
    FakeSocket.last().drop()
    store.run('b.py')
    expect(FakeSocket.all.length).toBe(2)
    FakeSocket.last().open()
    expect(FakeSocket.last().sent).toEqual([{ type: 'run', path: 'b.py' }])
  })

  it('caps the backoff', () => {
    expect(backoffDelay(0, () => 0)).toBe(375)
    expect(backoffDelay(20, () => 1)).toBe(12_500)
  })
})

describe('badge', () => {
  it.each([
    { name: 'finished cleanly', reason: 'finished', code: 0, want: 'Exited: finished' },
    { name: 'finished with sys.exit(3)', reason: 'finished', code: 3, want: 'Exited: finished (3)' },
    { name: 'traceback', reason: 'error', code: 1, want: 'Exited: error (1)' },
    { name: 'stopped', reason: 'stopped', code: -15, want: 'Exited: stopped' },
    { name: 'cpu limit', reason: 'timeout', code: -9, want: 'Exited: time limit' },
    { name: 'memory', reason: 'memory', code: 137, want: 'Exited: memory limit' },
    { name: 'Ctrl-C', reason: 'error', code: 130, want: 'Stopped: Ctrl-C' },
    { name: 'unknown reason', reason: 'weird', code: 0, want: 'Exited: weird' },
  ])('$name', ({ reason, code, want }) => {
    const store = useConsoleStore()
    store.handle({ type: 'exited', code, reason })
    expect(store.badge).toBe(want)
  })
})
