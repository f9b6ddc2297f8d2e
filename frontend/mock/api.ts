// A fake, in-memory PythonIDE API for `vite --mode mock` only: lets a front-end
// developer see and click through the IDE without the Go server. It is never
// part of a production build (vite.config.ts only loads it in mock mode), and it
// checks nothing: the real permission rules live in the server.
//
// Users: alice / bob (students), prof (professor), admin; any password except "wrong".
// "throttle" as a username answers 429 with Retry-After.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Plugin } from 'vite'

interface Node {
  type: 'file' | 'dir'
  data: Buffer
  modified: string
  version: number
  revisions: { id: number; data: Buffer; created: string }[]
}

const fs = new Map<string, Node>()
const now = () => new Date().toISOString()
function put(path: string, data?: string | Buffer) {
  const parts = path.split('/')
  for (let i = 1; i < parts.length; i++) {
    const d = parts.slice(0, i).join('/')
    if (!fs.has(d)) fs.set(d, { type: 'dir', data: Buffer.alloc(0), modified: now(), version: 1, revisions: [] })
  }
  if (data === undefined) fs.set(path, { type: 'dir', data: Buffer.alloc(0), modified: now(), version: 1, revisions: [] })
  else fs.set(path, { type: 'file', data: Buffer.from(data), modified: now(), version: 1, revisions: [] })
}
put('Local/alice/hello.py', 'name = "world"\n\ndef greet(who):\n    return f"Hello, {who}!"\n\nif __name__ == "__main__":\n    print(greet(name))\n')
put('Local/alice/grades.csv', 'student,hw1,hw2\nalice,90,85\nbob,70,"88"\n"Smith, J",100,95\n')
put('Local/alice/project')
put('Local/bob/secret.py', 'print("bob")\n')
put('Lecture Notes/week1.py', '# Week 1: variables\nx = 3\nprint(x * 2)\n')
put('Lecture Notes/syllabus.txt', 'CS 101: Introduction to Programming\n')
put('Assignments/hw1/starter.py', 'def solve(n):\n    pass\n')
put('Tests')
put('Submissions/hw1/alice/main.py', 'def count(n):\n    for i in range(1, n + 1):\n        print(i)\n\ncount(5)\n')

// Starts signed in as alice so a page load shows the IDE; log out to see the login screen.
let user: { username: string; display_name: string; role: string } | null = {
  username: 'alice',
  display_name: 'Alice Student',
  role: 'student',
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

const visible = (path: string) => user?.role !== 'student' || !path.startsWith('Local/') || path.split('/')[1] === user.username
const writable = (path: string) =>
  user?.role !== 'student' || (path.startsWith(`Local/${user.username}`) && path !== 'Local')

function entries(dir: string) {
  return [...fs.entries()]
    .filter(([p]) => (dir ? p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes('/') : !p.includes('/')))
    .filter(([p]) => visible(p))
    .map(([p, n]) => ({
      name: p.slice(p.lastIndexOf('/') + 1),
      path: p,
      type: n.type,
      size: n.data.length,
      modified: n.modified,
      writable: writable(p),
    }))
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://mock')
  const path = url.searchParams.get('path') ?? ''
  const route = `${req.method} ${url.pathname}`
  if (route === 'POST /api/auth/login') {
    const { username, password } = JSON.parse((await body(req)).toString()) as Record<string, string>
    if (username === 'throttle') return send(res, 429, { error: 'too many attempts' }, { 'Retry-After': '42' })
    if (password === 'wrong' || !username) return send(res, 401, { error: 'wrong username or password' })
    const role = username === 'prof' ? 'professor' : username === 'admin' ? 'admin' : 'student'
    const names: Record<string, string> = { prof: 'Prof. Ada Lovelace', admin: 'Grace Admin', alice: 'Alice Student', bob: 'Bob Student' }
    user = { username, display_name: names[username] ?? username, role }
    put(`Local/${username}`)
    return send(res, 200, { user })
  }
  if (route === 'POST /api/auth/logout') {
    user = null
    return send(res, 200, {})
  }
  if (!user) return send(res, 401, { error: 'not logged in' })
  switch (route) {
    case 'GET /api/auth/me':
      return send(res, 200, { user })
    case 'POST /api/auth/password':
      return send(res, 200, {})
    case 'GET /api/files':
      return send(res, 200, {
        path,
        entries: entries(path),
        ...(user.role === 'student' ? { quota: { used: 3 * 1048576, limit: 50 * 1048576 } } : {}),
      })
    case 'GET /api/files/content': {
      const n = fs.get(path)
      if (!n || n.type !== 'file' || !visible(path)) return send(res, 404, { error: 'no such file' })
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', ETag: `"${n.version}"` })
      return res.end(n.data)
    }
    case 'PUT /api/files/content': {
      if (!writable(path)) return send(res, 403, { error: 'read-only' })
      const n = fs.get(path)
      if (n && req.headers['if-match'] && req.headers['if-match'] !== `"${n.version}"`)
        return send(res, 409, { error: 'the file changed since you opened it' })
      const data = await body(req)
      if (n) {
        n.revisions.unshift({ id: n.version, data: n.data, created: n.modified })
        n.data = data
        n.version++
        n.modified = now()
      } else put(path, data)
      const v = fs.get(path)!.version
      return send(res, 200, { path, version: `"${v}"`, size: data.length }, { ETag: `"${v}"` })
    }
    case 'POST /api/files': {
      const b = JSON.parse((await body(req)).toString()) as { path: string; type: string }
      if (fs.has(b.path)) return send(res, 409, { error: 'already exists' })
      put(b.path, b.type === 'dir' ? undefined : '')
      return send(res, 201, { path: b.path })
    }
    case 'POST /api/files/move': {
      const b = JSON.parse((await body(req)).toString()) as { from: string; to: string }
      for (const [p, n] of [...fs.entries()])
        if (p === b.from || p.startsWith(`${b.from}/`)) {
          fs.delete(p)
          fs.set(b.to + p.slice(b.from.length), n)
        }
      return send(res, 200, {})
    }
    case 'DELETE /api/files':
      for (const p of [...fs.keys()]) if (p === path || p.startsWith(`${path}/`)) fs.delete(p)
      return send(res, 200, {})
    case 'GET /api/files/revisions': {
      const n = fs.get(path)
      return send(res, 200, {
        revisions: (n?.revisions ?? []).map((r) => ({
          id: r.id,
          size: r.data.length,
          hash: createHash('sha256').update(r.data).digest('hex'),
          author: user?.username,
          created: r.created,
        })),
      })
    }
    case 'POST /api/files/restore': {
      const b = JSON.parse((await body(req)).toString()) as { path: string; revision: number }
      const n = fs.get(b.path)
      const r = n?.revisions.find((x) => x.id === b.revision)
      if (!n || !r) return send(res, 404, { error: 'no such revision' })
      n.revisions.unshift({ id: n.version, data: n.data, created: n.modified })
      n.data = r.data
      n.version++
      return send(res, 200, {})
    }
    default:
      if (await teaching(req, res, url, user)) return
      return send(res, 404, { error: `mock has no ${route}` })
  }
}

// A hand-rolled WebSocket endpoint (text and binary frames, no fragmentation)
// that pretends to run a file: enough to see the console and its states.
function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : Buffer.from([0x80 | opcode, 126, len >> 8, len & 255])
  return Buffer.concat([head, payload])
}

function upgrade(req: IncomingMessage, socket: Duplex) {
  const key = req.headers['sec-websocket-key'] ?? ''
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
  )
  const event = (o: unknown) => socket.write(frame(1, Buffer.from(JSON.stringify(o))))
  const out = (s: string) => socket.write(frame(2, Buffer.from(s)))
  let line = ''
  let buf = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk])
    while (buf.length >= 6) {
      const opcode = buf[0]! & 15
      let len = buf[1]! & 127
      let off = 2
      if (len === 126) {
        len = buf.readUInt16BE(2)
        off = 4
      }
      if (buf.length < off + 4 + len) return
      const mask = buf.subarray(off, off + 4)
      const data = Buffer.from(buf.subarray(off + 4, off + 4 + len).map((b, i) => b ^ mask[i % 4]!))
      buf = buf.subarray(off + 4 + len)
      if (opcode === 8) return socket.end()
      if (opcode !== 1) continue
      const msg = JSON.parse(data.toString()) as { type: string; path?: string; data?: string }
      if (msg.type === 'run' || msg.type === 'repl') {
        event({ type: 'started', session: 'mock', path: msg.path ?? '' })
        const banner = msg.path ? `Hello, world!\r\n` : 'Python 3.12.3 (mock)\r\n'
        out(`${banner}\x1b[1m>>> \x1b[0m`)
      } else if (msg.type === 'stdin') {
        for (const ch of msg.data ?? '') {
          if (ch === '\r') {
            out(`\r\n${line ? `mock: ${line}\r\n` : ''}\x1b[1m>>> \x1b[0m`)
            line = ''
          } else if (ch === '\x7f') {
            if (line) out('\b \b')
            line = line.slice(0, -1)
          } else {
            line += ch
            out(ch)
          }
        }
      } else if (msg.type === 'stop') {
        event({ type: 'exited', code: -15, reason: 'stopped' })
      }
    }
  })
  socket.on('error', () => socket.destroy())
}

export function mockApi(): Plugin {
  return {
    name: 'pyide-mock-api',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        if (!req.url?.startsWith('/api/')) return next()
        handle(req, res).catch((e: unknown) => send(res, 500, { error: String(e) }))
      })
      server.httpServer?.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
        // The client adds ?tab=<id>.
        if (req.url?.split('?')[0] === '/api/ws') upgrade(req, socket)
      })
    },
  }
}

// Course and admin endpoints: a few items at fixed distances from now, so the
// screens show every state (open, late, closed, draft, a running timed test).
const at = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString()
type Obj = Record<string, unknown>
const items = {
  assignments: [
    { slug: 'hw0', title: 'Homework 0: Setup', description_md: 'Print your name.', publish_at: at(-24 * 10), due_at: at(-24 * 3), late_policy: 'none', late_cutoff_at: null },
    {
      slug: 'hw1',
      title: 'Homework 1: Loops',
      description_md:
        '# Loops\n\nWrite `count(n)` that prints **1 to n**.\n\n- Use a `for` loop\n- Test with `n = 5`\n\n```python\ndef count(n):\n    ...\n```\n\n<script>alert("not rendered")</script> [Python docs](https://docs.python.org/3/)',
      publish_at: at(-48),
      due_at: at(50),
      late_policy: 'cutoff',
      late_cutoff_at: at(74),
    },
    { slug: 'hw2', title: 'Homework 2: Functions', description_md: 'Draft.', publish_at: null, due_at: at(24 * 9), late_policy: 'none', late_cutoff_at: null },
  ] as Obj[],
  tests: [
    { slug: 'quiz1', title: 'Quiz 1', description_md: 'Answer in `quiz.py`.', publish_at: at(-24), starts_at: at(-1), ends_at: at(2), duration_minutes: 30, restrict_workspace: true, restrict_repl: true },
    { slug: 'midterm', title: 'Midterm', description_md: '', publish_at: at(-24), starts_at: at(49), ends_at: at(51), duration_minutes: null, restrict_workspace: false, restrict_repl: false },
  ] as Obj[],
  starts: { quiz1: { alice: at(-0.2) } } as Record<string, Record<string, string>>,
  subs: [
    { item: 'hw0', username: 'alice', n: 1, submitted_at: at(-24 * 3 - 2), late: false, auto: false, files: [{ name: 'hello.py', size: 42, sha256: '' }] },
    { item: 'hw1', username: 'alice', n: 1, submitted_at: at(-5), late: false, auto: false, files: [{ name: 'main.py', size: 120, sha256: '' }, { name: 'data.csv', size: 30, sha256: '' }] },
    { item: 'hw1', username: 'alice', n: 2, submitted_at: at(-1), late: false, auto: false, files: [{ name: 'main.py', size: 130, sha256: '' }] },
  ] as Obj[],
  grades: [{ item: 'hw0', username: 'alice', score: 9, max_score: 10, feedback_md: 'Good start. Next time add a **comment**.', graded_by: 'prof', graded_at: at(-24) }] as Obj[],
  users: [
    { username: 'alice', display_name: 'Alice Student', email: 'alice@example.edu', role: 'student', disabled: false, created: at(-24 * 30) },
    { username: 'bob', display_name: 'Bob Student', email: '', role: 'student', disabled: false, created: at(-24 * 30) },
    { username: 'carol', display_name: 'Carol Dropped', email: '', role: 'student', disabled: true, created: at(-24 * 30) },
    { username: 'prof', display_name: 'Prof. Ada Lovelace', email: 'ada@example.edu', role: 'professor', disabled: false, created: at(-24 * 60) },
  ] as Obj[],
}

function assignmentView(a: Obj) {
  const now = Date.now()
  const closes = (a.late_cutoff_at ?? a.due_at) as string
  const published = !!a.publish_at && Date.parse(a.publish_at as string) <= now
  const open = published && now < Date.parse(closes)
  return { ...a, published, open, late_now: open && now >= Date.parse(a.due_at as string), closes_at: closes, created_by: 'prof', updated_at: at(-1) }
}
function testView(t: Obj, who: string) {
  const start = items.starts[t.slug as string]?.[who] ?? null
  const d = t.duration_minutes as number | null
  let myEnd: string | null = d === null ? (t.ends_at as string) : null
  if (start && d !== null) myEnd = new Date(Math.min(Date.parse(start) + d * 60_000, Date.parse(t.ends_at as string))).toISOString()
  const published = !!t.publish_at && Date.parse(t.publish_at as string) <= Date.now()
  const open = published && !!myEnd && Date.now() >= Date.parse(t.starts_at as string) && Date.now() < Date.parse(myEnd)
  return { ...t, published, open, my_start: start, my_end: myEnd, created_by: 'prof', updated_at: at(-1) }
}
function subView(x: Obj, all: Obj[]) {
  const kind = items.tests.some((t) => t.slug === x.item) ? 'test' : 'assignment'
  return { ...x, kind, latest: all.at(-1) === x }
}

async function teaching(req: IncomingMessage, res: ServerResponse, url: URL, u: NonNullable<typeof user>): Promise<boolean> {
  const now = new Date().toISOString()
  const staff = u.role !== 'student'
  const parts = url.pathname.split('/').slice(2).map(decodeURIComponent) // after /api
  const m = req.method
  const json = async () => JSON.parse((await body(req)).toString() || '{}') as Obj
  const students = items.users.filter((x) => x.role === 'student')
  if (parts[0] === 'course') {
    const [, col, slug, action, who, n] = parts
    if (col === 'assignments' && !slug && m === 'GET')
      return send(res, 200, { now, assignments: items.assignments.map(assignmentView).filter((a) => staff || a.published) }), true
    if (col === 'tests' && !slug && m === 'GET')
      return send(res, 200, { now, tests: items.tests.map((t) => testView(t, u.username)).filter((t) => staff || t.published) }), true
    if ((col === 'assignments' || col === 'tests') && m === 'POST' && !slug) {
      const b = await json()
      if (!b.title) return send(res, 400, { error: 'title: required, at most 200 characters' }), true
      ;(col === 'assignments' ? items.assignments : items.tests).push(b)
      return send(res, 201, col === 'assignments' ? { now, assignment: assignmentView(b) } : { now, test: testView(b, u.username) }), true
    }
    if ((col === 'assignments' || col === 'tests') && m === 'PUT' && slug) {
      const list = col === 'assignments' ? items.assignments : items.tests
      const i = list.findIndex((x) => x.slug === slug)
      list[i] = { ...(await json()), slug }
      return send(res, 200, col === 'assignments' ? { now, assignment: assignmentView(list[i]!) } : { now, test: testView(list[i]!, u.username) }), true
    }
    if (col === 'assignments' && action === 'copy-starter') return send(res, 200, { now, folder: `Local/${u.username}/${slug}`, copied: ['starter.py'], skipped: [] }), true
    if (col === 'assignments' && action === 'submit') {
      const b = await json()
      const a = assignmentView(items.assignments.find((x) => x.slug === slug)!)
      if (!a.open) return send(res, 409, { error: `the deadline passed at ${a.closes_at}; submissions are closed` }), true
      const mine = items.subs.filter((x) => x.item === slug && x.username === u.username)
      const files = (b.files as string[]).map((f) => ({ name: f.split('/').pop(), size: 100, sha256: '' }))
      const sub = { item: slug, username: u.username, n: mine.length + 1, submitted_at: now, late: a.late_now, auto: false, files }
      items.subs.push(sub)
      return send(res, 201, { now, submission: subView(sub, [...mine, sub]) }), true
    }
    if (col === 'tests' && action === 'start') {
      ;(items.starts[slug!] ??= {})[u.username] ??= now
      return send(res, 200, { now, test: testView(items.tests.find((x) => x.slug === slug)!, u.username) }), true
    }
    if (col === 'items' && action === 'submissions' && !who && m === 'GET') {
      const title = [...items.assignments, ...items.tests].find((x) => x.slug === slug)?.title
      const rows = students.map((s) => {
        const mine = items.subs.filter((x) => x.item === slug && x.username === s.username)
        const last = mine.at(-1)
        const g = items.grades.find((x) => x.item === slug && x.username === s.username)
        const t = items.tests.find((x) => x.slug === slug)
        const clock = t ? testView(t, String(s.username)) : null
        return { username: s.username, display_name: s.display_name, disabled: s.disabled, submitted: !!last, submissions: mine.length,
          n: last?.n ?? null, submitted_at: last?.submitted_at ?? null, late: last?.late ?? false, auto: last?.auto ?? false,
          graded: !!g, score: g?.score ?? null, max_score: g?.max_score ?? null,
          started_at: t?.duration_minutes != null ? (clock?.my_start ?? null) : null, ends_at: clock?.my_end ?? null }
      })
      return send(res, 200, { now, item: slug, kind: 'assignment', title, students: rows }), true
    }
    if (col === 'items' && action === 'submissions' && who && !n) {
      if (!staff && who !== u.username) return send(res, 404, { error: 'no such submission' }), true
      const mine = items.subs.filter((x) => x.item === slug && x.username === who)
      return send(res, 200, { now, submissions: mine.map((x) => subView(x, mine)) }), true
    }
    if (col === 'items' && action === 'submissions' && n) {
      const name = url.searchParams.get('path') ?? ''
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' })
      res.end(name.endsWith('.csv') ? 'a,b\n1,2\n' : `# ${who}'s ${name}, submission ${n}\ndef count(n):\n    for i in range(1, n + 1):\n        print(i)\n\ncount(5)\n`)
      return true
    }
    if (col === 'items' && action === 'grades' && m === 'PUT') {
      const b = await json()
      const g = { item: slug, username: who, ...b, graded_by: u.username, graded_at: now }
      items.grades = items.grades.filter((x) => !(x.item === slug && x.username === who)).concat(g)
      return send(res, 200, { now, grade: { ...g, kind: 'assignment', title: '' } }), true
    }
    if (col === 'grades') {
      const titled = items.grades
        .filter((g) => staff || g.username === u.username)
        .map((g) => ({ ...g, kind: 'assignment', title: items.assignments.find((a) => a.slug === g.item)?.title ?? g.item }))
      return send(res, 200, { now, grades: titled }), true
    }
  }
  if (parts[0] === 'admin') {
    if (!staff) return send(res, 403, { error: 'staff only' }), true
    const [, col, name, action] = parts
    if (col === 'status')
      return send(res, 200, { time: now, database: { status: 'ok' }, docker: { status: 'ok' }, sandboxes: { running: 3, queued: 0, spares: 2, cap: 40 },
        disk: { path: '/srv/pyide', total_bytes: 200 * 1024 ** 3, free_bytes: 61 * 1024 ** 3 } }), true
    if (col === 'sandboxes' && m === 'GET')
      return send(res, 200, { stats: { running: 3, queued: 0, spares: 2, cap: 40 }, sandboxes: [
        { id: 'a1', user: 'alice', file: 'Local/alice/hello.py', spare: false, state: 'running', started: at(-0.3), idle_seconds: 42, cpu_seconds: 1.8, memory_bytes: 23 << 20 },
        { id: 'b1', user: 'bob', file: '', spare: false, state: 'running', started: at(-1.5), idle_seconds: 3100, cpu_seconds: 0.4, memory_bytes: 11 << 20 },
        { id: 'p1', user: 'prof', file: 'Submissions/hw1/alice/main.py', spare: false, state: 'running', started: at(-0.05), idle_seconds: 5, cpu_seconds: 0.2, memory_bytes: 9 << 20 },
        { id: 'sp', user: 'alice', file: '', spare: true, state: 'spare', started: at(-0.3), idle_seconds: 0, cpu_seconds: 0, memory_bytes: 7 << 20 },
      ] }), true
    if (col === 'sandboxes' && name === 'reap') return send(res, 200, { reaped: 1 }), true
    if (col === 'sandboxes' && m === 'DELETE') return res.writeHead(204).end(), true
    if (u.role !== 'admin') return send(res, 403, { error: 'admins only' }), true
    if (col === 'users' && !name && m === 'GET') return send(res, 200, { users: items.users }), true
    if (col === 'users' && !name && m === 'POST') {
      const b = await json()
      items.users.push({ ...b, disabled: false, created: now })
      return send(res, 200, { created: [b.username], updated: [], unchanged: [], passwords: { [b.username as string]: 'maple-river-7731' } }), true
    }
    if (col === 'users' && name === 'import') {
      const lines = (await body(req)).toString().split('\n').filter((l) => l && !l.startsWith('username'))
      const created = lines.map((l) => l.split(',')[0]!)
      return send(res, 200, { created, updated: [], unchanged: [], passwords: Object.fromEntries(created.map((c) => [c, `pw-${c}-2468`])) }), true
    }
    if (col === 'users' && (action === 'disable' || action === 'enable')) {
      const x = items.users.find((y) => y.username === name)
      if (x) x.disabled = action === 'disable'
      return res.writeHead(204).end(), true
    }
    if (col === 'users' && action === 'reset-password') return send(res, 200, { username: name, password: 'otter-lamp-5120' }), true
  }
  return false
}
