#!/usr/bin/env bash
# Builds the similarity report's image (default pyide-dolos:latest; the
# server's DOLOS_IMAGE). No container registry is needed: the base is built
# from Debian packages with the host's apt sources (sandbox-image/build-base.sh),
# and Dolos comes from the npm registry while the image is built.
#
# Env: DOLOS_IMAGE (the image to build), DOLOS_BASE (force a base image).
set -euo pipefail
cd "$(dirname "$0")"
image="${DOLOS_IMAGE:-pyide-dolos:latest}"
base="${DOLOS_BASE:-pyide-dolos-base:bookworm}"
docker info >/dev/null 2>&1 || { echo "dolos-image/build.sh: no Docker engine answers" >&2; exit 1; }
start=$(date +%s)
if ! docker image inspect "$base" >/dev/null 2>&1; then
  BASE_IMAGE="$base" BASE_PACKAGES="nodejs,npm,node-gyp,g++,make,python3,libnode-dev,ca-certificates" \
    bash ../sandbox-image/build-base.sh
fi
# The host's certificate authorities for the npm registry (a site behind a
# TLS-inspecting proxy has its own), used only in the build stage.
ca="${NODE_EXTRA_CA_CERTS:-$(npm config get cafile 2>/dev/null || true)}"
trap 'rm -f build-ca.crt' EXIT
if [ -n "$ca" ] && [ "$ca" != null ] && [ -r "$ca" ]; then cp "$ca" build-ca.crt; else : >build-ca.crt; fi
docker build -q --build-arg BASE="$base" -t "$image" . >/dev/null
echo "dolos-image/build.sh: built $image from $base in $(( $(date +%s) - start )) s"
