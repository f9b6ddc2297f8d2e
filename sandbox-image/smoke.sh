#!/usr/bin/env bash
# Quick check of a built sandbox image, run by CI after build.sh: the user,
# the runner, and --control through a real `docker run -t -i`, all under the
# same hardening the server applies. Exits non-zero on the first failure.
set -euo pipefail

image="${SANDBOX_IMAGE:-pyide-sandbox:latest}"
hardened=(--rm --network none --read-only --tmpfs /tmp:size=16m --cap-drop ALL
  --security-opt no-new-privileges --init --pids-limit 64 --memory 128m --memory-swap 128m)
fail() { echo "smoke.sh: FAIL: $*" >&2; exit 1; }
pass() { echo "smoke.sh: ok: $*"; }

command -v script >/dev/null || fail "script (util-linux) is needed to give docker a TTY"
docker image inspect "$image" >/dev/null 2>&1 || fail "$image is not built (bash sandbox-image/build.sh)"
[ "$(docker image inspect -f '{{index .Config.Labels "pyide.sandbox"}}' "$image")" = 1 ] || fail "label pyide.sandbox=1 missing"
pass "$image exists and is labelled"

facts=$(docker run "${hardened[@]}" "$image" sh -c \
  'id -u; id -g; stat -c "%U %a" /opt/pyide/runner.py; stat -c "%U %a" /opt/pyide;
   python3 -c "import sys; print(sys.version_info >= (3, 11))";
   find / -xdev -perm /6000 -type f 2>/dev/null | wc -l;
   command -v gcc cc apt-get | wc -l')
expected=$'1000\n1000\nroot 644\nroot 755\nTrue\n0\n0'
[ "$facts" = "$expected" ] || fail "image facts (uid, gid, runner owner/mode, dir, python>=3.11, setuid files, compilers/apt):"$'\n'"$facts"
pass "runs as uid 1000, runner root-owned 0644, python >= 3.11, no setuid files, no compiler"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
printf 'x = 41\nprint("ran", __name__)\n' > "$work/ok.py"
printf 'def f():\n    return 1 / 0\nf()\n' > "$work/bad.py"
printf 'while True:\n    pass\n' > "$work/spin.py"
chmod 0644 "$work"/*.py
mount=(--mount "type=bind,source=$work,target=/home/student,readonly")

# Without a TTY the runner runs the file and exits: no REPL.
out=$(docker run "${hardened[@]}" "${mount[@]}" "$image" python3 /opt/pyide/runner.py /home/student/ok.py 2>&1) || fail "ok.py exited $?: $out"
[ "$out" = "ran __main__" ] || fail "ok.py printed: $out"
pass "runner FILE runs the file as __main__"

set +e
out=$(docker run "${hardened[@]}" "${mount[@]}" "$image" python3 /opt/pyide/runner.py /home/student/bad.py 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "bad.py exited $rc, want 1: $out"
grep -q 'File "/home/student/bad.py", line 2, in f' <<<"$out" && ! grep -q runner.py <<<"$out" || fail "traceback: $out"
pass "uncaught exception: exit 1, traceback names the student's file only"

set +e
out=$(docker run "${hardened[@]}" "${mount[@]}" -e PYIDE_CPU_SECONDS=1 "$image" python3 /opt/pyide/runner.py /home/student/spin.py 2>&1); rc=$?
set -e
[ $rc -eq 124 ] || fail "spin.py exited $rc, want 124: $out"
grep -q 'CPU time limit exceeded (1 s per command)' <<<"$out" || fail "no CPU message: $out"
pass "CPU budget: exit 124"

# The warm-spare path: the control line, then REPL input, through a real TTY.
# The image's CMD is the runner; --control is what the server passes.
log="$work/tty.log"
set +e
{
  printf '{"file": "/home/student/ok.py", "repl_after_error": false, "cpu_seconds": 30}\n'
  printf 'x + 1\n'
  printf 'import os; os.getuid(), __name__\n'
  printf 'exit(5)\n'
} | timeout 120 script -qec "docker run ${hardened[*]} ${mount[*]} -i -t $image python3 /opt/pyide/runner.py --control" "$log" >/dev/null
rc=$?  # script -e passes the command's exit code on
set -e
out=$(tr -d '\r' < "$log")
grep -q '^ran __main__$' <<<"$out" || fail "--control did not run the file: $out"
grep -q '^42$' <<<"$out" || fail "REPL did not keep x: $out"
grep -q "^(1000, '__main__')$" <<<"$out" || fail "REPL uid/name: $out"
[ "$rc" = 5 ] || fail "--control session exited $rc, want 5"
pass "--control through docker run -t -i: file ran, REPL kept its variables, exit(5) -> 5"
echo "smoke.sh: all checks passed for $image"
