// The end-to-end checks of issue 16, "the IDE as students, professors and
// admins meet it": work is never lost (grades, a test's last minute), the
// console speaks plain words, and the screens offer what each role needs.
// e2e.mjs runs them after its own groups and lends its helpers (h), so the
// browser, the users and the screenshots are one run.

/** An Element Plus input's value, whether the test id is on the field or its wrapper. */
async function inputValue(h, page, id) {
  return h.field(page, id).first().inputValue()
}

/** Waits until pred(value) holds for the input of test id. */
async function waitValue(h, page, id, pred, what) {
  const deadline = Date.now() + h.uiTimeout
  let v = ''
  for (;;) {
    v = await inputValue(h, page, id).catch(() => '<none>')
    if (pred(v)) return v
    if (Date.now() > deadline) throw new Error(`${what}: ${id} holds ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

export async function uxGroups(h) {
  // E2E_UX=console,admin runs only those parts (while working on them).
  const only = (process.env.E2E_UX ?? '').split(',').filter(Boolean)
  const wanted = (part) => only.length === 0 || only.includes(part)
  if (wanted('grading')) await gradingKeeps(h)
  if (wanted('test')) await testEnds(h)
  if (wanted('console')) await consoleWords(h)
  if (wanted('files')) await filesAndNotes(h)
  if (wanted('admin')) await adminScreens(h)
}

/** Lost work: a grader who opens a student by its link (or reloads) sees the saved grade, and a comment alone never clears the score. */
async function gradingKeeps(h) {
  const { group, check, tid, pageJSON } = h

  const gp = await h.newPage()
  const { hw } = h
  const gradeOf = async () => {
    const r = await pageJSON(gp, '/api/course/grades')
    return (r.json?.grades ?? []).find((x) => x.item === hw.slug && x.username === 'alice')
  }
  await group('grading keeps what was saved', gp, [
    [
      'a direct link to a student shows the saved score and feedback',
      async () => {
        await h.loginOK(gp, 'prof')
        const before = await gradeOf()
        check(before?.score === 8.5, `the grade to start from is ${JSON.stringify(before)}`)
        await gp.goto(`/grading/${hw.slug}/alice`)
        await tid(gp, 'grade-form').waitFor()
        await waitValue(h, gp, 'grade-score-input', (v) => parseFloat(v) === 8.5, 'the saved score 8.5 is not shown')
        await waitValue(h, gp, 'grade-max-input', (v) => parseFloat(v) === 10, 'the saved maximum 10 is not shown')
        await waitValue(h, gp, 'grade-feedback-input', (v) => v === before.feedback_md, 'the saved feedback is not shown')
      },
    ],
    [
      'a new comment alone, saved after a reload, keeps the score',
      async () => {
        await gp.reload()
        await tid(gp, 'grade-form').waitFor()
        await waitValue(h, gp, 'grade-score-input', (v) => parseFloat(v) === 8.5, 'after a reload the score')
        const comment = 'Second look: see the loop bounds.'
        await h.field(gp, 'grade-feedback-input').fill(comment)
        await tid(gp, 'grade-save').click()
        await h.waitText(gp, 'roster-score-alice', (t) => t === '8.5 / 10')
        const g = await gradeOf()
        check(g?.score === 8.5 && g.max_score === 10 && g.feedback_md === comment, `the server holds ${JSON.stringify(g)}`)
        await gp.reload()
        await waitValue(h, gp, 'grade-feedback-input', (v) => v === comment, 'after saving and reloading the feedback')
        await waitValue(h, gp, 'grade-score-input', (v) => parseFloat(v) === 8.5, 'after saving and reloading the score')
      },
    ],
  ])
  await gp.context().close()
}

/** Where the keyboard is: the test id and data-path of the element that holds it. */
const focused = (page) =>
  page.evaluate(() => {
    const el = document.activeElement
    const editor = el?.closest('[data-testid="editor"]')
    return { content: el?.getAttribute('data-testid') ?? '', path: editor?.getAttribute('data-path') ?? '' }
  })

/** Types lines where the keyboard already is (no click first). */
async function typeHere(page, lines) {
  for (const [i, line] of lines.entries()) {
    if (i > 0) await page.keyboard.press('Enter')
    await page.keyboard.type(line)
  }
}

/** The console shows text somewhere in its visible lines. */
const shows = (text) => (lines) => lines.some((l) => l.includes(text))

/**
 * The console in words a student understands: files named as the tree
 * names them, the line of an error marked and linked, what to do after an
 * error, how each run ended (with the configured limits), keys typed to
 * nothing said so; a student's REPL; a run ended by staff says who.
 */
async function consoleWords(h) {
  const { group, check, tid, waitTerminal, waitBadge, terminalLines } = h
  const ap = await h.newPage()
  const editorOf = (p) => ap.locator(`[data-testid="editor"][data-path="${p}"]`)
  await group('the console in plain words', ap, [
    [
      'a new file takes the cursor; Run is offered only for Python files',
      async () => {
        await h.loginOK(ap, 'alice')
        const md = await h.newFile(ap, 'Local/alice', 'notes.md')
        const at = await focused(ap)
        check(at.content === 'editor-content' && at.path === md, `after New file the keyboard is at ${JSON.stringify(at)}, not in the editor`)
        await typeHere(ap, ['# Notes'])
        await ap.waitForFunction((p) => document.querySelector(`[data-testid="editor"][data-path="${p}"] .cm-content`)?.textContent === '# Notes', md)
        check(await tid(ap, 'run-button').isDisabled(), 'Run is offered for notes.md')
        await ap.keyboard.press('F5')
        await ap.locator('.el-message').filter({ hasText: 'Only Python files' }).waitFor()
      },
    ],
    [
      'a traceback names the file as the tree does, marks the line, and says how to go on',
      async () => {
        const py = await h.newFile(ap, 'Local/alice', 'trace.py')
        await typeHere(ap, ['x = 1', 'y = 0', 'print(x / y)'])
        await tid(ap, 'run-button').click()
        await waitTerminal(ap, 'the ZeroDivisionError', shows('ZeroDivisionError'))
        await waitTerminal(ap, 'the traceback naming Local/alice/trace.py', shows('File "Local/alice/trace.py", line 3'))
        const lines = await terminalLines(ap)
        check(!lines.some((l) => l.includes('/home/student')), `the console still shows /home/student:\n  ${lines.filter(Boolean).join('\n  ')}`)
        await waitTerminal(ap, 'what to do after an error', shows('No Python prompt after an error: fix the line it points to'))
        const marked = editorOf(py).locator('[data-testid="error-line"]')
        await marked.waitFor().catch(() => {
          throw new Error('the editor marks no line')
        })
        check((await marked.innerText()).trim() === 'print(x / y)', `the marked line reads "${await marked.innerText()}"`)
        // Typing with nothing running is answered, not swallowed.
        await h.typeInConsole(ap, 'y = 1')
        await waitTerminal(ap, 'a word that nothing runs', shows('Nothing is running, so what you type here'))
      },
    ],
    [
      'a click on the traceback opens the file at that line',
      async () => {
        await tid(ap, 'editor-tab').filter({ hasText: 'notes.md' }).click()
        // A tall console shows the whole traceback; following a link gives the editor its room back.
        await tid(ap, 'console-maximize').click()
        // The link is the file name in the console's text, found again before
        // every try: maximizing refits the console, which moves its rows.
        const where = () => ap.evaluate(() => {
          const spans = [...document.querySelectorAll('[data-testid="terminal"] .xterm-rows span, [data-testid="terminal"] .xterm-rows > div')]
          for (const el of spans) {
            // The traceback's line, not any other mention of the file.
            const at = el.textContent?.indexOf('File "Local/alice/trace.py"') ?? -1
            if (at < 0 || el.children.length) continue
            const i = at + 'File "'.length
            const r = document.createRange()
            r.setStart(el.firstChild, i)
            r.setEnd(el.firstChild, i + 'Local/alice/trace.py'.length)
            const b = r.getBoundingClientRect()
            return { x: b.x + b.width / 2, y: b.y + b.height / 2 }
          }
          return null
        })
        // Where it stays put for a quarter of a second: the console's rows can
        // move by a line while it settles into its new size.
        const steady = async () => {
          let last = await where()
          for (let i = 0; i < 20; i++) {
            await ap.waitForTimeout(250)
            const now = await where()
            if (now && last && now.x === last.x && now.y === last.y) return now
            last = now
          }
          return last
        }
        let box = await steady()
        if (!box) {
          const html = await ap.evaluate(() => [...document.querySelectorAll('[data-testid="terminal"] .xterm-rows > div')].map((d) => d.outerHTML).filter((x) => x.includes('trace')).join('\n'))
          throw new Error(`no "Local/alice/trace.py" text in the console to click; rows:\n${html}`)
        }
        // The terminal looks for links under the pointer a moment after it
        // moves; on a busy machine that moment can come after a quick click,
        // so the pointer moves and clicks again (at most three times).
        const opened = () => ap.waitForFunction(
          () => document.querySelector('[data-testid="editor-tab"][aria-selected="true"]')?.getAttribute('data-path') === 'Local/alice/trace.py',
          null, { timeout: 10_000 })
        for (let attempt = 1; ; attempt++) {
          if (attempt > 1) box = (await steady()) ?? box
          await ap.mouse.move(box.x, box.y)
          await ap.mouse.move(box.x + 2, box.y)
          await ap.waitForTimeout(300 * attempt)
          await ap.mouse.click(box.x + 2, box.y)
          try {
            await opened()
            break
          } catch (e) {
            if (attempt === 3) throw e
          }
        }
        await editorOf('Local/alice/trace.py').locator('[data-testid="error-line"]').waitFor({ state: 'visible' })
        const at = await focused(ap)
        check(at.path === 'Local/alice/trace.py', `after the click the keyboard is at ${JSON.stringify(at)}`)
      },
    ],
    [
      'Ctrl-C and Stop are said in words',
      async () => {
        await h.newFile(ap, 'Local/alice', 'wait.py')
        await typeHere(ap, ['import time', 'print("waiting")', 'time.sleep(120)'])
        await tid(ap, 'run-button').click()
        await waitTerminal(ap, '"waiting"', (l) => l.some((x) => x.trim() === 'waiting'))
        await tid(ap, 'terminal').click()
        await ap.keyboard.press('Control+C')
        await waitTerminal(ap, 'Stopped by Ctrl-C', shows('Stopped by Ctrl-C.'))
        await h.waitText(ap, 'state-badge', (t) => t === 'Stopped: Ctrl-C')
        await tid(ap, 'run-button').click()
        await waitTerminal(ap, '"waiting" again', (l) => l.some((x) => x.trim() === 'waiting'))
        await waitBadge(ap, 'running')
        await tid(ap, 'stop-button').click()
        await waitTerminal(ap, 'Stopped by you', shows('Stopped by you.'))
      },
    ],
    [
      'Esc then a key goes to the program (Esc then Tab leaves the console)',
      async () => {
        await h.newFile(ap, 'Local/alice', 'keys.py')
        await typeHere(ap, ['import sys', 'print("ready")', 'print("got", repr(sys.stdin.readline()))', 'print("then", repr(sys.stdin.readline()))'])
        await tid(ap, 'run-button').click()
        await waitTerminal(ap, '"ready"', (l) => l.some((x) => x.trim() === 'ready'))
        await tid(ap, 'terminal').click()
        await ap.keyboard.press('Escape')
        await ap.keyboard.type('x')
        await ap.keyboard.press('Enter')
        await waitTerminal(ap, 'the Esc and the x the program read', shows("got '\\x1bx\\n'"))
        // An Esc left pending when the keyboard goes elsewhere is dropped.
        await ap.keyboard.press('Escape')
        await editorOf('Local/alice/keys.py').locator('[data-testid="editor-content"]').click()
        await tid(ap, 'terminal').click()
        await ap.keyboard.type('y')
        await ap.keyboard.press('Enter')
        await waitTerminal(ap, 'only the y, after an Esc and a click away', shows("then 'y\\n'"))
      },
    ],
    [
      'the memory limit is named with its configured size',
      async () => {
        await h.newFile(ap, 'Local/alice', 'hog.py')
        await typeHere(ap, ['s = "x" * (512 * 1024 * 1024)', 'print(len(s))'])
        await tid(ap, 'run-button').click()
        await waitTerminal(ap, 'the memory limit in words', shows('more than the 96 MB memory limit'))
      },
    ],
    [
      'the CPU time limit is named with its configured time',
      async () => {
        await h.newFile(ap, 'Local/alice', 'spin.py')
        await typeHere(ap, ['while True: pass'])
        await tid(ap, 'run-button').click()
        await waitTerminal(ap, 'the CPU limit in words', shows('over the CPU time limit (5 s of computing per command)'), 60_000)
      },
    ],
    [
      'going over the storage quota is said plainly, with what was not kept',
      async () => {
        await h.newFile(ap, 'Local/alice', 'fill.py')
        // Four files of 6 MB (one file may not pass 10 MB): 24 MB, over the 20 MB quota.
        await typeHere(ap, ['for n in range(4): open(f"fill{n}.bin", "wb").write(bytes(6_000_000))', 'import time', 'time.sleep(60)'])
        await tid(ap, 'run-button').click()
        await waitTerminal(ap, 'the quota in words', shows('Stopped: your files went over your storage quota.'), 60_000)
        await h.waitText(ap, 'console-error', (t) => /fill\d\.bin/.test(t))
        // The tree shows what the program wrote once it ends.
        await h.treeItem(ap, 'Local/alice/fill0.bin').waitFor()
        // Room again for the groups after this one: delete, and empty the trash.
        for (let n = 0; n < 4; n++) await h.pageFetch(ap, '/api/files?path=' + encodeURIComponent(`Local/alice/fill${n}.bin`), { method: 'DELETE' })
        const empty = await h.pageFetch(ap, '/api/files/trash', { method: 'DELETE' })
        check(empty.status < 300, `emptying the trash answered ${empty.status}: ${empty.body}`)
      },
    ],
    [
      'a student gets Show REPL when the course allows it',
      async () => {
        await tid(ap, 'view-menu').click()
        await tid(ap, 'show-repl').click()
        await waitTerminal(ap, 'the >>> prompt of her REPL', (l) => l.some((x) => x.startsWith('>>>')))
        await h.typeInConsole(ap, '6 * 7')
        await waitTerminal(ap, '42', (l) => l.some((x) => x.trim() === '42'))
      },
    ],
  ])

  const pp = await h.newPage()
  await group('staff end a program: the student is told who', pp, [
    [
      'the professor reaps alice’s REPL after a confirmation',
      async () => {
        await h.loginOK(pp, 'prof')
        await tid(pp, 'nav-admin').click()
        // Her REPL's row (a container kept for her next Run has a row too).
        await tid(pp, 'sandboxes-table').locator('.el-table__row').filter({ hasText: '(empty REPL)' }).locator('[data-testid="reap-alice"]').click()
        const box = pp.locator('.el-message-box')
        await box.waitFor({ timeout: 5_000 }).catch(() => {
          throw new Error('Reap ended a program without asking first')
        })
        await box.getByRole('button', { name: 'End it' }).click()
      },
    ],
    [
      'alice’s console says an administrator ended it',
      async () => {
        await waitTerminal(ap, 'who ended it', shows('An administrator ended your program'))
        await waitBadge(ap, 'exited')
        await h.waitText(ap, 'state-badge', (t) => t === 'Exited: ended by the server')
      },
      ap,
    ],
  ])
  await ap.context().close()

  // Waiting in line: the server runs 8 programs at once (run.sh); more
  // professor windows each run a sleeping program until one has to wait.
  const sleepers = []
  await group('waiting in line is a line in the console', pp, [
    [
      'a run that must wait says its place in line, and starts when a place is free',
      async () => {
        const w = await pageJSONPut(h, pp, 'Local/prof/sleep.py', 'import time\nprint("awake")\ntime.sleep(300)\n')
        check(w, 'could not save sleep.py')
        let waiting = null
        for (let i = 0; i < 10 && !waiting; i++) {
          const p = await h.newPage()
          sleepers.push(p)
          await h.loginOK(p, 'prof')
          // The home folder opens by itself, with the file saved before.
          await h.treeItem(p, 'Local/prof/sleep.py').click()
          await tid(p, 'run-button').click()
          await p.waitForFunction(() => ['running', 'queued'].includes(document.querySelector('[data-testid="state-badge"]')?.getAttribute('data-phase')), null, { timeout: h.containerTimeout })
          if ((await tid(p, 'state-badge').getAttribute('data-phase')) === 'queued') waiting = p
          else await waitTerminal(p, '"awake"', (l) => l.some((x) => x.trim() === 'awake'))
        }
        check(waiting, 'no run had to wait with 10 programs running')
        await waitTerminal(waiting, 'its place in line', shows('you are number 1 in line'))
        // A place frees up: the waiting run starts and its line gives way.
        await tid(sleepers[0], 'stop-button').click()
        await waitTerminal(waiting, '"awake" once started', (l) => l.some((x) => x.trim() === 'awake'))
        const lines = await terminalLines(waiting)
        check(!lines.some((l) => l.includes('in line')), `the waiting line stayed: ${lines.filter(Boolean).join(' | ')}`)
      },
    ],
  ])
  for (const p of sleepers) {
    await tid(p, 'stop-button').click().catch(() => undefined)
    await p.context().close()
  }

  await group('projector mode', pp, [
    [
      'the console fills the screen, large and in high contrast, and comes back',
      async () => {
        await tid(pp, 'nav-ide').click()
        await tid(pp, 'view-menu').click()
        await tid(pp, 'projector-mode').click()
        await tid(pp, 'console').and(pp.locator('[data-maximized="true"]')).waitFor()
        check(!(await tid(pp, 'editor-tabs').isVisible()), 'the editor still shows in projector mode')
        const look = await pp.evaluate(() => {
          const rows = document.querySelector('[data-testid="terminal"] .xterm-rows')
          const screen = document.querySelector('[data-testid="terminal"] .xterm-viewport')
          const box = document.querySelector('[data-testid="console"]').getBoundingClientRect()
          return { font: parseFloat(getComputedStyle(rows).fontSize), bg: getComputedStyle(screen).backgroundColor, height: box.height }
        })
        check(look.font >= 24, `the projector font is ${look.font}px`)
        check(look.bg === 'rgb(0, 0, 0)', `the projector background is ${look.bg}`)
        check(look.height > 560, `the console is only ${look.height}px high`)
        await h.axe(pp, 'IDE: projector mode')
        await tid(pp, 'console-maximize').click()
        await tid(pp, 'editor-tabs').waitFor()
      },
    ],
  ])
  await pp.context().close()
}

/** Saves a file through the API from page; true when it worked. */
async function pageJSONPut(h, page, path, body) {
  const r = await h.pageFetch(page, '/api/files/content?path=' + encodeURIComponent(path), { method: 'PUT', body })
  return r.status === 200 || r.status === 201
}

/**
 * A test's last minute, as Bob lives it: a one-minute test, the countdown
 * and the 1-minute warning in the IDE, typing until the editor locks, and
 * every line he typed in the automatic submission.
 */
async function testEnds(h) {
  const { group, check, tid, pageJSON } = h
  const quiz = { slug: 'minute-e2e', title: 'Quiz E2E: one minute', file: 'answer.py' }
  const folder = `Submissions/${quiz.slug}/bob`
  const path = `${folder}/${quiz.file}`
  const bp = await h.newPage()
  const sp = await h.newPage() // the professor's view of the test
  const editable = () =>
    bp.evaluate((p) => {
      const el = document.querySelector(`[data-testid="editor"][data-path="${p}"] .cm-content`)
      return !!el && el.getAttribute('aria-readonly') !== 'true'
    }, path)
  /** Lines Bob typed in full while the editor took keys, before and after. */
  const typed = []
  let lockedAfter = 0
  await group("a test's last minute", bp, [
    [
      'the professor publishes a one-minute test',
      async () => {
        await h.loginOK(sp, 'prof')
        const now = Date.now()
        const r = await pageJSON(sp, '/api/course/tests', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({
            slug: quiz.slug,
            title: quiz.title,
            description_md: 'Type until the time is up.',
            publish_at: new Date(now - 60_000).toISOString(),
            starts_at: new Date(now - 60_000).toISOString(),
            ends_at: new Date(now + 3_600_000).toISOString(),
            duration_minutes: 1,
            restrict_workspace: false,
            restrict_repl: false,
          }),
        })
        check(r.status === 201, `creating the test answered ${r.status}: ${r.text}`)
      },
      sp,
    ],
    [
      'bob starts it: the IDE header counts down and warns of the last minute',
      async () => {
        await h.loginOK(bp, 'bob')
        await tid(bp, 'nav-course').click()
        await tid(bp, `course-item-${quiz.slug}`).click()
        await tid(bp, 'test-start').click()
        await bp.locator('.el-message-box').getByRole('button', { name: 'Start' }).click()
        // Starting opens the test folder in the IDE.
        await tid(bp, 'ide').waitFor()
        await h.treeItem(bp, folder).waitFor()
        await tid(bp, 'test-timer').waitFor({ timeout: h.uiTimeout }).catch(() => {
          throw new Error('the IDE shows no countdown while the test runs')
        })
        await h.waitText(bp, 'test-timer-left', (t) => /^00:[0-5]\d$/.test(t))
        await bp.locator('.test-warning').filter({ hasText: /1 minute left/ }).waitFor().catch(() => {
          throw new Error('no "1 minute left" warning')
        })
        await h.axe(bp, 'IDE: a test running, with its countdown')
      },
    ],
    [
      'the professor sees who started, the time each has left, who submitted',
      async () => {
        await tid(sp, 'nav-course').click()
        await tid(sp, `course-item-${quiz.slug}`).click()
        await tid(sp, 'test-watch').waitFor().catch(() => {
          throw new Error('the test shows staff no list of who is taking it')
        })
        await h.waitText(sp, 'test-watch-left-bob', (t) => /^00:[0-5]\d$/.test(t))
        await h.waitText(sp, 'test-watch-left-alice', (t) => t === 'not started')
        await h.waitText(sp, 'test-watch-submitted-bob', (t) => t === 'not yet')
        await h.waitText(sp, 'test-watch-summary', (t) => t.startsWith('1 of 3 started'))
        await h.axe(sp, 'course: who is taking a test (staff)')
      },
      sp,
    ],
    [
      'bob types until the editor locks; every line is in the automatic submission',
      async () => {
        await h.newFile(bp, folder, quiz.file)
        const content = bp.locator(`[data-testid="editor"][data-path="${path}"] [data-testid="editor-content"]`)
        await content.click()
        const deadline = Date.now() + 100_000
        for (let i = 1; Date.now() < deadline; i++) {
          if (!(await editable())) break
          const line = `line_${i} = ${i}`
          await bp.keyboard.type(line)
          await bp.keyboard.press('Enter')
          if (!(await editable())) break
          typed.push(line)
          await new Promise((r) => setTimeout(r, 250))
        }
        lockedAfter = typed.length
        check(!(await editable()), `the editor still takes keys after ${typed.length} lines and 100 s`)
        check(typed.length >= 20, `only ${typed.length} lines were typed before the lock`)
        await tid(bp, 'test-over-dialog').waitFor()
        await h.waitText(bp, 'save-state', (t) => t === 'Read-only')
        await tid(bp, 'test-over-ok').click()
        await tid(bp, 'test-over-dialog').waitFor({ state: 'hidden' })
        // A long, locked editor: its scroller is reached by keyboard, and its
        // line numbers pass contrast in the dark theme too.
        await h.axe(bp, 'IDE: the test folder after its end, read-only')
        // The server submits at the end; wait for that snapshot.
        let sub
        const until = Date.now() + 30_000
        while (!sub && Date.now() < until) {
          const r = await pageJSON(bp, `/api/course/items/${quiz.slug}/submissions/bob`)
          sub = (r.json?.submissions ?? []).find((x) => x.auto)
          if (!sub) await new Promise((r) => setTimeout(r, 500))
        }
        check(sub, 'no automatic submission within 30 s of the end')
        const file = await h.pageFetch(bp, `/api/course/items/${quiz.slug}/submissions/bob/${sub.n}/files?path=${encodeURIComponent(quiz.file)}`)
        check(file.status === 200, `reading the submitted ${quiz.file} answered ${file.status}: ${file.body}`)
        const got = file.body.split('\n')
        const lost = typed.filter((l) => !got.includes(l))
        check(lost.length === 0, `${lost.length} of ${typed.length} typed lines are not in the submission, e.g. ${JSON.stringify(lost.slice(-3))}`)
      },
    ],
    [
      "the professor's list shows bob's time up and his automatic submission",
      async () => {
        await h.waitText(sp, 'test-watch-left-bob', (t) => t === 'time is up')
        await h.waitText(sp, 'test-watch-submitted-bob', (t) => t.includes('automatically'), 20_000)
      },
      sp,
    ],
  ])
  await bp.context().close()
  await sp.context().close()
  return lockedAfter
}

/** The title Chromium's PDF viewer shows for the document in frame. */
async function pdfTitle(page, frame, timeout) {
  const inside = (f) => {
    for (let p = f.parentFrame(); p; p = p.parentFrame()) if (p === frame) return true
    return false
  }
  const deadline = Date.now() + timeout
  for (;;) {
    const viewer = page.frames().find((f) => inside(f) && f.url().startsWith('chrome-extension://'))
    const t = viewer
      ? await viewer
          .evaluate(() => document.querySelector('pdf-viewer')?.shadowRoot?.querySelector('viewer-toolbar')?.shadowRoot?.querySelector('#title')?.textContent)
          .catch(() => null)
      : null
    if (t) return t.trim()
    if (Date.now() > deadline) throw new Error('no PDF viewer title')
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Opens the actions menu of a tree row (the ⋯ button) and picks an item. */
async function treeAction(h, page, path, name) {
  const row = h.treeItem(page, path)
  await row.hover()
  await row.locator('.more').click()
  await page.locator('[role="menu"] [role="menuitem"]').filter({ hasText: name }).click()
}

/**
 * Files and notes: file names in Markdown stay text, a PDF is titled by its
 * name, Python's name of a course file is a click away and Help says where
 * things are, the trash gives a deleted file back, and an earlier version
 * can be compared before it is restored.
 */
async function filesAndNotes(h) {
  const { group, check, tid, pageJSON } = h
  const sp = await h.newPage()
  const ap = await h.newPage()
  await ap.context().grantPermissions(['clipboard-read', 'clipboard-write'])
  const notes = 'Lecture Notes/week1.pdf'
  const slug = 'files-e2e'
  await group('files and notes', ap, [
    [
      'file names in a description stay text; a written-out address is a link',
      async () => {
        await h.loginOK(sp, 'prof')
        const r = await pageJSON(sp, '/api/course/assignments', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({
            slug,
            title: 'Files E2E',
            description_md: 'Save your answer as main.py next to data.csv. Help: https://docs.python.org/3/tutorial/',
            publish_at: new Date(Date.now() - 60_000).toISOString(),
            due_at: new Date(Date.now() + 86_400_000).toISOString(),
            late_policy: 'none',
            late_cutoff_at: null,
          }),
        })
        check(r.status === 201, `creating the assignment answered ${r.status}: ${r.text}`)
        await h.loginOK(ap, 'alice')
        await tid(ap, 'nav-course').click()
        await tid(ap, `course-item-${slug}`).click()
        const links = await tid(ap, 'assignment-description').locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')))
        check(JSON.stringify(links) === '["https://docs.python.org/3/tutorial/"]', `the description links ${JSON.stringify(links)}`)
      },
    ],
    [
      'the PDF viewer is titled with the file name',
      async () => {
        await tid(ap, 'nav-ide').click()
        await h.treeItem(ap, 'Lecture Notes').click()
        await h.treeItem(ap, notes).click()
        const frame = ap.locator('[data-testid="preview"][data-kind="pdf"] iframe')
        await frame.waitFor()
        const title = await pdfTitle(ap, await (await frame.elementHandle()).contentFrame(), h.uiTimeout)
        check(title === 'week1.pdf', `the PDF viewer is titled "${title}"`)
      },
    ],
    [
      'Copy path for Python gives the /course name; Help says where things are',
      async () => {
        await treeAction(h, ap, notes, 'Copy path for Python')
        await ap.locator('.python-path').filter({ hasText: '/course/Lecture Notes/week1.pdf' }).waitFor()
        const clip = await ap.evaluate(() => navigator.clipboard.readText())
        check(clip === '/course/Lecture Notes/week1.pdf', `the clipboard holds "${clip}"`)
        await tid(ap, 'help-button').click()
        const places = (await tid(ap, 'help-places').innerText()).replace(/\s+/g, ' ')
        check(places.includes('Local/alice /home/student') && places.includes('Lecture Notes /course/Lecture Notes'), `Help says: ${places}`)
        await ap.keyboard.press('Escape')
      },
    ],
    [
      'a deleted file is in the trash and comes back',
      async () => {
        const gone = 'Local/alice/bye.py'
        const w = await h.pageFetch(ap, '/api/files/content?path=' + encodeURIComponent(gone), { method: 'PUT', body: 'print("bye")\n' })
        check(w.status === 200 || w.status === 201, `saving ${gone} answered ${w.status}`)
        await tid(ap, 'refresh').click()
        await h.treeItem(ap, gone).waitFor()
        await treeAction(h, ap, gone, 'Delete')
        await ap.locator('.el-message-box').getByRole('button', { name: 'Delete' }).click()
        await h.treeItem(ap, gone).waitFor({ state: 'detached' })
        await tid(ap, 'open-trash').click()
        const row = tid(ap, 'trash-dialog').locator('.el-table__row').filter({ hasText: gone })
        await row.waitFor()
        await row.locator('[data-testid="trash-restore"]').click()
        await h.treeItem(ap, gone).waitFor()
        await tid(ap, 'trash-dialog').getByRole('button', { name: 'Close', exact: true }).click()
      },
    ],
    [
      'an earlier version can be compared before it is restored',
      async () => {
        const p = 'Local/alice/hist.py'
        for (const body of ['a = 1\nb = 2\n', 'a = 1\nb = 3\nc = 4\n']) {
          const w = await h.pageFetch(ap, '/api/files/content?path=' + encodeURIComponent(p), { method: 'PUT', body })
          check(w.status === 200 || w.status === 201, `saving ${p} answered ${w.status}`)
        }
        await tid(ap, 'refresh').click()
        await h.treeItem(ap, p).click()
        await tid(ap, 'history').click()
        const dialog = tid(ap, 'revisions-dialog')
        await dialog.locator('.el-table__row').nth(1).waitFor()
        await dialog.locator('.el-table__row').nth(1).locator('[data-testid="compare-revision"]').click()
        const diff = tid(ap, 'revision-diff')
        await diff.waitFor().catch(() => {
          throw new Error('Compare shows nothing to look at before restoring')
        })
        const lines = await diff.locator('[data-op]').evaluateAll((ls) => ls.map((l) => `${l.getAttribute('data-op')}:${l.textContent.slice(2)}`))
        for (const want of ['now:b = 3', 'now:c = 4', 'then:b = 2', 'same:a = 1']) {
          check(lines.includes(want), `the comparison lacks ${want}: ${JSON.stringify(lines)}`)
        }
        await h.axe(ap, 'IDE: a version compared before a restore')
        await tid(ap, 'restore-compared').click()
        await ap.locator('.el-message-box').getByRole('button', { name: 'Restore' }).click()
        await ap.waitForFunction(
          (p) => document.querySelector(`[data-testid="editor"][data-path="${p}"] .cm-content`)?.textContent === 'a = 1b = 2',
          p,
        )
        const r = await h.pageFetch(ap, '/api/files/content?path=' + encodeURIComponent(p))
        check(r.body === 'a = 1\nb = 2\n', `after the restore the file holds ${JSON.stringify(r.body)}`)
      },
    ],
  ])
  await sp.context().close()
  await ap.context().close()
}

/** The rows of the admin's users table, by username: the text of each. */
async function userRow(h, page, name) {
  return page.locator('[data-testid="users-table"] .el-table__row').filter({ has: page.locator(`[data-testid="user-reset-${name}"]`) })
}

/**
 * The admin's screens: when each user last signed in, a role changed after
 * a confirmation, a disable that asks first and tells the student why, a
 * deletion that says what happens to the files, and the audit log filtered.
 */
async function adminScreens(h) {
  const { group, check, tid, pageJSON } = h
  const ad = await h.newPage()
  const bp = await h.newPage()
  const box = ad.locator('.el-message-box')
  const confirmBox = async (button, says) => {
    await box.waitFor({ timeout: 5_000 }).catch(() => {
      throw new Error('it was done without asking first')
    })
    const text = (await box.innerText()).replace(/\s+/g, ' ')
    for (const s of says) check(text.includes(s), `the question does not say "${s}": ${text}`)
    await box.getByRole('button', { name: button, exact: true }).click()
    await box.waitFor({ state: 'hidden' })
  }
  const usersNow = async () => {
    const r = await pageJSON(ad, '/api/admin/users')
    return Object.fromEntries((r.json?.users ?? []).map((u) => [u.username, u]))
  }
  await group('the admin’s screens', ad, [
    [
      'users show when they last signed in; a role changes after a confirmation',
      async () => {
        await h.loginOK(ad, 'dean')
        const add = await pageJSON(ad, '/api/admin/users', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ username: 'dave', display_name: 'Dave Typo', role: 'student', email: '' }),
        })
        check(add.status === 200, `adding dave answered ${add.status}: ${add.text}`)
        await ad.goto('/admin/users')
        await tid(ad, 'users-table').waitFor()
        await h.waitText(ad, 'user-last-login-dave', (t) => t === 'never')
        await h.waitText(ad, 'user-last-login-alice', (t) => t !== 'never' && /\d/.test(t))
        await h.axe(ad, 'admin: users with roles and last sign-in')
        await tid(ad, 'user-role-dave').click()
        await ad.locator('.el-select-dropdown__item:visible').filter({ hasText: /^professor$/ }).click()
        await confirmBox('Make professor', ['signed out'])
        const deadline = Date.now() + h.uiTimeout
        while ((await usersNow()).dave?.role !== 'professor') {
          check(Date.now() < deadline, 'dave is not a professor on the server')
          await new Promise((r) => setTimeout(r, 200))
        }
      },
    ],
    [
      'disabling asks first, and the student is told why they are signed out',
      async () => {
        await h.loginOK(bp, 'bob')
        await tid(ad, 'user-toggle-bob').click()
        await confirmBox('Disable', ['signed out', 'files, submissions and grades are kept'])
        await tid(bp, 'login-form').waitFor()
        await bp.locator('.session-ended').filter({ hasText: 'An administrator disabled your account' }).waitFor()
        // Bob comes back for the rest of the run.
        await tid(ad, 'user-toggle-bob').click()
        await h.waitText(ad, 'user-toggle-bob', (t) => t === 'Disable')
      },
    ],
    [
      'deleting says what happens to the files, and keeps anyone with grades',
      async () => {
        await tid(ad, 'user-delete-dave').click()
        await confirmBox('Delete the account', ['Local/dave', 'stay where they are'])
        await (await userRow(h, ad, 'dave')).waitFor({ state: 'detached' })
        check(!(await usersNow()).dave, 'dave is still on the server')
        await tid(ad, 'user-delete-alice').click()
        await confirmBox('Delete the account', ['disable it instead'])
        await ad.locator('.el-message--error').filter({ hasText: 'disable the account instead' }).waitFor()
        check((await usersNow()).alice, 'alice was deleted despite her grades')
      },
    ],
    [
      'the audit log filters by who, what and target',
      async () => {
        await ad.goto('/admin/audit')
        await tid(ad, 'audit-table').waitFor()
        await tid(ad, 'audit-actor').click()
        await ad.locator('.el-select-dropdown__item:visible').filter({ hasText: /^dean$/ }).click()
        await tid(ad, 'audit-action').click()
        await ad.locator('.el-select-dropdown__item:visible').filter({ hasText: /^Users$/ }).click()
        await tid(ad, 'audit-search').click()
        const rows = async () => (await tid(ad, 'audit-table').locator('.el-table__row').allInnerTexts()).map((t) => t.replace(/\s+/g, ' '))
        const deadline = Date.now() + h.uiTimeout
        let seen = []
        for (;;) {
          seen = await rows()
          if (['user.role', 'user.disable', 'user.delete'].every((a) => seen.some((r) => r.includes(a)))) break
          check(Date.now() < deadline, `the filtered log shows: ${JSON.stringify(seen)}`)
          await new Promise((r) => setTimeout(r, 200))
        }
        check(seen.every((r) => r.includes('dean') && r.includes('user.')), `rows of others: ${JSON.stringify(seen)}`)
        await h.field(ad, 'audit-target').fill('bob')
        await tid(ad, 'audit-search').click()
        await ad.waitForFunction(() =>
          [...document.querySelectorAll('[data-testid="audit-table"] .el-table__row')].every((r) => r.textContent.includes('bob')),
        )
        check((await rows()).length >= 2, `the bob rows: ${JSON.stringify(await rows())}`)
        await h.axe(ad, 'admin: the audit log')
      },
    ],
  ])
  await bp.context().close()
  await ad.context().close()
}

