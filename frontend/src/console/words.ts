// What the console says when a run ends, in words a first-year student
// understands: which limit stopped it, with its number, and what to do
// next. The server says which reason (docs/protocol.md); these are the
// words for it.
import type { Limits } from './protocol'

export interface ExitContext {
  reason: string
  code: number
  /** 'repl' for an empty REPL. */
  kind: 'run' | 'repl' | null
  /** The user pressed Stop (or Shift+F5) for this run. */
  stoppedByUser: boolean
  /** The limits from GET /api/console; null until they arrive. */
  limits: Limits | null
}

/** The runner's exit code for KeyboardInterrupt (sandbox-image/runner.py). */
export const ctrlCCode = 130

const minutes = (s: number) => {
  const m = Math.round(s / 60)
  return `${m} minute${m === 1 ? '' : 's'}`
}

/** One sentence: how the run ended. */
export function exitSentence(x: ExitContext): string {
  const l = x.limits
  switch (x.reason) {
    case 'finished':
      if (x.code !== 0) return `The program ended with exit code ${x.code}.`
      return x.kind === 'repl' ? 'The Python prompt was closed.' : 'The program finished.'
    case 'error':
      if (x.code === ctrlCCode) return 'Stopped by Ctrl-C.'
      return `The program stopped with an error (exit code ${x.code}).`
    case 'timeout':
      return l
        ? `Stopped: it went over the CPU time limit (${l.cpu_seconds} s of computing per command). Look for a loop that never ends.`
        : 'Stopped: it went over the CPU time limit. Look for a loop that never ends.'
    case 'memory':
      return l
        ? `Stopped: it used more than the ${l.memory_mb} MB memory limit.`
        : 'Stopped: it used more memory than the limit allows.'
    case 'stopped':
      return x.stoppedByUser ? 'Stopped by you.' : 'Stopped.'
    case 'idle':
      return l ? `Stopped: nothing was typed for ${minutes(l.idle_seconds)}.` : 'Stopped: nothing was typed for a long time.'
    case 'reaped':
      return 'Ended by the server.'
    case 'quota':
      return 'Stopped: your files went over your storage quota.'
    default:
      return `Ended (${x.reason || 'no reason given'}, exit code ${x.code}).`
  }
}

/**
 * What to do next, when the way the run ended leaves the student without
 * a prompt to type into; '' when there is nothing to add.
 */
export function nextStep(x: ExitContext): string {
  if (x.kind !== 'run' || x.reason !== 'error' || x.code === ctrlCCode) return ''
  // One short line: the traceback above it must stay in view.
  return 'No Python prompt after an error: fix the line it points to, then press Run (F5) again.'
}

/** Why the server closed the console for good (close code 4001), by its reason text. */
export function sessionEndedSentence(closeReason: string): string {
  if (closeReason.includes('disabled')) return 'An administrator disabled your account: your program was ended and you are signed out.'
  if (closeReason.includes('password')) return 'Your password was changed: your program was ended. Sign in again.'
  if (closeReason.includes('role')) return 'An administrator changed your role: your program was ended. Sign in again to work with your new role.'
  if (closeReason.includes('deleted')) return 'An administrator deleted your account: your program was ended and you are signed out.'
  if (closeReason.includes('logout')) return 'You signed out (perhaps in another window): your program was ended.'
  if (closeReason.includes('expired')) return 'Your session expired: your program was ended. Sign in again.'
  return 'Your session ended: your program was ended. Sign in again.'
}
