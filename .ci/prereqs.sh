#!/usr/bin/env bash
# `make run` prerequisites: names exactly what is missing and how to get it.
set -uo pipefail
missing=0
need() { # command, what it is for, how to install
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing: $1 — $2. Install: $3"; missing=1
  fi
}
need go "builds the server" "https://go.dev/doc/install (Go 1.26 or newer)"
need npm "builds the browser IDE" "apt-get install nodejs npm (Node 20 or newer)"
if [ -z "${DATABASE_URL:-}" ]; then
  if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
     && ! ls /opt/homebrew/opt/postgresql*/bin/pg_ctl >/dev/null 2>&1 && ! ls /usr/local/opt/postgresql*/bin/pg_ctl >/dev/null 2>&1; then
    echo "missing: PostgreSQL server binaries — the embedded database. Install: apt-get install postgresql (or brew install postgresql@16), or set DATABASE_URL"
    missing=1
  fi
fi
if ! command -v docker >/dev/null 2>&1; then
  echo "note: no docker command — the IDE will open and edit files, but Run needs a Docker engine (apt-get install docker.io)"
elif ! docker info >/dev/null 2>&1; then
  echo "note: Docker is installed but no engine answers (start it: systemctl start docker) — Run will say execution is unavailable"
fi
if command -v go >/dev/null 2>&1; then
  have=$(go env GOVERSION | sed 's/^go//')
  if [ "$(printf '%s\n1.26\n' "$have" | sort -V | head -1)" != "1.26" ]; then
    echo "missing: Go 1.26 or newer (found $have)"; missing=1
  fi
fi
exit $missing
