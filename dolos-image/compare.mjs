// PythonIDE similarity report: reads {files: [{name, content}], pairs: n}
// on stdin, runs Dolos over the files (Python), and prints
// {pairs: [{left, right, similarity, longest_fragment, overlap,
// fragments: [{left_start, left_end, right_start, right_end}]}]}, the n
// most similar pairs first, rows 1-based. Errors: {error: "..."}.
// It runs in a container with no network; it reads nothing but stdin.
import { Dolos } from '@dodona/dolos-lib'
import { File } from '@dodona/dolos-core'

async function readStdin() {
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  return Buffer.concat(chunks).toString('utf8')
}

try {
  const input = JSON.parse(await readStdin())
  const files = (input.files ?? []).map((f) => new File(String(f.name), String(f.content)))
  const want = Math.max(1, Math.min(Number(input.pairs) || 50, 500))
  if (files.length < 2) {
    process.stdout.write(JSON.stringify({ pairs: [] }))
  } else {
    const dolos = new Dolos({ language: 'python' })
    const report = await dolos.analyze(files)
    const pairs = report
      .allPairs()
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, want)
      .map((p) => ({
        left: p.leftFile.path,
        right: p.rightFile.path,
        similarity: p.similarity,
        longest_fragment: p.longest,
        overlap: p.overlap,
        fragments: p.buildFragments().map((f) => ({
          left_start: f.leftSelection.startRow + 1,
          left_end: f.leftSelection.endRow + 1,
          right_start: f.rightSelection.startRow + 1,
          right_end: f.rightSelection.endRow + 1,
        })),
      }))
    process.stdout.write(JSON.stringify({ pairs }))
  }
} catch (e) {
  process.stdout.write(JSON.stringify({ error: String(e?.message ?? e) }))
  process.exitCode = 1
}
