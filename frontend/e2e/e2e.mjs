// The end-to-end flow of PythonIDE in Debian's Chromium, driven by
// playwright-core (no browser download, no test runner). run.sh starts the
// server and makes the users; this file only drives the browser and checks
// what a person would see. Each step is named, leaves a 1280×720 screenshot in
// E2E_ARTIFACTS, and a failed step skips the rest of its group (they build on
// it) while the other groups still run.
import { chromium } from 'playwright-core'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const base = process.env.E2E_BASE_URL
const artifacts = process.env.E2E_ARTIFACTS ?? 'artifacts'
if (!base) {
  console.error('E2E_BASE_URL is not set: run frontend/e2e/run.sh')
  process.exit(2)
}
mkdirSync(artifacts, { recursive: true })

// Container output on a loaded 2-core machine: generous, never a sleep.
const containerTimeout = 45_000
const uiTimeout = 30_000

const users = {
  alice: { password: 'alice-e2e-pass', display: 'Alice Student' },
  bob: { password: 'bob-e2e-pass', display: 'Bob Student' },
  prof: { password: 'prof-e2e-pass', display: 'Pat Professor' },
}

const results = { passed: 0, failed: 0, skipped: 0 }
let shot = 0

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
})

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, colorScheme: 'light', baseURL: base })
  context.setDefaultTimeout(uiTimeout)
  const page = await context.newPage()
  // Anything the app logs as an error is worth seeing when a step fails.
  page.on('pageerror', (e) => console.error(`      page error: ${e.message}`))
  return page
}

/**
 * Runs the steps of one group in order; after a failure the rest are skipped.
 * A step is [title, fn] or [title, fn, page]: the screenshot is of the page
 * the step acted on, so a group may move between two people's browsers.
 */
async function group(name, page, steps) {
  console.log(`\n${name}`)
  let broken = ''
  for (const [title, fn, stepPage = page] of steps) {
    const file = `${String(++shot).padStart(2, '0')}-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}.png`
    if (broken) {
      results.skipped++
      console.log(`skip  ${title} (after "${broken}" failed)`)
      continue
    }
    const started = Date.now()
    try {
      await fn()
      results.passed++
      console.log(`ok    ${title} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
    } catch (e) {
      results.failed++
      broken = title
      console.log(`FAIL  ${title}\n      ${String(e?.message ?? e).split('\n').join('\n      ')}`)
    }
    await stepPage.screenshot({ path: join(artifacts, file), animations: 'disabled' }).catch((e) => console.error(`      no screenshot: ${e.message}`))
  }
}

function check(cond, message) {
  if (!cond) throw new Error(message)
}

// --- helpers that read the page the way a person would ---------------------

const tid = (page, id) => page.locator(`[data-testid="${id}"]`)
const treeItem = (page, path) => page.locator(`[data-testid="tree-item"][data-path="${path}"]`)

/** The console's visible lines, read from xterm's DOM renderer. */
async function terminalLines(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="terminal"] .xterm-rows > div')].map((d) =>
      (d.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd(),
    ),
  )
}

/**
 * Waits until the console's lines satisfy pred. Polls from here: the page's
 * CSP (rightly) forbids eval, so the predicate cannot be shipped into it.
 */
async function waitTerminal(page, what, pred, timeout = containerTimeout) {
  const deadline = Date.now() + timeout
  let lines = []
  for (;;) {
    lines = await terminalLines(page)
    if (pred(lines)) return
    if (Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 100))
  }
  const badge = await tid(page, 'state-badge').textContent().catch(() => '?')
  throw new Error(`${what}: not seen within ${timeout / 1000} s\nstate badge: ${badge?.trim()}\nconsole shows:\n  ${lines.filter((l) => l.trim()).join('\n  ')}`)
}

async function waitBadge(page, phase, timeout = containerTimeout) {
  const badge = tid(page, 'state-badge')
  try {
    await page.waitForFunction((p) => document.querySelector('[data-testid="state-badge"]')?.getAttribute('data-phase') === p, phase, {
      timeout,
      polling: 100,
    })
  } catch {
    throw new Error(`state badge never reached "${phase}"; it shows "${(await badge.textContent())?.trim()}" (${await badge.getAttribute('data-phase')})`)
  }
}

/** fetch() from inside the page: same origin, same session cookie. */
async function pageFetch(page, url, init = {}) {
  return page.evaluate(
    async ([url, init]) => {
      const r = await fetch(url, init)
      return { status: r.status, body: await r.text() }
    },
    [url, init],
  )
}

/** pageFetch, with the body parsed as JSON when it is JSON. */
async function pageJSON(page, url, init = {}) {
  const r = await pageFetch(page, url, init)
  let json = null
  try {
    json = JSON.parse(r.body)
  } catch {
    // Not JSON: the text is still there for the message.
  }
  return { status: r.status, json, text: r.body.slice(0, 300) }
}

/** An Element Plus input, whether the attribute landed on the field or its wrapper. */
const field = (page, id) =>
  page.locator(`input[data-testid="${id}"], textarea[data-testid="${id}"], [data-testid="${id}"] input, [data-testid="${id}"] textarea`)

/** Waits until the trimmed text of a test id satisfies pred. */
async function waitText(page, id, pred, timeout = uiTimeout) {
  const el = tid(page, id)
  const deadline = Date.now() + timeout
  let text = null
  for (;;) {
    text = (await el.count()) > 0 ? ((await el.first().textContent()) ?? '').replace(/\s+/g, ' ').trim() : null
    if (text !== null && pred(text)) return
    if (Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${id}: ${text === null ? 'not on the page' : `reads "${text}"`} after ${timeout / 1000} s`)
}

async function login(page, name, password) {
  await page.goto('/')
  await tid(page, 'login-form').waitFor()
  // Element Plus puts the attribute on the <input> itself or on its wrapper.
  const field = (id) => page.locator(`input[data-testid="${id}"], [data-testid="${id}"] input`)
  await field('login-username').fill(name)
  await field('login-password').fill(password)
  await tid(page, 'login-submit').click()
}

async function loginOK(page, name) {
  await login(page, name, users[name].password)
  await tid(page, 'ide').waitFor()
  const shown = (await tid(page, 'user-name').textContent())?.trim()
  check(shown === users[name].display, `the header names "${shown}", not "${users[name].display}"`)
  // The user's own folder opens by itself.
  await treeItem(page, `Local/${name}`).waitFor()
}

/** Creates a file through the tree's New file button and its name prompt. */
async function newFile(page, dir, name) {
  await treeItem(page, dir).click() // selects it (and may collapse it: the file still goes there)
  await tid(page, 'new-file').click()
  const box = page.locator('.el-message-box')
  await box.waitFor()
  const input = box.locator('input')
  await input.fill(name)
  await box.getByRole('button', { name: 'OK' }).click()
  await box.waitFor({ state: 'hidden' })
  const path = `${dir}/${name}`
  await treeItem(page, path).waitFor()
  await page.locator(`[data-testid="editor"][data-path="${path}"]`).waitFor()
  return path
}

/** Types into the open CodeMirror editor as a person would, key by key. */
async function typeCode(page, path, lines) {
  const content = page.locator(`[data-testid="editor"][data-path="${path}"] [data-testid="editor-content"]`)
  await content.click()
  for (const [i, line] of lines.entries()) {
    if (i > 0) await page.keyboard.press('Enter')
    await page.keyboard.type(line)
  }
  const want = lines.join('\n')
  await page.waitForFunction(
    ([p, w]) => {
      const el = document.querySelector(`[data-testid="editor"][data-path="${p}"] .cm-content`)
      return !!el && [...el.querySelectorAll('.cm-line')].map((l) => l.textContent).join('\n') === w
    },
    [path, want],
    { timeout: uiTimeout },
  ).catch(async () => {
    const got = await content.innerText()
    throw new Error(`the editor holds ${JSON.stringify(got)}, not ${JSON.stringify(want)}`)
  })
}

async function typeInConsole(page, text) {
  await tid(page, 'terminal').click()
  await page.keyboard.type(text)
  await page.keyboard.press('Enter')
}

/**
 * A minimal valid one-page PDF that reads "Week 1 notes" (xref offsets
 * computed, so the viewer needs no repair). ASCII only: fetch sends it as is.
 */
function tinyPDF() {
  const stream = 'BT /F1 24 Tf 72 720 Td (Week 1 notes) Tj ET'
  const objs = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ]
  let out = '%PDF-1.4\n'
  const offsets = objs.map((o, i) => {
    const at = out.length
    out += `${i + 1} 0 obj\n${o}\nendobj\n`
    return at
  })
  const xref = out.length
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n` + offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')
  return out + `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
}

/**
 * What Chromium's PDF viewer inside frame shows: the page count it loaded
 * (0 when it could not read the file). A PDF the browser refused never gets
 * the viewer (the frame is a chrome-error:// page instead), so that fails
 * here with the frames it did find.
 */
async function pdfPages(page, frame, timeout = uiTimeout) {
  const inside = (f) => {
    for (let p = f.parentFrame(); p; p = p.parentFrame()) if (p === frame) return true
    return false
  }
  const deadline = Date.now() + timeout
  let seen = ''
  for (;;) {
    const viewer = page.frames().find((f) => inside(f) && f.url().startsWith('chrome-extension://'))
    if (viewer) {
      // The viewer's page selector knows the document's length once it has loaded or failed.
      const pages = await viewer
        .evaluate(() => {
          const v = document.querySelector('pdf-viewer')?.shadowRoot
          const sel = v?.querySelector('viewer-toolbar')?.shadowRoot?.querySelector('viewer-page-selector')
          if (v?.querySelector('viewer-error-dialog')) return 0
          return sel && sel.docLength > 0 ? sel.docLength : null
        })
        .catch(() => null)
      if (pages !== null) return pages
    }
    seen = [frame, ...page.frames().filter(inside)].map((f) => f.url()).join(' | ')
    if (Date.now() > deadline) break
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`no PDF viewer with a loaded document within ${timeout / 1000} s; the frame holds: ${seen}`)
}

// --- the flow ----------------------------------------------------------------

const helloCode = ['x = 41', 'print("hello from", __name__)']
let alicePage, profPage, bobPage

try {
  // Bob has a file of his own, which Alice must not reach. Made through the
  // API from Bob's own session, as his browser would.
  bobPage = await newPage()
  await group('bob (setup)', bobPage, [
    [
      'bob saves a private file',
      async () => {
        await bobPage.goto('/')
        const r = await pageFetch(bobPage, '/api/auth/login', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ username: 'bob', password: users.bob.password }),
        })
        check(r.status === 200, `bob's login answered ${r.status}: ${r.body}`)
        const w = await pageFetch(bobPage, '/api/files/content?path=' + encodeURIComponent('Local/bob/secret.py'), {
          method: 'PUT',
          body: 'answer = "bob only"\n',
        })
        check(w.status === 200 || w.status === 201, `saving Local/bob/secret.py answered ${w.status}: ${w.body}`)
      },
    ],
  ])
  await bobPage.context().close()

  alicePage = await newPage()
  const page = alicePage
  await group('login page', page, [
    [
      'wrong password shows a plain error',
      async () => {
        await login(page, 'alice', 'not-her-password')
        const err = tid(page, 'login-error')
        await page.waitForFunction(() => (document.querySelector('[data-testid="login-error"]')?.textContent ?? '').trim() !== '')
        const text = (await err.textContent()).trim()
        check(/wrong username or password/i.test(text), `the error reads "${text}", not a plain "wrong username or password"`)
        check(await err.isVisible(), 'the error is not visible')
        check((await tid(page, 'ide').count()) === 0, 'the IDE opened after a wrong password')
      },
    ],
  ])

  await group('student alice', page, [
    ['alice logs in', () => loginOK(page, 'alice')],
    [
      'alice creates hello.py in her folder',
      async () => {
        await newFile(page, 'Local/alice', 'hello.py')
        const tab = tid(page, 'editor-tab').filter({ hasText: 'hello.py' })
        await tab.waitFor()
      },
    ],
    ['alice types code', () => typeCode(page, 'Local/alice/hello.py', helloCode)],
    [
      'Run shows the output and a prompt',
      async () => {
        await tid(page, 'run-button').click()
        await waitTerminal(page, 'the script output "hello from __main__"', (lines) => lines.some((l) => l.trim() === 'hello from __main__'))
        await waitTerminal(page, 'the >>> prompt after the script', (lines) => lines.some((l) => l.startsWith('>>>')))
        await waitBadge(page, 'running')
        // Run saved first: the server has exactly what was typed.
        const r = await pageFetch(page, '/api/files/content?path=' + encodeURIComponent('Local/alice/hello.py'))
        check(r.status === 200, `reading hello.py answered ${r.status}`)
        check(r.body.replace(/\n$/, '') === helloCode.join('\n'), `hello.py on the server holds ${JSON.stringify(r.body)}`)
      },
    ],
    [
      'the REPL keeps the script variables (x + 1 gives 42)',
      async () => {
        await typeInConsole(page, 'x + 1')
        await waitTerminal(page, '42 after "x + 1"', (lines) => {
          const i = lines.findLastIndex((l) => l.includes('>>> x + 1'))
          return i >= 0 && lines.slice(i + 1).some((l) => l.trim() === '42')
        })
        // And the prompt comes back for more.
        await waitTerminal(page, 'a new prompt after 42', (lines) => {
          const i = lines.findLastIndex((l) => l.includes('>>> x + 1'))
          return i >= 0 && lines.slice(i + 1).some((l) => l.startsWith('>>>'))
        })
      },
    ],
    [
      'F5 runs a script with an error: traceback, no prompt',
      async () => {
        const path = await newFile(page, 'Local/alice', 'oops.py')
        await typeCode(page, path, ['print("before the error")', '1/0'])
        await page.keyboard.press('F5')
        await waitTerminal(page, 'the ZeroDivisionError traceback', (lines) =>
          lines.some((l) => l.includes('ZeroDivisionError')),
        )
        await waitBadge(page, 'exited')
        const lines = await terminalLines(page)
        check(lines.some((l) => l.includes('Traceback (most recent call last)')), `no "Traceback" line:\n  ${lines.filter(Boolean).join('\n  ')}`)
        check(lines.some((l) => l.trim() === 'before the error'), 'the output before the error is missing')
        check(!lines.some((l) => l.includes('>>>')), `a >>> prompt is shown after the error:\n  ${lines.filter(Boolean).join('\n  ')}`)
        const badge = (await tid(page, 'state-badge').textContent()).trim()
        check(/exited/i.test(badge) && /error/i.test(badge), `the state badge reads "${badge}", not an exit with an error`)
        // The page did not reload (F5's browser meaning).
        check((await page.locator('[data-testid="editor-tab"]').count()) === 2, 'the editor tabs are gone: did F5 reload the page?')
      },
    ],
  ])

  // Separate from the steps above: isolation does not depend on them running.
  await group('student isolation', page, [
    [
      'alice sees only her own folder under Local',
      async () => {
        // The tree: Local holds alice and nothing else.
        await treeItem(page, 'Local').waitFor()
        const shown = await page
          .locator('[data-testid="tree-item"][data-path^="Local/"]')
          .evaluateAll((els) => els.map((e) => e.getAttribute('data-path')).filter((p) => p.split('/').length === 2))
        check(JSON.stringify(shown) === '["Local/alice"]', `under Local the tree shows ${JSON.stringify(shown)}`)
        // The API agrees, and a direct request for Bob's things is refused.
        const list = await pageFetch(page, '/api/files?path=Local')
        check(list.status === 200, `GET /api/files?path=Local answered ${list.status}`)
        const names = JSON.parse(list.body).entries.map((e) => e.name)
        check(JSON.stringify(names) === '["alice"]', `Local lists ${JSON.stringify(names)} for alice`)
        for (const url of ['/api/files?path=Local/bob', '/api/files/content?path=Local/bob/secret.py']) {
          const r = await pageFetch(page, url)
          check(r.status === 404 || r.status === 403, `GET ${url} answered ${r.status}: ${r.body.slice(0, 200)}`)
          check(!r.body.includes('bob only'), `GET ${url} leaked Bob's file`)
        }
      },
    ],
  ])

  profPage = await newPage()
  const pp = profPage
  await group('professor', pp, [
    [
      'professor sees both students under Local',
      async () => {
        await loginOK(pp, 'prof')
        const role = (await tid(pp, 'user-role').textContent()).trim()
        check(role === 'Professor', `the role tag reads "${role}"`)
        if ((await treeItem(pp, 'Local/alice').count()) === 0) await treeItem(pp, 'Local').click()
        await treeItem(pp, 'Local/alice').waitFor()
        await treeItem(pp, 'Local/bob').waitFor()
        // Bob's work is open to his professor.
        await treeItem(pp, 'Local/bob').click()
        await treeItem(pp, 'Local/bob/secret.py').waitFor()
      },
    ],
    [
      'View → Show REPL gives an empty REPL (2**10 is 1024)',
      async () => {
        await tid(pp, 'view-menu').click()
        await tid(pp, 'show-repl').click()
        await waitTerminal(pp, 'the >>> prompt of the teaching REPL', (lines) => lines.some((l) => l.startsWith('>>>')))
        await waitBadge(pp, 'running')
        const badge = (await tid(pp, 'state-badge').textContent()).trim()
        check(badge === 'REPL', `the state badge reads "${badge}", not "REPL"`)
        await typeInConsole(pp, '2**10')
        await waitTerminal(pp, '1024 after "2**10"', (lines) => {
          const i = lines.findLastIndex((l) => l.includes('>>> 2**10'))
          return i >= 0 && lines.slice(i + 1).some((l) => l.trim() === '1024')
        })
      },
    ],
    [
      'large font for the projector',
      async () => {
        const size = () => pp.locator('[data-testid="terminal"] .xterm-rows').evaluate((e) => parseFloat(getComputedStyle(e).fontSize))
        const before = await size()
        await tid(pp, 'view-menu').click()
        await tid(pp, 'large-font').click()
        await pp
          .waitForFunction(
            (b) => parseFloat(getComputedStyle(document.querySelector('[data-testid="terminal"] .xterm-rows')).fontSize) > b,
            before,
            { timeout: uiTimeout },
          )
          .catch(() => {
            throw new Error(`the console font stayed at ${before}px`)
          })
        const after = await size()
        check(after >= 20, `the large console font is only ${after}px`)
        // The REPL still answers at the new size (the terminal was re-fitted).
        await typeInConsole(pp, 'sum(range(5))')
        await waitTerminal(pp, '10 after "sum(range(5))"', (lines) => {
          const i = lines.findLastIndex((l) => l.includes('>>> sum(range(5))'))
          return i >= 0 && lines.slice(i + 1).some((l) => l.trim() === '10')
        })
      },
    ],
  ])
  // The course flow across two browsers: the professor makes an assignment,
  // Alice submits to it, the professor grades it, Alice reads her grade. It
  // logs in again where an earlier group did not get that far, so it does not
  // depend on them.
  const ap = alicePage
  const hw = {
    slug: 'loops-e2e',
    title: 'Homework E2E: Loops',
    description: 'Print the numbers **0 to 2**, one per line.',
    file: 'answer.py',
    code: 'for i in range(3):\n    print(i)\n',
  }
  // Raw HTML in feedback must arrive as text, never as markup.
  const feedback = 'Good loop. **Name** your variables. <img src=x onerror=alert(1)>'
  await group('course: assign, submit, grade', pp, [
    [
      'professor creates a published assignment in Course',
      async () => {
        if ((await tid(pp, 'ide').count()) === 0) await loginOK(pp, 'prof')
        await tid(pp, 'nav-course').click()
        await tid(pp, 'course-view').waitFor()
        await tid(pp, 'new-assignment').click()
        await field(pp, 'item-title').waitFor()
        await field(pp, 'item-title').fill(hw.title)
        await field(pp, 'item-slug').fill(hw.slug)
        await field(pp, 'item-description').fill(hw.description)
        await tid(pp, 'item-publish-mode').getByText('Now', { exact: true }).click()
        // Due in three days at 17:00 of the browser's own time zone.
        const due = await pp.evaluate(() => {
          const d = new Date(Date.now() + 3 * 86_400_000)
          d.setHours(17, 0, 0, 0)
          const two = (n) => String(n).padStart(2, '0')
          return { local: `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T17:00`, iso: d.toISOString() }
        })
        await field(pp, 'item-due-at').fill(due.local)
        check((await field(pp, 'item-due-at').inputValue()) === due.local, 'the due date did not take')
        await tid(pp, 'item-save').click()
        await field(pp, 'item-title').waitFor({ state: 'hidden' })
        await tid(pp, `course-item-${hw.slug}`).waitFor()
        await waitText(pp, 'assignment-title', (t) => t === hw.title)
        await waitText(pp, 'assignment-phase', (t) => t === 'Open')
        const r = await pageJSON(pp, `/api/course/assignments/${hw.slug}`)
        check(r.status === 200, `GET the assignment answered ${r.status}: ${r.text}`)
        const a = r.json.assignment
        check(a.title === hw.title && a.description_md === hw.description, `the server holds ${JSON.stringify(a)}`)
        check(a.published && a.open && !a.late_now, `the assignment is not open now: ${JSON.stringify(a)}`)
        check(Date.parse(a.due_at) === Date.parse(due.iso), `due_at is ${a.due_at}, not ${due.iso}`)
      },
    ],
    [
      'alice opens the assignment in Course',
      async () => {
        if ((await tid(ap, 'ide').count()) === 0) await loginOK(ap, 'alice')
        await tid(ap, 'nav-course').click()
        await tid(ap, 'course-view').waitFor()
        // Published "now" by the professor's browser clock: refresh until the
        // server lists it to her (at once, unless the clocks disagree).
        const item = tid(ap, `course-item-${hw.slug}`)
        const deadline = Date.now() + uiTimeout
        while ((await item.count()) === 0) {
          check(Date.now() < deadline, `the assignment never appeared in alice's Course list`)
          await tid(ap, 'course-refresh').click()
          await item.waitFor({ timeout: 2_000 }).catch(() => undefined)
        }
        await item.click()
        await waitText(ap, 'assignment-title', (t) => t === hw.title)
        await waitText(ap, 'assignment-status', (t) => t === 'Not submitted')
        const desc = (await tid(ap, 'assignment-description').locator('strong').textContent())?.trim()
        check(desc === '0 to 2', `the description's bold text reads "${desc}"`)
        check(await tid(ap, 'submit-open').isEnabled(), 'Submit… is disabled on an open assignment')
        check((await tid(ap, 'grade-card').count()) === 0, 'a grade is shown before any grading')
      },
      ap,
    ],
    [
      'alice saves answer.py and submits it',
      async () => {
        // Her browser saves the file as the IDE would, into the folder named
        // for the assignment, which the submit dialog ticks to begin with.
        const dir = `Local/alice/${hw.slug}`
        const mk = await pageJSON(ap, '/api/files', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ path: dir, type: 'dir' }),
        })
        check(mk.status === 200 || mk.status === 201, `making ${dir} answered ${mk.status}: ${mk.text}`)
        const put = await pageJSON(ap, '/api/files/content?path=' + encodeURIComponent(`${dir}/${hw.file}`), { method: 'PUT', body: hw.code })
        check(put.status === 200 || put.status === 201, `saving ${hw.file} answered ${put.status}: ${put.text}`)

        await tid(ap, 'submit-open').click()
        const row = tid(ap, `submit-file-${hw.slug}/${hw.file}`)
        await row.waitFor()
        if ((await row.locator('.el-checkbox.is-checked').count()) === 0) await row.locator('.el-checkbox').click()
        await row.locator('.el-checkbox.is-checked').waitFor()
        await tid(ap, 'submit-confirm').click()
        await tid(ap, 'submit-confirm').waitFor({ state: 'hidden' })
        await waitText(ap, 'assignment-status', (t) => t === 'Submitted')
        const history = (await tid(ap, 'history-table').innerText()).replace(/\s+/g, ' ')
        check(history.includes(hw.file) && history.includes('counts'), `the history reads "${history}"`)
        // The server kept exactly that file, on time.
        const r = await pageJSON(ap, `/api/course/items/${hw.slug}/submissions/alice`)
        check(r.status === 200, `GET her submissions answered ${r.status}: ${r.text}`)
        const subs = r.json.submissions ?? []
        check(subs.length === 1, `${subs.length} submissions on the server`)
        const files = subs[0].files.map((f) => `${f.name}:${f.size}`)
        check(JSON.stringify(files) === JSON.stringify([`${hw.file}:${hw.code.length}`]), `the submission holds ${JSON.stringify(files)}`)
        check(!subs[0].late && subs[0].latest, `the submission is ${JSON.stringify(subs[0])}`)
      },
      ap,
    ],
    [
      "professor sees alice's submission in Grading",
      async () => {
        await tid(pp, 'nav-grading').click()
        await tid(pp, 'grading-view').waitFor()
        await tid(pp, 'grading-item').click()
        await pp.locator('.el-select-dropdown__item:visible').filter({ hasText: hw.title }).click()
        await pp.waitForURL((u) => u.pathname === `/grading/${hw.slug}`)
        const aliceRow = pp.locator('.el-table__row').filter({ has: tid(pp, 'roster-alice') })
        const bobRow = pp.locator('.el-table__row').filter({ has: tid(pp, 'roster-bob') })
        await aliceRow.waitFor()
        await bobRow.waitFor()
        const aliceText = (await aliceRow.innerText()).replace(/\s+/g, ' ')
        check(!/not submitted/.test(aliceText), `alice's roster row reads "${aliceText}"`)
        check(/not submitted/.test(await bobRow.innerText()), "bob's roster row does not say he has not submitted")
        check(/1 of 2 submitted/.test(await pp.locator('.summary').innerText()), 'the roster does not count 1 of 2 submitted')
        await tid(pp, 'roster-alice').click()
        await pp.waitForURL((u) => u.pathname === `/grading/${hw.slug}/alice`)
        await tid(pp, `submission-file-${hw.file}`).waitFor()
        await pp.waitForFunction(
          (want) => document.querySelector('[data-testid="submission-content"] .cm-content')?.textContent?.includes(want),
          'print(i)',
          { timeout: uiTimeout, polling: 100 },
        ).catch(async () => {
          throw new Error(`the submitted file shows ${JSON.stringify(await tid(pp, 'submission-content').innerText())}`)
        })
      },
    ],
    [
      'professor enters a score and feedback and saves',
      async () => {
        // ElInputNumber takes a typed value on change (blur): Tab out.
        await field(pp, 'grade-score-input').fill('8.5')
        await field(pp, 'grade-score-input').press('Tab')
        await field(pp, 'grade-max-input').fill('10')
        await field(pp, 'grade-max-input').press('Tab')
        await field(pp, 'grade-feedback-input').fill(feedback)
        await tid(pp, 'grade-save').click()
        await waitText(pp, 'roster-score-alice', (t) => t === '8.5 / 10')
        const r = await pageJSON(pp, '/api/course/grades')
        check(r.status === 200, `GET grades answered ${r.status}`)
        const g = (r.json.grades ?? []).find((x) => x.item === hw.slug && x.username === 'alice')
        check(g, `no grade for alice on the server: ${r.text}`)
        check(g.score === 8.5 && g.max_score === 10 && g.feedback_md === feedback && g.graded_by === 'prof', `the server holds ${JSON.stringify(g)}`)
      },
    ],
    [
      'alice sees her score and feedback in Course',
      async () => {
        await tid(ap, 'course-refresh').click()
        await waitText(ap, 'grade-score', (t) => t === '8.5')
        const card = tid(ap, 'grade-card')
        const max = (await card.locator('.max').textContent())?.trim()
        check(max === '/ 10', `the grade reads "8.5 ${max}"`)
        const fb = tid(ap, 'grade-feedback')
        const fbText = (await fb.innerText()).trim()
        check(fbText.startsWith('Good loop.') && fbText.includes('<img src=x onerror=alert(1)>'), `the feedback reads "${fbText}"`)
        check((await fb.locator('strong').textContent())?.trim() === 'Name', 'the feedback Markdown was not rendered')
        check((await fb.locator('img').count()) === 0, "the feedback's raw HTML became an element")
        await waitText(ap, 'course-grades', (t) => t.includes('1 graded'))
        // Her own grade only, and the roster stays staff-only.
        const mine = await pageJSON(ap, '/api/course/grades')
        const who = (mine.json?.grades ?? []).map((x) => `${x.username}/${x.item}`)
        check(JSON.stringify(who) === JSON.stringify([`alice/${hw.slug}`]), `alice's grades list holds ${JSON.stringify(who)}`)
        const roster = await pageJSON(ap, `/api/course/items/${hw.slug}/submissions`)
        check(roster.status === 403, `alice asking for the roster got ${roster.status}`)
      },
      ap,
    ],
  ])
  // PDF preview: the notes show in Chromium's PDF viewer both through the
  // IDE's preview (a blob: frame) and at the file's own URL, which keeps its
  // sandboxing CSP; a file merely named .pdf runs nothing.
  const notes = 'Lecture Notes/week1.pdf'
  const fileURL = (p) => '/api/files/content?path=' + encodeURIComponent(p)
  await group('PDF preview', pp, [
    [
      'professor opens Lecture Notes/week1.pdf: the preview shows its page',
      async () => {
        // Back to the IDE without a reload (the teaching REPL stays attached), or log in.
        if ((await tid(pp, 'nav-ide').count()) > 0) await tid(pp, 'nav-ide').click()
        else await loginOK(pp, 'prof')
        await tid(pp, 'ide').waitFor()
        const put = await pageJSON(pp, fileURL(notes), { method: 'PUT', body: tinyPDF() })
        check(put.status === 200 || put.status === 201, `saving ${notes} answered ${put.status}: ${put.text}`)
        await tid(pp, 'refresh').click()
        // Expand the folder only if it is closed: a click on an open one would close it.
        const closed = pp.locator('li[role="treeitem"][aria-expanded="false"]:has(> [data-testid="tree-item"][data-path="Lecture Notes"])')
        if ((await closed.count()) > 0) await closed.locator('> [data-testid="tree-item"]').click()
        await treeItem(pp, notes).click()
        const frame = pp.locator('[data-testid="preview"][data-kind="pdf"] iframe')
        await frame.waitFor()
        const pages = await pdfPages(pp, await (await frame.elementHandle()).contentFrame())
        check(pages === 1, `the preview's PDF viewer shows ${pages} pages, not 1`)
      },
    ],
    [
      "the file's own URL shows the PDF in a frame, sandboxed",
      async () => {
        const r = await pp.evaluate(async (u) => {
          const res = await fetch(u)
          return { status: res.status, type: res.headers.get('content-type'), csp: res.headers.get('content-security-policy') }
        }, fileURL(notes))
        check(r.status === 200 && r.type === 'application/pdf', `GET ${notes} answered ${r.status} ${r.type}`)
        check(/(^|;)\s*sandbox\s*(;|$)/.test(r.csp ?? ''), `${notes} is served without a bare CSP sandbox: ${r.csp}`)
        const el = await pp.evaluateHandle((u) => {
          const f = document.createElement('iframe')
          f.src = u
          f.style.cssText = 'position:fixed;right:0;bottom:0;width:600px;height:400px;z-index:9999'
          document.body.append(f)
          return f
        }, fileURL(notes))
        try {
          const pages = await pdfPages(pp, await el.asElement().contentFrame())
          check(pages === 1, `the PDF viewer at the file's URL shows ${pages} pages, not 1`)
        } finally {
          await el.evaluate((f) => f.remove())
        }
      },
    ],
    [
      'a file named .pdf that holds HTML runs no script',
      async () => {
        const fake = 'Local/prof/fake.pdf'
        const html = "<html><body><script>parent.postMessage('fake.pdf ran', '*')</script>a page</body></html>"
        const put = await pageJSON(pp, fileURL(fake), { method: 'PUT', body: html })
        check(put.status === 200 || put.status === 201, `saving ${fake} answered ${put.status}: ${put.text}`)
        const el = await pp.evaluateHandle((u) => {
          window.__fakeMessages = []
          window.addEventListener('message', (e) => window.__fakeMessages.push(String(e.data)))
          const f = document.createElement('iframe')
          f.src = u
          document.body.append(f)
          return f
        }, fileURL(fake))
        try {
          // Once the viewer has given up on the file, its bytes had their chance to run.
          const pages = await pdfPages(pp, await el.asElement().contentFrame()).catch((e) => e)
          const msgs = await pp.evaluate(() => window.__fakeMessages)
          check(msgs.length === 0, `the HTML inside ${fake} ran: ${JSON.stringify(msgs)}`)
          if (pages instanceof Error) throw pages
          check(pages === 0, `the PDF viewer read ${pages} pages from HTML`)
        } finally {
          await el.evaluate((f) => f.remove())
        }
      },
    ],
  ])
} catch (e) {
  // A failure outside any step (the browser itself) still counts.
  results.failed++
  console.log(`FAIL  the browser session: ${e?.stack ?? e}`)
} finally {
  await browser.close().catch(() => undefined)
}

const line = `e2e: ${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped`
writeFileSync(join(artifacts, 'result.txt'), line + '\n')
console.log(`\nbrowser steps: ${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped`)
process.exit(results.failed > 0 ? 1 : 0)
