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
  const { group, check, tid, pageJSON } = h

  // Lost work: a grader who opens a student by its link (or reloads) sees
  // the saved grade, and a comment alone never clears the score.
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

  await testEnds(h)
}

/**
 * A test's last minute, as Bob lives it: a one-minute test, the countdown
 * and the 1-minute warning in the IDE, typing until the editor locks, and
 * every line he typed in the automatic submission.
 */
async function testEnds(h) {
  const { group, check, tid, pageJSON } = h
  const quiz = { slug: 'quiz-e2e', title: 'Quiz E2E: one minute', file: 'answer.py' }
  const folder = `Submissions/${quiz.slug}/bob`
  const path = `${folder}/${quiz.file}`
  const bp = await h.newPage()
  const sp = await h.newPage() // the professor's view of the test
  const editable = () =>
    bp.evaluate((p) => document.querySelector(`[data-testid="editor"][data-path="${p}"] .cm-content`)?.getAttribute('contenteditable') === 'true', path)
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
