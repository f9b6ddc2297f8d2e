#!/usr/bin/env bash
# Builds the student sandbox image (what `make sandbox-image` calls).
#
# Base: python:3.12-slim when it is present locally; otherwise, outside CI,
# one quick pull attempt; otherwise the Debian-built pyide-base:bookworm-pytest
# (build-base.sh, from the host's apt sources, no registry needed).
# Quick when up to date: Docker's build cache does the work.
#
# Env:
#   SANDBOX_IMAGE   image to build (default pyide-sandbox:latest)
#   SANDBOX_BASE    force a base image (skips the choice above)
#   SANDBOX_UID     uid of the user "student" (default 1000)
#   WITH_TEACHING   true adds numpy and matplotlib (default false)
#   CI              when set, never pull
set -euo pipefail
cd "$(dirname "$0")"

image="${SANDBOX_IMAGE:-pyide-sandbox:latest}"
official="python:3.12-slim"
teaching="${WITH_TEACHING:-false}"
uid="${SANDBOX_UID:-1000}"
debian_base="pyide-base:bookworm-pytest"
[ "$teaching" = true ] && debian_base="pyide-base:bookworm-pytest-teaching"

have() { docker image inspect "$1" >/dev/null 2>&1; }

docker info >/dev/null 2>&1 || { echo "build.sh: no Docker engine answers (start one: bash .ci/docker-up.sh)" >&2; exit 1; }

start=$(date +%s)
if [ -n "${SANDBOX_BASE:-}" ]; then
  base="$SANDBOX_BASE"; how="set by SANDBOX_BASE"
elif have "$official"; then
  base="$official"; how="present locally"
elif [ -z "${CI:-}" ] && ! have "$debian_base" && timeout 20 docker pull -q "$official" >/dev/null 2>&1; then
  # Pulled only when nothing usable is here yet, so an offline machine pays
  # the attempt once, not on every build.
  base="$official"; how="pulled"
else
  teaching_flag=()
  [ "$teaching" = true ] && teaching_flag=(--with-teaching)
  bash ./build-base.sh "${teaching_flag[@]}"
  base="$debian_base"; how="built from Debian packages (no registry)"
fi
echo "build.sh: base $base ($how)"

docker build -q \
  --build-arg BASE="$base" \
  --build-arg SANDBOX_UID="$uid" \
  --build-arg WITH_TEACHING="$teaching" \
  --label pyide.base="$base" \
  -t "$image" . >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')
echo "build.sh: built $image from $base (uid $uid, teaching $teaching): $size in $(( $(date +%s) - start )) s"
