// User interface preferences kept in this browser: theme, the large font,
// projector mode (the console alone, large and in high contrast) and the
// console's screen-reader mode.
import { defineStore } from 'pinia'

export type Theme = 'light' | 'dark'

const key = 'pyide.prefs'

interface Saved {
  theme?: Theme
  largeFont?: boolean
  screenReader?: boolean
  projector?: boolean
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
      /** Teaching from a projector: the console fills the screen, large and in high contrast. */
      projector: saved.projector ?? false,
    }
  },
  getters: {
    editorFontSize: (s) => (s.largeFont ? 22 : 14),
    terminalFontSize: (s) => (s.projector ? 26 : s.largeFont ? 22 : 14),
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
    toggleProjector() {
      this.projector = !this.projector
      this.persist()
    },
    persist() {
      try {
        globalThis.localStorage?.setItem(
          key,
          JSON.stringify({ theme: this.theme, largeFont: this.largeFont, screenReader: this.screenReader, projector: this.projector }),
        )
      } catch {
        /* private mode: preferences last for this page only */
      }
    },
  },
})
