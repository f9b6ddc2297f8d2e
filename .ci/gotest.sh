#!/usr/bin/env bash
# Runs `go test` over every package and ends with one summary line:
# "go: N passed, N failed, N skipped", listing every skip with its reason.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -race -count=1 -v -timeout 25m "$@" ./... >"$log" 2>&1
status=$?
# Failures and package results, in full.
grep -E '^(FAIL|ok|---|panic:|\s+\S+_test\.go:[0-9]+:)' "$log" | grep -vE '^\s*--- PASS' | grep -vE '^=== ' || true
if [ $status -ne 0 ]; then
  echo "---- output of failed tests ----"
  awk '/^=== RUN/{buf=""} {buf=buf"\n"$0} /^\s*--- FAIL/{print buf}' "$log" | tail -n 400
fi
passed=$(grep -cE '^\s*--- PASS' "$log")
failed=$(grep -cE '^\s*--- FAIL' "$log")
skipped=$(grep -cE '^\s*--- SKIP' "$log")
if [ "$skipped" -gt 0 ]; then
  echo "skipped tests and why:"
  # go test -v prints a skip's reason (file:line: text) near its "--- SKIP".
  grep -B3 -A1 -E '^\s*--- SKIP' "$log" | grep -E '_test\.go:[0-9]+: ' | sed 's/^\s*/  /' | sort | uniq -c
fi
if [ $status -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # a build error or a panic outside a test
  grep -E 'build failed|cannot|undefined|panic' "$log" | head -20
fi
echo "go: $passed passed, $failed failed, $skipped skipped"
exit $status
