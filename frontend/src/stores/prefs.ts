// User interface preferences kept in this browser: theme, the large font
// used when projecting to a class, and the console's screen-reader mode.
import { defineStore } from 'pinia'

export type Theme = 'light' | 'dark'

const key = 'pyide.prefs'

interface Saved {
  theme?: Theme
  largeFont?: boolean
  screenReader?: boolean
}

function loadSaved(): Saved {
  try {
    return JSON.parse(globalThis.localStorage?.getItem(key) ?? '{}') as Saved
  } catch {
    return {}
  }
}

function systemTheme(): Theme {
  return globalThis.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
}

export const usePrefsStore = defineStore('prefs', {
  state: () => {
    const saved = loadSaved()
    return {
      theme: saved.theme ?? systemTheme(),
      largeFont: saved.largeFont ?? false,
      screenReader: saved.screenReader ?? false,
    }
  },
  getters: {
    editorFontSize: (s) => (s.largeFont ? 22 : 14),
    terminalFontSize: (s) => (s.largeFont ? 22 : 14),
  },
  actions: {
    toggleTheme() {
      this.theme = this.theme === 'dark' ? 'light' : 'dark'
      this.persist()
    },
    toggleLargeFont() {
      this.largeFont = !this.largeFont
      this.persist()
    },
    toggleScreenReader() {
      this.screenReader = !this.screenReader
      this.persist()
    },
    persist() {
      try {
        globalThis.localStorage?.setItem(key, JSON.stringify({ theme: this.theme, largeFont: this.largeFont, screenReader: this.screenReader }))
      } catch {
        /* private mode: preferences last for this page only */
      }
    },
  },
})
