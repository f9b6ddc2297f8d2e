// A fake, in-memory PythonIDE API for `vite --mode mock` only: lets a front-end
// developer see and click through the IDE without the Go server. It is never
// part of a production build (vite.config.ts only loads it in mock mode), and it
// checks nothing: the real permission rules live in the server.
//
// Users: alice / bob (students), prof (professor); any password except "wrong".
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
put('Submissions')

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
    const role = username === 'prof' ? 'professor' : 'student'
    user = { username, display_name: username === 'prof' ? 'Prof. Ada Lovelace' : 'Alice Student', role }
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
        if (req.url === '/api/ws') upgrade(req, socket)
      })
    },
  }
}
