// Time as the course screens show it. The server's clock is the authority on
// deadlines and test windows: a browser clock can be minutes off (or set off
// on purpose), so countdowns run on the server's "now" plus the time elapsed
// on this browser since, never on the browser's date alone.

/**
 * Milliseconds to add to this browser's Date.now() to get the server's time,
 * from one response: the server read its clock somewhere between sending the
 * request and receiving the answer, so the midpoint is the best guess.
 */
export function clockOffset(serverNow: string, sentAt: number, receivedAt: number): number | null {
  const server = Date.parse(serverNow)
  if (Number.isNaN(server)) return null
  return server - Math.round((sentAt + receivedAt) / 2)
}

const units: [number, string][] = [
  [365 * 86_400_000, 'year'],
  [30 * 86_400_000, 'month'],
  [7 * 86_400_000, 'week'],
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
]

/** "in 2 days", "3 hours ago", "in less than a minute". */
export function relative(target: number, now: number): string {
  const d = target - now
  const abs = Math.abs(d)
  if (abs < 60_000) return d >= 0 ? 'in less than a minute' : 'less than a minute ago'
  for (const [ms, name] of units) {
    if (abs >= ms) {
      const n = Math.floor(abs / ms)
      const s = `${n} ${name}${n === 1 ? '' : 's'}`
      return d >= 0 ? `in ${s}` : `${s} ago`
    }
  }
  return ''
}

/** A countdown: "1:02:03", "12:05", "2 d 03:04:05"; never negative. */
export function countdown(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000))
  const days = Math.floor(total / 86_400)
  const h = Math.floor((total % 86_400) / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  const two = (n: number) => String(n).padStart(2, '0')
  if (days > 0) return `${days} d ${two(h)}:${two(m)}:${two(s)}`
  if (h > 0) return `${h}:${two(m)}:${two(s)}`
  return `${two(m)}:${two(s)}`
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
})

/** A server timestamp in the browser's own time zone. */
export function formatLocal(iso: string | null | undefined): string {
  if (!iso) return '—'
  const t = Date.parse(iso)
  return Number.isNaN(t) ? iso : dateTime.format(t)
}

/** The value of an <input type="datetime-local"> for an instant: local wall time. */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const two = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`
}

/** An <input type="datetime-local"> value (local wall time) as an RFC 3339 instant; '' → null. */
export function fromLocalInput(value: string): string | null {
  if (!value) return null
  const d = new Date(value)
  return Number.isNaN(d.getTime()) ? null : d.toISOString()
}

/** Bytes for people: "512 B", "3.4 MB", "12 GB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—'
  const names = ['B', 'KB', 'MB', 'GB', 'TB']
  let i = 0
  let v = n
  while (v >= 1024 && i < names.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 || v >= 10 ? Math.round(v) : v.toFixed(1)} ${names[i]}`
}

/** Seconds for people: "45 s", "12 min", "3 h 05 min". */
export function formatSeconds(sec: number): string {
  const s = Math.max(0, Math.round(sec))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min`
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`
}
