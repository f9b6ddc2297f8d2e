// The live classroom in three browsers at once (run from e2e.mjs with its
// helpers): a student asks for help, a teaching assistant takes the request,
// watches her console and types with her consent until she takes the
// keyboard back; a professor broadcasts his REPL and a student follows it
// and tries the file herself.

export async function liveFlow(h) {
  const { newPage, group, check, tid, treeItem, login, waitTerminal, pageFetch, typeInConsole, containerTimeout, uiTimeout, waitText } = h
  const pass = { carol: 'carol-own-pass', tina: 'tina-e2e-pass', prof: 'prof-e2e-pass', bob: 'bob-e2e-pass' }

  /** The lines of a watch console (xterm's DOM renderer). */
  const watchLines = (page) =>
    page.evaluate(() =>
      [...document.querySelectorAll('[data-testid="watch-terminal"] .xterm-rows > div')].map((d) => (d.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()),
    )
  async function waitWatch(page, what, pred, timeout = containerTimeout) {
    const deadline = Date.now() + timeout
    let lines = []
    for (;;) {
      lines = await watchLines(page)
      if (pred(lines)) return
      if (Date.now() > deadline) break
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`${what}: not seen within ${timeout / 1000} s; the watch console shows:\n  ${lines.filter((l) => l.trim()).join('\n  ')}`)
  }
  async function enter(page, name) {
    await login(page, name, pass[name])
    await tid(page, 'ide').waitFor()
  }
  async function put(page, path, body) {
    const r = await pageFetch(page, '/api/files/content?path=' + encodeURIComponent(path), { method: 'PUT', body })
    check(r.status === 200 || r.status === 201, `saving ${path} answered ${r.status}: ${r.body}`)
  }
  async function openAndRun(page, dir, path) {
    // The user's own folder opens by itself; another is opened by a click.
    await treeItem(page, dir).waitFor()
    await treeItem(page, path)
      .waitFor({ timeout: 5000 })
      .catch(() => treeItem(page, dir).click())
    await treeItem(page, path).click()
    await page.locator(`[data-testid="editor"][data-path="${path}"]`).waitFor()
    await tid(page, 'run-button').click()
  }

  const sp = await newPage() // the student who asks
  const tp = await newPage() // the teaching assistant
  try {
    await group('live: help queue and a joined console', sp, [
      [
        'carol runs her program and asks for help',
        async () => {
          await enter(sp, 'carol')
          await put(sp, 'Local/carol/loop.py', 'total = 0\nfor i in range(5):\n    total += i\nprint("total is", total)\n')
          await sp.reload()
          await tid(sp, 'ide').waitFor()
          await openAndRun(sp, 'Local/carol', 'Local/carol/loop.py')
          await waitTerminal(sp, 'her output', (l) => l.some((x) => x.trim() === 'total is 10'))
          await waitTerminal(sp, 'the prompt', (l) => l.some((x) => x.startsWith('>>>')))
          await tid(sp, 'ask-help').click()
          const box = sp.locator('.el-message-box')
          await box.locator('input').fill('why is total 10?')
          await box.getByRole('button', { name: 'Ask for help' }).click()
          await tid(sp, 'cancel-help').waitFor()
        },
      ],
      [
        'the teaching assistant sees the queue and takes the request',
        async () => {
          await enter(tp, 'tina')
          await tp.goto('/live')
          const row = tid(tp, 'help-queue').locator('tr', { hasText: 'carol' })
          await row.waitFor()
          const text = await row.textContent()
          check(text.includes('why is total 10?') && text.includes('Local/carol/loop.py'), `the queue row reads "${text}"`)
          await tid(tp, 'take-carol').click()
          await tid(tp, 'live-watch').waitFor()
          await waitWatch(tp, 'the scrollback of her console', (l) => l.some((x) => x.trim() === 'total is 10'))
          // The file is fetched on its own; it may come after the scrollback.
          await waitText(tp, 'watch-file', (t) => t.includes('for i in range(5):')).catch(async () => {
            const file = await tid(tp, 'watch-file').textContent()
            throw new Error(`the file beside the console reads ${JSON.stringify(file)}`)
          })
        },
        tp,
      ],
      [
        'carol sees who is watching; what she types shows live for the helper',
        async () => {
          await tid(sp, 'watchers').filter({ hasText: 'tina' }).waitFor()
          await typeInConsole(sp, 'total * 2')
          await waitWatch(tp, 'her new output', (l) => l.some((x) => x.trim() === '20'))
        },
      ],
      [
        'the helper asks to type, carol lets her, both type',
        async () => {
          const state = tid(tp, 'watch-state')
          check((await state.textContent()).includes('read-only'), 'the helper could type before asking')
          await tid(tp, 'ask-keyboard').click()
          await tid(sp, 'keyboard-request').filter({ hasText: 'tina wants to type' }).waitFor()
          await tid(sp, 'keyboard-accept').click()
          await state.filter({ hasText: 'You may type' }).waitFor()
          await tid(tp, 'watch-terminal').click()
          await tp.keyboard.type('print("hint:", total + 100)')
          await tp.keyboard.press('Enter')
          await waitTerminal(sp, "the helper's line in her console", (l) => l.some((x) => x.trim() === 'hint: 110'))
          await tid(sp, 'keyboard-take-back').waitFor()
        },
        tp,
      ],
      [
        'carol takes the keyboard back; the helper is read-only again',
        async () => {
          await tid(sp, 'keyboard-take-back').click()
          await tid(tp, 'watch-state').filter({ hasText: 'read-only' }).waitFor()
          await tid(sp, 'keyboard-take-back').waitFor({ state: 'detached' })
        },
      ],
      [
        'when her file is gone, the helper is told in words, not shown an empty pane',
        async () => {
          const del = await pageFetch(sp, '/api/files?path=' + encodeURIComponent('Local/carol/loop.py'), { method: 'DELETE' })
          check(del.status === 200, `deleting her file answered ${del.status}: ${del.body}`)
          await waitText(tp, 'watch-file-note', (t) => t.includes('could not be read') && t.includes('Local/carol/loop.py'))
        },
        tp,
      ],
      [
        'ending the request closes the helper\'s view',
        async () => {
          await tid(tp, 'end-help').click()
          await tid(tp, 'live-screen').waitFor()
          await tid(sp, 'watchers').waitFor({ state: 'detached', timeout: uiTimeout })
          await tid(sp, 'ask-help').waitFor({ timeout: uiTimeout })
        },
        tp,
      ],
    ])
  } finally {
    await tp.context().close()
  }

  const pp = await newPage() // the professor
  const fp = await newPage() // a student who follows
  try {
    await group('live: a broadcast followed and tried', pp, [
      [
        'the professor runs a file and broadcasts his console',
        async () => {
          await enter(pp, 'prof')
          await put(pp, 'Local/prof/squares.py', 'def square(n):\n    return n * n\nprint("squares ready")\n')
          await pp.reload()
          await tid(pp, 'ide').waitFor()
          await openAndRun(pp, 'Local/prof', 'Local/prof/squares.py')
          await waitTerminal(pp, 'his output', (l) => l.some((x) => x.trim() === 'squares ready'))
          await waitTerminal(pp, 'the prompt', (l) => l.some((x) => x.startsWith('>>>')))
          await tid(pp, 'broadcast-toggle').click()
          await tid(pp, 'broadcast-toggle').filter({ hasText: 'Stop broadcast' }).waitFor()
        },
      ],
      [
        'bob follows: the console from the scrollback and the file',
        async () => {
          await enter(fp, 'bob')
          await fp.goto('/live')
          await tid(fp, 'follow-prof').click()
          await tid(fp, 'live-watch').waitFor()
          await waitWatch(fp, 'the scrollback', (l) => l.some((x) => x.trim() === 'squares ready'))
          await tid(fp, 'watch-file').filter({ hasText: 'def square(n):' }).waitFor()
        },
        fp,
      ],
      [
        'what the professor types reaches the follower as it happens',
        async () => {
          await typeInConsole(pp, 'square(12)')
          await waitTerminal(pp, '144', (l) => l.some((x) => x.trim() === '144'))
          await waitWatch(fp, '144 on the follower', (l) => l.some((x) => x.trim() === '144'))
          await tid(pp, 'watchers').filter({ hasText: 'bob' }).waitFor()
        },
      ],
      [
        'Try it myself copies the file into his folder and runs it',
        async () => {
          await tid(fp, 'try-it').click()
          await tid(fp, 'ide').waitFor()
          await waitTerminal(fp, 'his own run', (l) => l.some((x) => x.trim() === 'squares ready'))
          await treeItem(fp, 'Local/bob/squares.py').waitFor()
          await typeInConsole(fp, 'square(5)')
          await waitTerminal(fp, '25 in his own sandbox', (l) => l.some((x) => x.trim() === '25'))
        },
        fp,
      ],
      [
        'stopping the broadcast ends the followers\' view',
        async () => {
          await fp.goto('/live')
          await tid(fp, 'follow-prof').click()
          await waitWatch(fp, 'the scrollback again', (l) => l.some((x) => x.trim() === '144'))
          await tid(pp, 'broadcast-toggle').click()
          await tid(pp, 'broadcast-toggle').filter({ hasText: /^\s*Broadcast\s*$/ }).waitFor()
          await tid(fp, 'watch-ended').filter({ hasText: 'broadcast has ended' }).waitFor()
        },
        fp,
      ],
    ])
  } finally {
    await fp.context().close()
    await sp.context().close()
  }
  return pp
}
