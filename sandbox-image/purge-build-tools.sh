#!/bin/sh
# mmdebstrap customize hook for build-base.sh --with-teaching ($1: the
# chroot). Debian's matplotlib depends, through fonttools and scipy, on
# pythran and with it gcc, g++, binutils and boost headers. None is needed
# at run time and a sandbox ships no compiler, so they go; the image has no
# apt to mind the broken dependencies.
set -eu
chroot "$1" dpkg-query -W -f '${Package}\n' \
  | grep -E '^(gcc|g\+\+|cpp)(-[0-9]+)?$|^binutils|-dev$|^lib(asan|tsan|lsan|ubsan|hwasan)[0-9]+$|^libcc1-0$|^python3-pythran$' \
  | xargs -r chroot "$1" dpkg --purge --force-depends
