// Tree paths as the server shows them: "Local/alice/hello.py", "Lecture Notes/week1.pdf".
import type { Entry } from '@/api/types'

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i < 0 ? '' : path.slice(0, i)
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

export function join(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name
}

/** True when path is base itself or lies under it. */
export function within(path: string, base: string): boolean {
  return path === base || path.startsWith(`${base}/`)
}

/** Rewrites a path that lies under `from` to lie under `to` instead. */
export function rebase(path: string, from: string, to: string): string {
  return path === from ? to : `${to}${path.slice(from.length)}`
}

/** A name the user typed for a new file or folder: one path segment, no tricks. */
export function validName(name: string): string | null {
  const n = name.trim()
  if (!n) return 'A name is required.'
  if (n === '.' || n === '..') return 'That name is reserved.'
  if (n.includes('/') || n.includes('\\')) return 'A name cannot contain / or \\.'
  if (n.length > 255) return 'That name is too long.'
  return null
}

export function sortEntries(entries: Entry[]): Entry[] {
  return [...entries].sort((a, b) => {
    if (a.type !== b.type) return a.type === 'dir' ? -1 : 1
    return a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' })
  })
}

/**
 * Where a program run from the IDE finds a tree path (workspace.Mounts):
 * the home folder is its working folder /home/student; Lecture Notes,
 * Assignments and Tests are under /course (staff see Submissions there
 * too); a student's own submission folders are /submissions/<item>. null
 * where no program of the user's can see it.
 */
export function pythonPath(tree: string, o: { home: string; user: string; staff: boolean }): string | null {
  if (o.home && within(tree, o.home)) return `/home/student${tree.slice(o.home.length)}`
  const [root, item, owner] = tree.split('/')
  if (root === 'Lecture Notes' || root === 'Assignments' || root === 'Tests') return `/course/${tree}`
  if (root === 'Submissions' && o.staff) return `/course/${tree}`
  if (root === 'Submissions' && item && owner === o.user) return `/submissions/${item}${tree.slice(`Submissions/${item}/${owner}`.length)}`
  return null
}
