import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { WatchSocket } from './watch'
import { CloseWatchEnded, parseEvent, watchURL, type ServerEvent } from './protocol'
import { setSocketFactory, useConsoleStore } from '@/stores/console'
import { FakeSocket } from '@/testing/fakes'

function recorder() {
  const r = { out: '', resets: 0, events: [] as ServerEvent[], ended: '' }
  return {
    r,
    h: {
      output: (b: Uint8Array) => (r.out += new TextDecoder().decode(b)),
      reset: () => {
        r.resets++
        r.out = ''
      },
      event: (e: ServerEvent) => r.events.push(e),
      ended: (why: string) => (r.ended = why),
    },
  }
}

beforeEach(() => {
  setActivePinia(createPinia())
  FakeSocket.all = []
  vi.stubGlobal('location', { protocol: 'https:', host: 'ide.example.edu' })
})
afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('live protocol', () => {
  it('parses the live events', () => {
    expect(parseEvent('{"type":"watchers","names":["tina"],"typing":"tina"}')).toEqual({ type: 'watchers', names: ['tina'], typing: 'tina' })
    expect(parseEvent('{"type":"watchers"}')).toEqual({ type: 'watchers', names: [], typing: '' })
    expect(parseEvent('{"type":"keyboard_request","by":"tina"}')).toEqual({ type: 'keyboard_request', by: 'tina' })
    expect(parseEvent('{"type":"keyboard","granted":true}')).toEqual({ type: 'keyboard', granted: true })
    expect(parseEvent('{"type":"keyboard","granted":"yes"}')).toEqual({ type: 'keyboard', granted: false })
    expect(parseEvent('{"type":"behind"}')).toEqual({ type: 'behind' })
  })

  it('builds the watch URL', () => {
    expect(watchURL({ protocol: 'https:', host: 'h' }, { help: 7 })).toBe('wss://h/api/ws/watch?help=7')
    expect(watchURL({ protocol: 'http:', host: 'h' }, { broadcast: 'a b' })).toBe('ws://h/api/ws/watch?broadcast=a%20b')
  })
})

describe('watch socket', () => {
  it('clears before the scrollback, types only what it is given, and ends on the watch-ended close', () => {
    const { r, h } = recorder()
    const w = new WatchSocket({ help: 3 }, h, (url) => new FakeSocket(url))
    w.open()
    const ws = FakeSocket.last()
    expect(ws.url).toBe('wss://ide.example.edu/api/ws/watch?help=3')
    ws.open()
    ws.bytes('old output\r\n>>> ')
    ws.event({ type: 'started', session: 's1', path: 'Local/alice/a.py' })
    expect(r.resets).toBe(1)
    expect(r.out).toBe('old output\r\n>>> ')
    ws.event({ type: 'started', session: 's2', path: 'Local/alice/b.py' })
    expect(r.out).toBe('')
    ws.bytes('old output\r\n>>> ')
    ws.event({ type: 'behind' })
    expect(r.out).toBe('')
    w.send({ type: 'ask_keyboard' })
    expect(ws.sent).toEqual([{ type: 'ask_keyboard' }])
    ws.readyState = 3
    ws.onclose?.({ code: CloseWatchEnded, reason: 'the help request has ended' } as CloseEvent)
    expect(r.ended).toBe('the help request has ended')
    expect(FakeSocket.all.length).toBe(1)
  })

  it('reconnects after a drop and replays', () => {
    vi.useFakeTimers()
    const { r, h } = recorder()
    const w = new WatchSocket({ broadcast: 'x' }, h, (url) => new FakeSocket(url))
    w.open()
    FakeSocket.last().open()
    FakeSocket.last().drop()
    vi.advanceTimersByTime(20_000)
    expect(FakeSocket.all.length).toBe(2)
    FakeSocket.last().open()
    FakeSocket.last().bytes('again')
    expect(r.out).toBe('again')
    expect(r.ended).toBe('')
    w.close()
  })
})

describe('console store, watched', () => {
  it('shows who watches, asks before a helper types, and takes it back', () => {
    setSocketFactory((url) => new FakeSocket(url))
    const store = useConsoleStore()
    store.connect()
    const ws = FakeSocket.last()
    ws.open()
    ws.event({ type: 'watchers', names: ['tina'], typing: '' })
    expect(store.watchers).toEqual(['tina'])
    ws.event({ type: 'keyboard_request', by: 'tina' })
    expect(store.keyboardRequest).toBe('tina')
    store.keyboard(true)
    expect(store.keyboardRequest).toBe('')
    ws.event({ type: 'watchers', names: ['tina'], typing: 'tina' })
    expect(store.typing).toBe('tina')
    store.keyboard(false)
    expect(ws.sent).toEqual([
      { type: 'keyboard', grant: true },
      { type: 'keyboard', grant: false },
    ])
    ws.event({ type: 'watchers', names: [], typing: '' })
    expect(store.watchers).toEqual([])
  })
})
