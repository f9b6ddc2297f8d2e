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
}
