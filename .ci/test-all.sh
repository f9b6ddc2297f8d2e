#!/usr/bin/env bash
# `make test`: every suite this machine can run, then one closing line
# "total: N passed, N failed, N skipped". A suite that cannot run here says
# why in one line and counts as skipped; any failure makes the exit non-zero.
set -uo pipefail
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0
declare -a failed_suites=() skipped_suites=()

count() { # suite passed failed skipped
  pass=$((pass + $2)); fail=$((fail + $3)); skip=$((skip + $4))
  if [ "$3" -gt 0 ]; then failed_suites+=("$1"); fi
}

section() { printf '\n==== %s ====\n' "$1"; }

# The failures of every suite, repeated at the very end so that the tail of
# a long log (all a CI summary may keep) says what failed.
failures=$(mktemp)

section "lint (gofmt, go vet, golangci-lint)"
if make --no-print-directory lint; then count lint 1 0 0; else count lint 0 1 0; echo "lint: make lint (its findings are at the top of the log)" >>"$failures"; fi

section "Go tests (race detector, real PostgreSQL and Docker)"
out=$(mktemp)
bash .ci/gotest.sh 2>&1 | tee "$out"
line=$(grep -E '^go: [0-9]+ passed' "$out" | tail -1)
read -r p f s <<<"$(echo "$line" | sed -E 's/go: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1 \2 \3/')"
count go "${p:-0}" "${f:-1}" "${s:-0}"
grep -E '^ *--- FAIL' "$out" | sed 's/^ */go: /' >>"$failures" || true

section "attack and reuse suites under gVisor (SANDBOX_RUNTIME=runsc)"
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
  PYIDE_SANDBOX_RUNTIME=runsc go test -race -count=1 -v -run '^(TestAttack|TestReuse)' ./pkg/sandbox/ ./cmd/pyide/ >"$out" 2>&1; st=$?
  grep -E '^(--- |ok|FAIL)' "$out" | grep -v -- '--- PASS' || true
  p=$(grep -cE '^--- PASS' "$out"); f=$(grep -cE '^--- FAIL' "$out")
  [ $st -ne 0 ] && [ "$f" -eq 0 ] && f=1
  count runsc "$p" "$f" 0
  grep -E '^ *--- FAIL' "$out" | sed 's/^ */runsc: /' >>"$failures" || true
  # What the failing tests said (their t.Error lines), when any failed.
  if [ "$f" -gt 0 ]; then grep -E '^ +[a-z_]+_test\.go:[0-9]+: ' "$out" | grep -vE ': (moves|[0-9]+ probe runs)' | tail -n 20 | sed 's/^ */runsc: /' >>"$failures" || true; fi
else
  echo "skipped: the Docker engine has no runsc runtime (bash .ci/runsc-up.sh registers it)"; count runsc 0 0 1; skipped_suites+=("runsc")
fi

section "the newcomer path: a fresh clone under a 0700 folder, make run, a Run"
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: tried as root, as on a fresh server"; count newcomer 0 0 1; skipped_suites+=("newcomer")
elif ! docker info >/dev/null 2>&1; then
  echo "skipped: no Docker engine answers"; count newcomer 0 0 1; skipped_suites+=("newcomer")
else
  PYIDE_NEWCOMER=1 go test -count=1 -v -run '^TestNewcomer$' ./deploy/ >"$out" 2>&1; st=$?
  grep -E '^(--- |ok|FAIL)|newcomer_test.go' "$out" | tail -n 40
  if [ $st -eq 0 ]; then count newcomer 1 0 0; else count newcomer 0 1 0; echo "newcomer: TestNewcomer" >>"$failures"; fi
fi

# A count, not a duration: a duration-bounded run can fail with a bare
# "context deadline exceeded" when a starved worker is mid-input at the
# deadline (a race in Go's fuzz coordinator, golang/go#75804).
section "fuzz: path normalisation (50 000 inputs; longer by hand with -fuzztime)"
if go test -run '^$' -fuzz FuzzParsePath -fuzztime 50000x ./pkg/workspace; then count fuzz 1 0 0; else count fuzz 0 1 0; echo "fuzz: FuzzParsePath" >>"$failures"; fi

section "sandbox runner tests (python3)"
if command -v python3 >/dev/null && [ -f sandbox-image/runner.py ]; then
  python3 -m unittest discover -s sandbox-image -p 'test_*.py' >"$out" 2>&1; st=$?
  tail -n 30 "$out"
  ran=$(grep -oE '^Ran [0-9]+' "$out" | grep -oE '[0-9]+' || echo 0)
  bad=$(grep -oE '(failures|errors)=[0-9]+' "$out" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  sk=$(grep -oE 'skipped=[0-9]+' "$out" | grep -oE '[0-9]+' || echo 0)
  [ $st -ne 0 ] && [ "${bad:-0}" -eq 0 ] && bad=1
  count runner $((ran - ${bad:-0} - ${sk:-0})) "${bad:-0}" "${sk:-0}"
else
  echo "skipped: python3 or sandbox-image/runner.py missing"; count runner 0 0 1; skipped_suites+=("runner")
fi

section "front end (eslint, vue-tsc, vitest)"
if command -v npm >/dev/null && [ -f frontend/package.json ]; then
  if make --no-print-directory test-frontend >"$out" 2>&1; then st=0; else st=1; fi
  sed -i 's/\x1b\[[0-9;]*m//g' "$out" # Vitest colours its summary
  tail -n 40 "$out"
  vp=$(grep -oE 'Tests +[0-9]+ passed' "$out" | grep -oE '[0-9]+' | tail -1)
  vf=$(grep -oE 'Tests +([0-9]+ failed)' "$out" | grep -oE '[0-9]+' | tail -1)
  if [ $st -ne 0 ] && [ -z "$vf" ]; then vf=1; fi
  count frontend "${vp:-0}" "${vf:-0}" 0
else
  echo "skipped: npm not installed (apt-get install nodejs npm)"; count frontend 0 0 1; skipped_suites+=("frontend")
fi

section "end-to-end in a real browser"
if [ ! -f frontend/e2e/run.sh ]; then
  echo "skipped: no end-to-end suite yet"; count e2e 0 0 1; skipped_suites+=("e2e")
elif ! command -v chromium >/dev/null; then
  echo "skipped: chromium is not installed (apt-get install chromium)"; count e2e 0 0 1; skipped_suites+=("e2e")
elif ! docker info >/dev/null 2>&1; then
  echo "skipped: no Docker engine answers"; count e2e 0 0 1; skipped_suites+=("e2e")
else
  bash frontend/e2e/run.sh 2>&1 | tee "$out"; st=${PIPESTATUS[0]}
  line=$(grep -E '^e2e: [0-9]+ passed' "$out" | tail -1)
  read -r p f s <<<"$(echo "$line" | sed -E 's/e2e: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')"
  [ $st -ne 0 ] && [ "${f:-0}" -eq 0 ] && f=1
  count e2e "${p:-0}" "${f:-1}" "${s:-0}"
  grep -A3 -E '^FAIL  ' "$out" | sed 's/^/e2e: /' >>"$failures" || true
fi
rm -f "$out"

if [ -s "$failures" ]; then
  echo; echo "what failed:"; cat "$failures"
fi
rm -f "$failures"

echo
[ ${#skipped_suites[@]} -gt 0 ] && echo "suites skipped: ${skipped_suites[*]}"
[ ${#failed_suites[@]} -gt 0 ] && echo "suites failed: ${failed_suites[*]}"
echo "total: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
