// A line-by-line comparison of two texts, for showing what a restore of an
// earlier version would change before it is done.

export interface DiffLine {
  /** same: in both; now: only in the current text (a restore removes it); then: only in the earlier one (a restore brings it back). */
  op: 'same' | 'now' | 'then'
  text: string
}

/**
 * The lines of now and then in order, each marked as in both or in one of
 * them. Lines the two share at the start and the end are matched first;
 * the middle is compared by longest common subsequence when it is small
 * enough (maxCells lines × lines), and otherwise shown as all removed and
 * all brought back, which is still true, only less precise.
 */
export function lineDiff(now: string, then: string, maxCells = 4_000_000): DiffLine[] {
  const a = now.split('\n')
  const b = then.split('\n')
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start++
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--
    endB--
  }
  const same = (xs: string[]) => xs.map((text): DiffLine => ({ op: 'same', text }))
  const midA = a.slice(start, endA)
  const midB = b.slice(start, endB)
  return [...same(a.slice(0, start)), ...middle(midA, midB, maxCells), ...same(a.slice(endA))]
}

function middle(a: string[], b: string[], maxCells: number): DiffLine[] {
  if ((a.length + 1) * (b.length + 1) > maxCells) {
    return [...a.map((text): DiffLine => ({ op: 'now', text })), ...b.map((text): DiffLine => ({ op: 'then', text }))]
  }
  // lcs[i][j]: the longest common subsequence of a[i:] and b[j:].
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1))
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
    }
  }
  const out: DiffLine[] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push({ op: 'same', text: a[i]! })
      i++
      j++
    } else if (j < b.length && (i === a.length || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      out.push({ op: 'then', text: b[j]! })
      j++
    } else {
      out.push({ op: 'now', text: a[i]! })
      i++
    }
  }
  return out
}
