// The files store owns the file tree the user can see and the open editor tabs:
// what each tab holds, whether it is saved, and the save protocol (If-Match with
// the version the server gave; a 409 becomes a conflict the user resolves). It
// never decides permissions: `writable` comes from the server's listing.
import { defineStore } from 'pinia'
import * as files from '@/api/files'
import { ApiError, errorMessage } from '@/api/http'
import type { Entry, Quota } from '@/api/types'
import { decodeText, kindByName, previewType, type Kind } from '@/lib/filekind'
import { join, parentOf, rebase, sortEntries, within } from '@/lib/paths'

export const autosaveDelayMs = 1500

export interface Conflict {
  /** The server's current text and its version. */
  theirs: string
  version: string
}

export interface Tab {
  path: string
  kind: Kind
  writable: boolean
  loading: boolean
  /** Why the file could not be opened. */
  error: string
  text: string
  /** The text as last saved or loaded: dirty means text !== saved. */
  saved: string
  version: string
  saving: boolean
  saveError: string
  conflict: Conflict | null
  /** Object URL for PDF and image previews. */
  url: string
  size: number
  /**
   * The time to change this file is over (a test's end): the editor takes
   * no more keys while its last text is saved, then the tab is read-only.
   */
  locked: boolean
}

/**
 * Where an editor puts its cursor next: a new file's first line, or the
 * line a traceback points to (highlighted). A new object each time, so the
 * same line can be asked for twice.
 */
export interface CursorRequest {
  path: string
  line: number
  /** Mark the line as the one an error points to (until the text changes). */
  highlight: boolean
  /** Take the keyboard: the user asked for it (a click, a new file). */
  focus: boolean
}

// Timers and save chains are plumbing, not state: keep them out of Pinia.
const autosaveTimers = new Map<string, ReturnType<typeof setTimeout>>()
const saveChains = new Map<string, Promise<boolean>>()

/** Lets go of a preview's bytes (a PDF's own address holds none). */
function revokeBlob(url: string) {
  if (url.startsWith('blob:')) URL.revokeObjectURL(url)
}

function clearAutosave(path: string) {
  const t = autosaveTimers.get(path)
  if (t) clearTimeout(t)
  autosaveTimers.delete(path)
}

export const useFilesStore = defineStore('files', {
  state: () => ({
    /** Listings by directory path; '' holds the roots. */
    dirs: {} as Record<string, Entry[]>,
    expanded: {} as Record<string, boolean>,
    loadingDirs: {} as Record<string, boolean>,
    dirErrors: {} as Record<string, string>,
    /** The latest storage use the server reported (students only). */
    quota: null as Quota | null,
    selected: '',
    /** Whose files these are: a different user signing in on this browser starts clean. */
    home: '',
    tabs: [] as Tab[],
    active: '',
    cursor: null as CursorRequest | null,
  }),

  getters: {
    activeTab: (s): Tab | undefined => s.tabs.find((t) => t.path === s.active),
    isDirty: () => (t: Tab) => t.text !== t.saved,
    anyUnsaved: (s) => s.tabs.some((t) => t.text !== t.saved || t.saving),
    entry:
      (s) =>
      (path: string): Entry | undefined =>
        s.dirs[parentOf(path)]?.find((e) => e.path === path),
  },

  actions: {
    async loadDir(path: string) {
      this.loadingDirs[path] = true
      try {
        const listing = await files.list(path)
        // The roots come in the server's teaching order (Local first); folders sort by name.
        this.dirs[path] = path === '' ? (listing.entries ?? []) : sortEntries(listing.entries ?? [])
        if (listing.quota) this.quota = listing.quota
        delete this.dirErrors[path]
      } catch (e) {
        this.dirErrors[path] = errorMessage(e)
        throw e
      } finally {
        delete this.loadingDirs[path]
      }
    },

    /** Loads the roots and opens the user's own folder. */
    async init(home: string) {
      if (this.home !== home) this.reset()
      this.home = home
      await this.loadDir('')
      let dir = ''
      for (const part of home.split('/')) {
        dir = join(dir, part)
        if (!this.dirs[parentOf(dir)]?.some((e) => e.path === dir && e.type === 'dir')) break
        await this.expand(dir)
      }
      if (this.dirs[home]) this.selected = home
    },

    async expand(path: string) {
      this.expanded[path] = true
      if (!this.dirs[path]) await this.loadDir(path).catch(() => undefined)
    },

    /** Expands every folder down to path (a folder is opened and reloaded too) and selects it. */
    async reveal(path: string) {
      let dir = ''
      const parts = path.split('/')
      for (const [i, part] of parts.entries()) {
        dir = join(dir, part)
        const isLast = i === parts.length - 1
        // A folder made since the listing was loaded (starter files just
        // copied, a test folder just created) needs a fresh listing.
        if (!this.entry(dir)) await this.loadDir(parentOf(dir)).catch(() => undefined)
        const e = this.entry(dir)
        if (!e) break
        if (e.type !== 'dir') continue
        this.expanded[dir] = true
        if (isLast || !this.dirs[dir]) await this.loadDir(dir).catch(() => undefined)
      }
      this.selected = path
    },

    async toggle(path: string) {
      if (this.expanded[path]) this.expanded[path] = false
      else await this.expand(path)
    },

    /** Reloads every loaded directory under (and including) path. */
    async refresh(path = '') {
      const dirs = Object.keys(this.dirs).filter((d) => path === '' || within(d, path))
      await Promise.all(dirs.map((d) => this.loadDir(d).catch(() => undefined)))
    },

    /** The folder a new file, folder or upload goes into: the selection, or its parent. */
    targetDir(fallback: string): string {
      const sel = this.selected
      if (!sel) return fallback
      const e = this.entry(sel)
      if (!e) return this.dirs[sel] ? sel : fallback
      return e.type === 'dir' ? e.path : parentOf(e.path)
    },

    /**
     * Opens a file in a tab. readOnly keeps a writable file from being edited
     * by accident (a professor reading a student's submission).
     */
    async open(path: string, opts: { readOnly?: boolean } = {}) {
      this.selected = path
      if (this.tabs.some((t) => t.path === path)) {
        this.active = path
        return
      }
      const writable = !opts.readOnly && (this.entry(path)?.writable ?? false)
      this.tabs.push({
        path,
        kind: kindByName(path) ?? 'text',
        writable,
        loading: true,
        error: '',
        text: '',
        saved: '',
        version: '',
        saving: false,
        saveError: '',
        conflict: null,
        url: '',
        size: 0,
        locked: false,
      })
      this.active = path
      await this.load(path)
    },

    /** (Re)reads a tab's content from the server, dropping local edits. */
    async load(path: string) {
      const tab = this.tabs.find((t) => t.path === path)
      if (!tab) return
      clearAutosave(path)
      tab.loading = true
      tab.error = ''
      try {
        const byName = kindByName(path)
        // A PDF is shown from its own address, which names it in the
        // viewer's title; this read fills the browser's cache for it.
        const c = await files.read(path, byName === 'pdf' ? files.viewURL(path) : undefined)
        tab.version = c.version
        tab.size = c.bytes.byteLength
        if (byName === 'pdf') {
          tab.kind = byName
          tab.url = files.viewURL(path)
        } else if (byName === 'image') {
          if (tab.url) revokeBlob(tab.url)
          tab.kind = byName
          tab.url = URL.createObjectURL(new Blob([c.bytes], { type: previewType(path) }))
        } else {
          const text = decodeText(c.bytes)
          if (text === null) tab.kind = 'binary'
          else {
            tab.kind = byName ?? 'text'
            tab.text = text
            tab.saved = text
          }
        }
        tab.conflict = null
        tab.saveError = ''
      } catch (e) {
        tab.error = errorMessage(e)
      } finally {
        tab.loading = false
      }
    },

    edit(path: string, text: string) {
      const tab = this.tabs.find((t) => t.path === path)
      if (!tab || !tab.writable || tab.locked) return
      tab.text = text
      clearAutosave(path)
      autosaveTimers.set(
        path,
        setTimeout(() => {
          autosaveTimers.delete(path)
          void this.save(path)
        }, autosaveDelayMs),
      )
    },

    /**
     * Saves a tab if it has unsaved text. Saves of one file run one after the
     * other so each If-Match carries the version the previous save returned.
     * Resolves true when the file on the server now holds the tab's text.
     */
    save(path: string): Promise<boolean> {
      clearAutosave(path)
      const prev = saveChains.get(path) ?? Promise.resolve(true)
      const next = prev.then(() => this.saveOnce(path))
      saveChains.set(path, next)
      void next.finally(() => {
        if (saveChains.get(path) === next) saveChains.delete(path)
      })
      return next
    },

    async saveOnce(path: string): Promise<boolean> {
      const tab = this.tabs.find((t) => t.path === path)
      if (!tab) return false
      if (tab.text === tab.saved) return true
      if (!tab.writable || tab.conflict || tab.loading) return false
      const text = tab.text
      tab.saving = true
      try {
        const res = await files.write(path, text, tab.version || undefined)
        tab.saved = text
        tab.version = res.version
        tab.size = res.size
        tab.saveError = ''
        return tab.text === tab.saved
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) {
          await this.loadConflict(tab)
        } else {
          tab.saveError = errorMessage(e)
        }
        return false
      } finally {
        tab.saving = false
      }
    },

    async loadConflict(tab: Tab) {
      try {
        const c = await files.read(tab.path)
        tab.conflict = { theirs: decodeText(c.bytes) ?? '', version: c.version }
      } catch (e) {
        // The file may have been deleted meanwhile: saving without If-Match recreates it.
        tab.conflict = { theirs: '', version: '' }
        tab.saveError = errorMessage(e)
      }
    },

    /** Keep mine: overwrite the server's newer version. Take theirs: drop local edits. */
    async resolveConflict(path: string, choice: 'mine' | 'theirs') {
      const tab = this.tabs.find((t) => t.path === path)
      if (!tab?.conflict) return
      const { theirs, version } = tab.conflict
      tab.conflict = null
      tab.version = version
      tab.saveError = ''
      // The server now holds theirs: measure "dirty" against that.
      tab.saved = theirs
      if (choice === 'theirs') {
        tab.text = theirs
        return
      }
      await this.save(path)
    },

    /**
     * Ends editing under dir, as a test's end does to its folder: the tabs
     * there stop taking keys first, so nothing can be typed after the last
     * save starts; then each is saved, then made read-only. Resolves to the
     * paths whose text could not be saved (they keep it on screen).
     */
    async lock(dir: string): Promise<string[]> {
      const tabs = this.tabs.filter((t) => within(t.path, dir) && t.writable)
      for (const t of tabs) t.locked = true
      const saved = await Promise.all(tabs.map((t) => this.save(t.path)))
      for (const t of tabs) t.writable = false
      return tabs.filter((_, i) => !saved[i]).map((t) => t.path)
    },

    async saveAll(): Promise<boolean> {
      const results = await Promise.all(this.tabs.map((t) => this.save(t.path)))
      return results.every(Boolean)
    },

    close(path: string) {
      const i = this.tabs.findIndex((t) => t.path === path)
      if (i < 0) return
      clearAutosave(path)
      const [tab] = this.tabs.splice(i, 1)
      if (tab?.url) revokeBlob(tab.url)
      if (this.active === path) this.active = this.tabs[Math.min(i, this.tabs.length - 1)]?.path ?? ''
    },

    async create(dir: string, name: string, type: 'file' | 'dir') {
      const path = join(dir, name)
      await files.create(path, type)
      await this.loadDir(dir)
      if (dir) this.expanded[dir] = true
      if (type === 'file') {
        await this.open(path)
        // A new file is for typing into: the cursor goes there at once.
        this.cursor = { path, line: 1, highlight: false, focus: true }
      } else this.selected = path
      return path
    },

    /** Opens path (when the user may read it) and puts the cursor on line. */
    async goTo(path: string, line: number, opts: { highlight?: boolean; focus?: boolean } = {}) {
      await this.open(path)
      this.cursor = { path, line, highlight: opts.highlight ?? false, focus: opts.focus ?? true }
    },

    async move(from: string, to: string) {
      // Unsaved text must land in the old file before it moves.
      await Promise.all(this.tabs.filter((t) => within(t.path, from)).map((t) => this.save(t.path)))
      await files.move(from, to)
      for (const t of this.tabs) {
        if (!within(t.path, from)) continue
        clearAutosave(t.path)
        const np = rebase(t.path, from, to)
        if (this.active === t.path) this.active = np
        t.path = np
      }
      if (within(this.selected, from)) this.selected = rebase(this.selected, from, to)
      for (const d of Object.keys(this.dirs)) if (within(d, from)) delete this.dirs[d]
      const parents = new Set([parentOf(from), parentOf(to)])
      await Promise.all([...parents].map((d) => this.loadDir(d).catch(() => undefined)))
    },

    async remove(path: string) {
      await files.remove(path)
      for (const t of [...this.tabs]) if (within(t.path, path)) this.close(t.path)
      for (const d of Object.keys(this.dirs)) if (within(d, path)) delete this.dirs[d]
      if (within(this.selected, path)) this.selected = parentOf(path)
      await this.loadDir(parentOf(path)).catch(() => undefined)
    },

    async upload(dir: string, list: File[]) {
      await files.upload(dir, list)
      await this.loadDir(dir)
      this.expanded[dir] = true
      // An upload may replace an open file: show the new bytes.
      for (const f of list) {
        const p = join(dir, f.name)
        const tab = this.tabs.find((t) => t.path === p)
        if (tab && tab.text === tab.saved) await this.load(p)
      }
    },

    async restore(path: string, revision: string | number) {
      await files.restore(path, revision)
      await this.load(path)
      await this.loadDir(parentOf(path)).catch(() => undefined)
    },

    reset() {
      for (const p of autosaveTimers.keys()) clearAutosave(p)
      for (const t of this.tabs) if (t.url) revokeBlob(t.url)
      this.$reset()
    },
  },
})
