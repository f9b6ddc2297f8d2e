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
    ws.event({ type: 'started', session: 's1', path: 'Local/alice/hello.py' })
    expect(store.phase).toBe('running')
    expect(store.badge).toBe('Running')
    ws.bytes('hello\r\n')
    expect(store.badge).toBe('Running')
    ws.bytes('>>> ')
    expect(sink.out).toBe('hello\r\n>>> ')
    expect(store.badge).toBe('REPL') // the script ended in Python's prompt
    ws.event({ type: 'exited', code: 1, reason: 'error' })
    expect(store.phase).toBe('exited')
    expect(store.exitReason).toBe('error')
    expect(store.badge).toBe('Exited: error (1)')
    expect(sink.out).toContain('process ended: error, exit code 1')
  })

  it('labels an empty REPL and sends the repl command', () => {
    const { store } = setup()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    store.repl()
    expect(ws.sent.at(-1)).toEqual({ type: 'repl' })
    ws.event({ type: 'started', session: 's2', path: '' })
    expect(store.badge).toBe('REPL')
  })

  it('sends keystrokes only while a process runs', () => {
    const { store } = setup()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    store.input('x')
    expect(ws.sent).toEqual([])
    store.run('a.py')
    ws.event({ type: 'started', session: 's', path: 'a.py' })
    store.input('print(1)\r')
    expect(ws.sent.at(-1)).toEqual({ type: 'stdin', data: 'print(1)\r' })
    store.stop()
    expect(ws.sent.at(-1)).toEqual({ type: 'stop' })
    ws.event({ type: 'exited', code: -1, reason: 'stopped' })
    const before = ws.sent.length
    store.input('y')
    store.stop()
    expect(ws.sent.length).toBe(before)
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
    first.event({ type: 'started', session: 's', path: 'a.py' })
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
    { name: 'memory', reason: 'memory', code: 137, want: 'Exited: out of memory' },
    { name: 'unknown reason', reason: 'weird', code: 0, want: 'Exited: weird' },
  ])('$name', ({ reason, code, want }) => {
    const store = useConsoleStore()
    store.handle({ type: 'exited', code, reason })
    expect(store.badge).toBe(want)
  })
})
