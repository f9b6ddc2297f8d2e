#!/usr/bin/env bash
# Builds the sandbox base image (default pyide-base:bookworm-pytest) from Debian
# packages with mmdebstrap and `docker import`s it, for machines that cannot
# reach a container registry. Packages come from the host's own apt sources:
# this script never names a mirror, it hands the host's source files to
# mmdebstrap as they are.
#
# Usage: build-base.sh [--force] [--with-teaching]
#   --force          rebuild even if the image already exists
#   --with-teaching  also install python3-numpy and python3-matplotlib
#                    (tag gets a -teaching suffix unless BASE_IMAGE is set)
# Env: BASE_IMAGE (image name:tag), BASE_SUITE (default bookworm),
#      BASE_PACKAGES (comma-separated; default python3,python3-pytest; the
#      similarity report's image, dolos-image/build.sh, asks for Node).
set -euo pipefail

force=false
teaching=false
for arg in "$@"; do
  case "$arg" in
    --force) force=true ;;
    --with-teaching) teaching=true ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "build-base.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

suite="${BASE_SUITE:-bookworm}"
# The tag names what is inside, so a machine with an older base (before
# pytest) builds the new one instead of reusing it.
default_image="pyide-base:${suite}-pytest"
$teaching && default_image="pyide-base:${suite}-pytest-teaching"
image="${BASE_IMAGE:-$default_image}"

if ! $force && docker image inspect "$image" >/dev/null 2>&1; then
  echo "build-base.sh: $image already exists (use --force to rebuild)"
  exit 0
fi

command -v mmdebstrap >/dev/null || { echo "build-base.sh: mmdebstrap is not installed (apt-get install mmdebstrap)" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
  echo "build-base.sh: run as root (mmdebstrap's root mode keeps file ownership right)" >&2
  exit 1
fi

# The host's apt sources, passed as files: mmdebstrap pastes an existing file
# into the chroot's sources (deb822 .sources files included).
sources=()
[ -s /etc/apt/sources.list ] && grep -qE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list && sources+=(/etc/apt/sources.list)
for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && sources+=("$f")
done
if [ ${#sources[@]} -eq 0 ]; then
  echo "build-base.sh: no apt sources found on this host (/etc/apt/sources.list, /etc/apt/sources.list.d/)" >&2
  exit 1
fi

# The host's Acquire:: settings (e.g. a snapshot mirror needs
# Check-Valid-Until=false, a site may need a proxy) apply to the download too.
aptopts=()
while IFS= read -r line; do
  aptopts+=(--aptopt="$line")
done < <(cat /etc/apt/apt.conf /etc/apt/apt.conf.d/* 2>/dev/null | grep -E '^[[:space:]]*Acquire::' || true)

# python3-pytest: the grader runs professors' pytest and unittest files.
packages="${BASE_PACKAGES:-python3,python3-pytest}"
hooks=()
if $teaching; then
  packages="$packages,python3-numpy,python3-matplotlib"
  hooks+=(--customize-hook="$(cd "$(dirname "$0")" && pwd)/purge-build-tools.sh")
fi

echo "build-base.sh: building $image from Debian $suite ($packages) with the host's apt sources"
start=$(date +%s)
# essential + python3: no apt, no compilers, no shell tools beyond the
# essential set. Docs, man pages and locales are left out to keep it small.
# The customize hook removes the apt configuration so the host's mirror
# settings never end up inside the image.
# The merged-usr hook sets up merged /usr itself and installs usr-is-merged,
# so apt does not pull in the usrmerge package and, with it, all of perl.
mmdebstrap \
  --variant=essential \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  "${aptopts[@]}" \
  "${hooks[@]}" \
  --customize-hook='rm -rf "$1"/etc/apt/sources.list "$1"/etc/apt/sources.list.d/* "$1"/etc/apt/apt.conf.d/99mmdebstrap "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  --quiet \
  "$suite" - "${sources[@]}" \
  | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      --message "pyide sandbox base: Debian $suite + $packages" \
      - "$image" >/dev/null
echo "build-base.sh: built $image in $(( $(date +%s) - start )) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
