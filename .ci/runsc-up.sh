#!/usr/bin/env bash
# Makes gVisor's runsc available to the Docker engine as the runtime
# "runsc": installs Debian's package when missing, registers it in
# /etc/docker/daemon.json (keeping what else is there) with networking off
# (runsc refuses a container with networking in the root network namespace
# otherwise), and reloads dockerd. Idempotent. Exits non-zero if the engine
# does not list the runtime afterwards.
set -euo pipefail
if ! command -v runsc >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null
fi
cfg=/etc/docker/daemon.json
mkdir -p /etc/docker
python3 - "$cfg" "$(command -v runsc)" <<'PY'
import json, os, sys
path, runsc = sys.argv[1], sys.argv[2]
cfg = {}
if os.path.exists(path) and os.path.getsize(path) > 0:
    with open(path) as f:
        cfg = json.load(f)
want = {"path": runsc, "runtimeArgs": ["--network=none"]}
if cfg.get("runtimes", {}).get("runsc") != want:
    cfg.setdefault("runtimes", {})["runsc"] = want
    with open(path + ".tmp", "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
PY
if ! docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
  pkill -HUP -x dockerd
  for _ in $(seq 1 30); do
    docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && break
    sleep 1
  done
fi
docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' || { echo "dockerd does not list the runsc runtime" >&2; exit 1; }
