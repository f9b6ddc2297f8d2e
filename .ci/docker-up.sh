#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs docker.io when missing and
# starts dockerd in the background when nothing is listening. Idempotent.
set -euo pipefail
if ! command -v dockerd >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if docker info >/dev/null 2>&1; then
  exit 0
fi
nohup dockerd >/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "dockerd did not start within 60 s; its log:" >&2
tail -n 40 /var/log/dockerd.log >&2
exit 1
