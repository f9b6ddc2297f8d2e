// Tracebacks in the words of the tree: Python names a file by its path
// inside the sandbox (/home/student/oops.py, /course/Lecture Notes/x.py,
// /submissions/hw1/a.py), which the student never sees anywhere else. The
// server tells, per run, which tree folder each sandbox folder is
// (the started event's folders); the console shows File "Local/alice/oops.py"
// instead, and remembers where the last error pointed.

/** A place in a file of the tree. */
export interface Place {
  path: string
  line: number
}

// `File "<path>", line <n>` as CPython prints a frame or a SyntaxError. The
// quotes keep a path with spaces ("Lecture Notes") whole.
const fileLine = /File "([^"\r\n]+)", line (\d+)/g

/** The tree path of a path inside the sandbox, by the longest folder that holds it; null if none does. */
export function treePath(inside: string, folders: Record<string, string>): string | null {
  let best = ''
  for (const dir of Object.keys(folders)) {
    if ((inside === dir || inside.startsWith(`${dir}/`)) && dir.length > best.length) best = dir
  }
  if (!best) return null
  return `${folders[best]}${inside.slice(best.length)}`
}

/** The text with every traceback file renamed to its tree path. */
export function renameFiles(text: string, folders: Record<string, string>): string {
  if (!text.includes('File "')) return text
  return text.replace(fileLine, (all, inside: string, line: string) => {
    const p = treePath(inside, folders)
    return p === null ? all : `File "${p}", line ${line}`
  })
}

/** The frames of text that name a file of the tree, in order. */
export function places(text: string, isTreePath: (p: string) => boolean): Place[] {
  const out: Place[] = []
  for (const m of text.matchAll(fileLine)) {
    if (isTreePath(m[1]!)) out.push({ path: m[1]!, line: Number(m[2]) })
  }
  return out
}

/** The roots of the tree (a traceback link must lead into it). */
const roots = ['Local/', 'Lecture Notes/', 'Assignments/', 'Tests/', 'Submissions/']
export const inTree = (p: string) => roots.some((r) => p.startsWith(r))

// A line still being written that may become a file line: held back a
// moment so that a path split across two chunks is still renamed.
const maybeFileLine = (tail: string) => {
  const t = tail.trimStart()
  return tail !== t && ('File "'.startsWith(t) || t.startsWith('File "'))
}

/**
 * Renames traceback files in a stream of TTY bytes. Complete lines pass at
 * once; only a line that may be the start of a file line waits, at most
 * holdMs, for the rest. UTF-8 split between chunks is decoded whole.
 */
export class TracebackNamer {
  folders: Record<string, string> = {}
  /** The last place an error pointed to, in the output since reset. */
  last: Place | null = null
  private decoder = new TextDecoder()
  private held = ''
  private timer: ReturnType<typeof setTimeout> | null = null

  constructor(
    private readonly write: (text: string) => void,
    private readonly holdMs = 60,
  ) {}

  push(bytes: Uint8Array) {
    let text = this.held + this.decoder.decode(bytes, { stream: true })
    this.held = ''
    this.clearTimer()
    const nl = text.lastIndexOf('\n')
    const tail = text.slice(nl + 1)
    if (tail && maybeFileLine(tail)) {
      this.held = tail
      text = text.slice(0, nl + 1)
      this.timer = setTimeout(() => this.flush(), this.holdMs)
    }
    this.emit(text)
  }

  /** Writes what is held back. */
  flush() {
    this.clearTimer()
    const t = this.held
    this.held = ''
    this.emit(t)
  }

  /** A new run (or a replay): forget what was held and where errors were. */
  reset(folders: Record<string, string> = this.folders) {
    this.clearTimer()
    this.held = ''
    this.decoder = new TextDecoder()
    this.folders = folders
    this.last = null
  }

  private emit(text: string) {
    if (!text) return
    const out = renameFiles(text, this.folders)
    const found = places(out, inTree)
    if (found.length) this.last = found.at(-1)!
    this.write(out)
  }

  private clearTimer() {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  }
}
