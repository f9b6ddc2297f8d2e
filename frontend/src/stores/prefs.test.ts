import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { usePrefsStore } from './prefs'

// A localStorage of our own: the tests run in node.
let saved: Record<string, string>
beforeEach(() => {
  saved = {}
  vi.stubGlobal('localStorage', {
    getItem: (k: string) => saved[k] ?? null,
    setItem: (k: string, v: string) => (saved[k] = v),
  })
  setActivePinia(createPinia())
})
afterEach(() => vi.unstubAllGlobals())

describe('prefs store', () => {
  it('keeps screen-reader mode off until asked, then remembers it', () => {
    expect(usePrefsStore().screenReader).toBe(false)
    usePrefsStore().toggleScreenReader()
    // A new page: a fresh store reads what the last one saved.
    setActivePinia(createPinia())
    const again = usePrefsStore()
    expect(again.screenReader).toBe(true)
    expect(again.largeFont).toBe(false)
  })

  it('keeps the other preferences when one changes', () => {
    const p = usePrefsStore()
    p.toggleLargeFont()
    p.toggleScreenReader()
    p.toggleTheme()
    setActivePinia(createPinia())
    const again = usePrefsStore()
    expect([again.largeFont, again.screenReader, again.theme]).toEqual([true, true, p.theme])
  })
})
