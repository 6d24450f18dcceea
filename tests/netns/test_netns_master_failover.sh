#!/usr/bin/env bash
# mica-master --zk across hosts: ZooKeeper on host 1, a master on each of
# hosts 2 and 3 (one data root: the shared file system), the `mica` CLI on
# host 4. The standby refuses with NOT_ACTIVE_MASTER naming the active one;
# cutting the active master's link for longer than its session makes it
# exit (status 3) and the standby take over on its published address; the
# CLI then creates a table through it. Teardown leaves no namespace or
# process. Needs root; exits 77 (skipped) when namespaces cannot be made.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
netns=$src/tools/mica-netns
zkserver=$src/tools/zk-test-server
bin=${MICA_BIN_DIR:?MICA_BIN_DIR must name the directory holding mica-master}
session_ms=3000

"$netns" check || exit $?

bed=mf$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mica-netns-test.XXXXXX")
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() {
  local rc=$?
  "$netns" down "$bed"
  if ip netns list | grep -q "^mica-$bed-"; then
    echo "FAIL: namespaces of bed $bed left behind" >&2; rc=1
  fi
  if pgrep -f "$tmp" >/dev/null; then
    echo "FAIL: processes of this test left behind: $(pgrep -f "$tmp")" >&2; rc=1
  fi
  if ((rc != 0)); then
    for f in "$tmp"/*.out "$tmp"/*.err; do
      [[ -f $f ]] && { echo "== $f"; tail -n 20 "$f"; } >&2
    done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
wait_line() { # wait_line FILE WORD TIMEOUT_MS: prints the word's argument
  local deadline=$(($(now_ms) + $3)) v
  while :; do
    v=$(sed -n "s/^$2 //p" "$1" 2>/dev/null | head -n1)
    [[ -n $v ]] && { echo "$v"; return 0; }
    (($(now_ms) < deadline)) || return 1
    sleep 0.05
  done
}
cli() { "$netns" exec "$bed" 4 "$bin/mica" --deadline 5000 --master "$@"; }

"$netns" up "$bed" 4 --owner-pid $$
zk_addr=$("$netns" addr "$bed" 1)
eval "$("$netns" exec "$bed" 1 "$zkserver" start --bind "$zk_addr" \
          --dir "$tmp/zk" --owner-pid $$)"
mkdir "$tmp/data"

declare -A pid
start_master() {
  "$netns" exec "$bed" "$1" "$bin/mica-master" --data-dir "$tmp/data" \
    --listen "$("$netns" addr "$bed" "$1"):7000" --zk "$connect/mica" \
    --zk-session-ms "$session_ms" --insecure \
    >"$tmp/m$1.out" 2>"$tmp/m$1.err" &
  pid[$1]=$!
}
start_master 2
a=$(wait_line "$tmp/m2.out" listening 30000) || fail "master on host 2 did not start"
start_master 3
b=$(wait_line "$tmp/m3.out" standby 30000) || fail "master on host 3 did not start as a standby"
echo "active $a, standby $b"

if out=$(cli "$b" tables 2>&1); then fail "the standby answered: $out"; fi
[[ $out == *NOT_ACTIVE_MASTER* || $out == *"not the active master"* ]] ||
  fail "standby's refusal does not say NOT_ACTIVE_MASTER: $out"
[[ $out == *"$a"* ]] || fail "standby's refusal does not name $a: $out"
cli "$a" create before >/dev/null || fail "cannot create a table on $a"

"$netns" cut "$bed" 2
cut_at=$(now_ms)
served=$(wait_line "$tmp/m3.out" listening $((session_ms * 4 + 20000))) ||
  fail "standby did not take over"
echo "host 3 serves on $served after $(($(now_ms) - cut_at)) ms"
[[ $served == "$b" ]] || fail "new master serves on $served, published $b"
rc=0; wait "${pid[2]}" || rc=$?
((rc == 3)) || fail "deposed master exited with status $rc, not 3"

out=$(cli "$b" tables) || fail "cannot list tables on the new master"
[[ $out == *before* ]] || fail "table made before the failover is missing: $out"
cli "$b" create after >/dev/null || fail "cannot create a table on the new master"
"$netns" restore "$bed" 2
kill -TERM "${pid[3]}"
rc=0; wait "${pid[3]}" || rc=$?
((rc == 0)) || fail "new master exited with status $rc on SIGTERM"
"$zkserver" stop "$dir"
echo PASS
