// Some npm packages ship Go sources (flatted does). A go.mod inside
// node_modules makes it a separate module, so `go build ./...` and
// `go vet ./...` at the repository root never compile them.
import { writeFileSync } from 'node:fs'

writeFileSync(
  new URL('../node_modules/go.mod', import.meta.url),
  'module pyide.invalid/frontend-node-modules // fence: keeps ./... out of npm packages\n',
)
