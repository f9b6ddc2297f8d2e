#!/usr/bin/env bash
# `make run`'s first step: gets this machine ready to run PythonIDE.
#
# On Debian or Ubuntu, as root or as a user with sudo, it installs with apt
# what is missing (the Docker engine, the PostgreSQL server binaries, Node
# and npm, mmdebstrap for building the sandbox image without a registry),
# one line each saying what and why, and starts the Docker engine when it
# is installed but not answering (systemd when it runs, else a background
# dockerd whose log goes to DATA/.server/dockerd.log). A machine that has
# everything installs nothing. Without root or sudo it names the one
# command to run and stops. Go cannot come from apt (Debian's is too old):
# it says where to get it.
#
# Env: IDE_DATA_PATH (default ./data), DATABASE_URL (then no PostgreSQL
# server is needed).
set -euo pipefail

data="${IDE_DATA_PATH:-$PWD/data}"
min_node="20.19"
min_go="1.26"

say() { printf 'setup: %s\n' "$*"; }
older() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" != "$2" ]; } # is $1 older than $2?

# Root, or sudo (asking for a password only on a terminal).
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    sudo=(sudo)
  else
    sudo=(none)
  fi
fi
as_root() {
  if [ "${sudo[0]:-}" = none ]; then
    say "installing and starting services needs root, and sudo is not available here."
    say "run this instead:  su -c 'make run'   (or, as root, from $PWD:  make run)"
    exit 1
  fi
  "${sudo[@]}" "$@"
}

# Go: built from source by `make build`; apt's is too old.
if ! command -v go >/dev/null 2>&1; then
  say "Go $min_go or newer is needed to build the server and is not installed; apt's Go is too old."
  say "get it from https://go.dev/dl (unpack into /usr/local, add /usr/local/go/bin to PATH), then: make run"
  exit 1
fi
have_go=$(go env GOVERSION | sed 's/^go//')
if older "$have_go" "$min_go"; then
  say "Go $have_go is installed; Go $min_go or newer is needed (https://go.dev/dl), then: make run"
  exit 1
fi

# What apt must install, and why.
pkgs=() why=()
want() { pkgs+=("$1"); why+=("$1: $2"); }

engine_ok() { docker info >/dev/null 2>&1; }
if ! engine_ok && ! command -v dockerd >/dev/null 2>&1; then
  want docker.io "the Docker engine, which runs every student's program in its own sandbox"
fi
if [ -z "${DATABASE_URL:-}" ] && ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  want postgresql "the PostgreSQL server binaries: the IDE runs its own private database (or set DATABASE_URL)"
fi
node_ok() { command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 && ! older "$(node -v | sed 's/^v//')" "$min_node"; }
if ! node_ok; then
  if command -v apt-cache >/dev/null 2>&1; then
    cand=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *//p' | sed 's/^[0-9]*://; s/[-+~].*//')
    if [ -n "$cand" ] && [ "$cand" != "(none)" ] && ! older "$cand" "$min_node"; then
      want nodejs "Node.js, to build the browser IDE"
      command -v npm >/dev/null 2>&1 || want npm "npm, to fetch the browser IDE's libraries"
    else
      say "Node.js $min_node or newer is needed to build the browser IDE; this system's apt offers ${cand:-none}."
      say "install Node 20.19+ (https://nodejs.org, or your distribution's backports), then: make run"
      exit 1
    fi
  fi
fi
# The sandbox image is built from Debian packages when no registry answers.
if ! command -v mmdebstrap >/dev/null 2>&1 && ! { engine_ok && docker image inspect pyide-sandbox:latest >/dev/null 2>&1; }; then
  want mmdebstrap "builds the sandbox image's base from this machine's own Debian packages (no registry needed)"
fi

if [ ${#pkgs[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "missing, and this is not a Debian or Ubuntu machine, so install them yourself:"
    for w in "${why[@]}"; do say "  $w"; done
    exit 1
  fi
  for w in "${why[@]}"; do say "installing $w"; done
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

# The Docker engine: installed, but it must answer.
if ! engine_ok && command -v dockerd >/dev/null 2>&1; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    say "starting the Docker engine (systemctl start docker)"
    as_root systemctl start docker
  else
    mkdir -p "$data/.server"
    log="$data/.server/dockerd.log"
    say "starting the Docker engine in the background (no systemd here); its log: $log"
    # In a session of its own: it is the machine's engine, not part of
    # make run, so Ctrl-C (or a stop) of make run leaves it running and the
    # server can still remove its sandboxes as it stops.
    as_root setsid sh -c "nohup dockerd >>'$log' 2>&1 &" </dev/null
  fi
  for _ in $(seq 1 60); do
    engine_ok && break
    sleep 1
  done
  if ! engine_ok && [ "$(id -u)" -ne 0 ] && "${sudo[@]}" docker info >/dev/null 2>&1; then
    say "the Docker engine runs, but this account may not use it: add it to the docker group (sudo usermod -aG docker $USER, then log in again) or run: sudo make run"
    exit 1
  fi
  engine_ok || { say "the Docker engine did not start within 60 s; see its log (journalctl -u docker, or $data/.server/dockerd.log)"; exit 1; }
fi
exit 0
