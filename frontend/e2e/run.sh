#!/usr/bin/env bash
# The end-to-end flow in a real browser (`make e2e`, and `make test` when
# Chromium and Docker are present): a fresh data folder, the real
# `bin/pyide serve` with its embedded database and real Docker sandboxes, four
# users made with the CLI (one with a handed-out password), then e2e.mjs drives Debian's Chromium through
# playwright-core. Screenshots go to artifacts/e2e/. The server is always
# stopped, and afterwards no sandbox container it made may be left behind.
# Last line: "e2e: N passed, N failed, N skipped"; exit status non-zero on any failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

bin="${PYIDE_BIN:-$root/bin/pyide}"
artifacts="$root/artifacts/e2e"
chromium="${CHROMIUM:-/usr/bin/chromium}"

summary() { echo "e2e: $1 passed, $2 failed, $3 skipped"; }
# A prerequisite missing is one failed check: make e2e was asked for explicitly.
die() { echo "e2e: $*" >&2; summary 0 1 0; exit 1; }

# `make test` comes here without `make build`: build what is missing or
# stale (cheap when it is current), so the test never runs an old binary.
if [ -z "${PYIDE_BIN:-}" ]; then
  if [ ! -f frontend/dist/index.html ]; then
    echo "e2e: building the front end (frontend/dist has no app)"
    { [ -d frontend/node_modules ] || (cd frontend && npm ci --no-audit --no-fund --loglevel=error); } &&
      (cd frontend && npm run build >/dev/null) || die "the front end did not build"
  fi
  command -v go >/dev/null || [ -x "$bin" ] || die "no $bin and no Go to build it"
  if command -v go >/dev/null; then
    CGO_ENABLED=0 go build -trimpath -o "$bin" ./cmd/pyide || die "the pyide binary did not build"
  fi
fi
[ -x "$bin" ] || die "no $bin: run 'make build' first (make e2e does)"
[ -x "$chromium" ] || die "no Chromium at $chromium (apt-get install chromium)"
command -v node >/dev/null || die "node is not installed (apt-get install nodejs npm)"
docker info >/dev/null 2>&1 || die "no Docker engine answers (bash .ci/docker-up.sh)"
image="${SANDBOX_IMAGE:-pyide-sandbox:latest}"
docker image inspect "$image" >/dev/null 2>&1 || die "no sandbox image $image (bash sandbox-image/build.sh)"
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in frontend/e2e failed"
fi

# A fresh data folder every run. The embedded PostgreSQL runs as the
# unprivileged postgres user when we are root, so every parent must be
# traversable by it.
tmpbase="${TMPDIR:-/tmp}"
if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$tmpbase" 2>/dev/null; then
  tmpbase=/tmp
fi
data="$(mktemp -d "$tmpbase/pyide-e2e.XXXXXX")"
chmod 755 "$data"
log="$data.serve.log"
port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"

# A long disconnect grace keeps the professor's REPL alive after the browser
# closes, so shutdown has a live sandbox to clean up.
# Eight programs at once, 96 MB and 5 s of CPU each, 20 MB of files per
# student: ux.mjs fills the server to see a run wait in line, and reads each
# limit in the console's words. Eight, not fewer: the consoles of earlier
# groups stay open (DISCONNECT_GRACE) while the later ones run.
export IDE_DATA_PATH="$data" PORT="127.0.0.1:$port" BCRYPT_COST=10 SANDBOX_IMAGE="$image" DISCONNECT_GRACE=10m \
  MAX_CONCURRENT_EXECUTIONS=8 MEMORY_LIMIT_MB=96 EXECUTION_TIMEOUT=5s QUOTA_MB=20
unset DATABASE_URL

# Our sandboxes are the labelled containers that mount something from our
# own (unique) data folder: tests running beside us make labelled ones too.
ours() {
  local id
  for id in $(docker ps -aq --filter label=pyide.managed=true); do
    docker inspect --format '{{range .Mounts}}{{.Source}}{{"\n"}}{{end}}' "$id" 2>/dev/null | grep -qF "$data/" && echo "$id"
  done
  return 0
}

server=""
stop_server() {
  [ -n "$server" ] || return 0
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server"
    # The server closes sessions, removes its sandboxes and stops its
    # database before it exits; give that time on a loaded machine.
    for _ in $(seq 1 600); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$server" 2>/dev/null; then
      echo "e2e: the server did not stop within 60 s; killing it" >&2
      kill -KILL "$server" 2>/dev/null
    fi
  fi
  wait "$server" 2>/dev/null
  server=""
}
cleanup() {
  stop_server
  rm -rf "$data" "$data.cli.log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$artifacts"
mkdir -p "$artifacts"
echo "e2e: data $data, server $base, log $log"
"$bin" serve >"$log" 2>&1 &
server=$!

ready=""
for _ in $(seq 1 1200); do # up to 120 s: the first start initialises a database cluster
  kill -0 "$server" 2>/dev/null || break
  if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "e2e: the server did not become ready; its log:" >&2
  tail -n 40 "$log" >&2
  summary 0 1 0
  exit 1
fi

# The CLI attaches to the running server's embedded database.
add_user() { # name role password display
  printf '%s\n' "$3" | "$bin" user add "$1" --role "$2" --display-name "$4" >"$data.cli.log" 2>&1 ||
    { cat "$data.cli.log" >&2; tail -n 20 "$log" >&2; die "could not add user $1"; }
}
add_user alice student 'alice-e2e-pass' 'Alice Student'
add_user bob student 'bob-e2e-pass' 'Bob Student'
add_user prof professor 'prof-e2e-pass' 'Pat Professor'
add_user dean admin 'dean-e2e-pass' 'Dana Dean'
add_user tina ta 'tina-e2e-pass' 'Tina Assistant'
# Carol gets a handed-out password: none piped in, so the CLI generates one
# and marks it must-change, as for a roster import.
carol_pw="$(printf '\n' | "$bin" user add carol --role student --display-name 'Carol Student' 2>"$data.cli.log" | sed -n 's/^password: //p')"
[ -n "$carol_pw" ] || { cat "$data.cli.log" >&2; die "could not add user carol with a generated password"; }

(cd "$here" && E2E_BASE_URL="$base" E2E_ARTIFACTS="$artifacts" CHROMIUM="$chromium" E2E_CAROL_PASSWORD="$carol_pw" node e2e.mjs)
st=$?
result="$(grep -E '^e2e: [0-9]+ passed' "$artifacts/result.txt" 2>/dev/null | tail -1)"
read -r pass fail skip <<<"$(echo "$result" | sed -E 's/e2e: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1 \2 \3/')"
pass=${pass:-0} fail=${fail:-0} skip=${skip:-0}
[ "$st" -ne 0 ] && [ "$fail" -eq 0 ] && fail=1

# Shutdown is part of the contract: the server removes its own sandboxes.
# Some must be live first, or the check below would prove nothing.
live="$(ours)"
stop_server
leftover=""
for _ in $(seq 1 100); do # the engine may report a removal a moment late
  leftover="$(ours)"
  [ -z "$leftover" ] && break
  sleep 0.1
done
if [ -z "$live" ]; then
  echo "FAIL  no sandbox left after shutdown: none of ours was live before it (the REPL should outlive the closed browser)" >&2
  fail=$((fail + 1))
elif [ -n "$leftover" ]; then
  echo "FAIL  no sandbox left after shutdown: $(echo "$leftover" | tr '\n' ' ')" >&2
  docker ps -a --filter label=pyide.managed=true --format '{{.ID}} {{.Names}} {{.Status}} {{.Labels}}' >&2
  # Counted and shown; now removed, so failed runs do not pile up.
  echo "$leftover" | xargs docker rm -f >/dev/null 2>&1
  fail=$((fail + 1))
else
  echo "ok    no sandbox left after shutdown ($(echo "$live" | wc -l) live before it)"
  pass=$((pass + 1))
fi
if [ "$fail" -gt 0 ]; then
  echo "e2e: server log (last 40 lines):" >&2
  tail -n 40 "$log" >&2
  cp "$log" "$artifacts/serve.log" 2>/dev/null
fi
rm -f "$log"
summary "$pass" "$fail" "$skip"
[ "$fail" -eq 0 ]
