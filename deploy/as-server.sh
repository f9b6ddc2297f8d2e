#!/usr/bin/env bash
# Runs the pyide binary as the server: `make run`'s last step (serve) and
# `make cli ARGS=...` (the CLI, which must open the same database as the
# server's user). Started as root, it runs under the dedicated system user
# "pyide" (made here when missing), never as root and never as the
# sandboxes' uid, with only the three capabilities the server needs to
# manage the files students' programs write: CAP_CHOWN (to give new files
# to the sandbox user), CAP_DAC_OVERRIDE and CAP_FOWNER (to read, move and
# delete what the sandbox user made). They also let it reach a data folder
# under a 0700 home without changing that home. Started as another user,
# it runs as that user.
#
# Usage: as-server.sh BINARY SUBCOMMAND [ARGS]; IDE_DATA_PATH names the
# data folder.
set -euo pipefail
bin="$1"
shift
data="${IDE_DATA_PATH:?IDE_DATA_PATH must be set}"
if [ "$(id -u)" -ne 0 ]; then
  exec "$bin" "$@"
fi
user=pyide
if ! id -u "$user" >/dev/null 2>&1; then
  echo "pyide: creating the system user $user, which runs the server (the sandboxes run as another uid)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi
if [ "$(id -u "$user")" = "${SANDBOX_UID:-1000}" ]; then
  echo "pyide: the user $user has uid ${SANDBOX_UID:-1000}, the sandboxes' own; give it another uid" >&2
  exit 1
fi
getent group docker >/dev/null && usermod -aG docker "$user"
mkdir -p "$data"
chown "$user": "$data"
# What an earlier run as root made is the server user's now.
if [ -e "$data/.server" ]; then
  chown -R "$user": "$data/.server"
  if [ -L "$data/.server/pgdata" ]; then
    chown -R "$user": "$(readlink "$data/.server/pgdata")"
  fi
fi
caps=+chown,+dac_override,+fowner
# No new privileges, and no way back to others: the bounding set is these
# three.
exec setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
  --bounding-set="-all,$caps" --inh-caps="$caps" --ambient-caps="$caps" -- "$bin" "$@"
