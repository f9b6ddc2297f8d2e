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

/** Runs the steps of one group in order; after a failure the rest are skipped. */
async function group(name, page, steps) {
  console.log(`\n${name}`)
  let broken = ''
  for (const [title, fn] of steps) {
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
    await page.screenshot({ path: join(artifacts, file), animations: 'disabled' }).catch((e) => console.error(`      no screenshot: ${e.message}`))
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
