#!/usr/bin/env bash
# Master election across hosts: ZooKeeper on host 1 of a namespace bed,
# one mzk-candidate on each of hosts 2 and 3. Cutting the active candidate's
# link for longer than its session timeout makes it stop acting (its lease
# runs out) and the other take over with a higher epoch, never both at once;
# after the link returns the old one rejoins as a standby. Teardown leaves no
# namespace and no process, also on failure.
#
# Needs root; exits 77 (ctest: skipped) with the reason when namespaces
# cannot be created. Talks only to the bed's own addresses.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
netns=$src/tools/mica-netns
zkserver=$src/tools/zk-test-server
bin=${MICA_BIN_DIR:?MICA_BIN_DIR must name the directory holding mzk-candidate}
timeout_ms=3000

"$netns" check || exit $?

bed=el$$
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
    for f in "$tmp"/*.out "$tmp"/zk/n1/log; do
      [[ -f $f ]] && { echo "== $f"; tail -n 30 "$f"; } >&2
    done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
stat_of() { # stat_of HOST KEY
  sed -n "s/^$2 //p" "$tmp/c$1" 2>/dev/null || true
}
wait_stat() { # wait_stat HOST KEY VALUE TIMEOUT_MS
  local deadline=$(($(now_ms) + $4))
  while [[ $(stat_of "$1" "$2") != "$3" ]]; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.05
  done
}

"$netns" up "$bed" 3 --owner-pid $$
zk_addr=$("$netns" addr "$bed" 1)
out=$("$netns" exec "$bed" 1 "$zkserver" start --bind "$zk_addr" \
        --dir "$tmp/zk" --owner-pid $$)
eval "$out" # sets dir and connect
[[ $connect == "$zk_addr":* ]] || fail "ZooKeeper connect string '$connect'"

for h in 2 3; do
  "$netns" exec "$bed" "$h" "$bin/mzk-candidate" --zk "$connect/netns-test" \
    --rpc "$("$netns" addr "$bed" "$h"):7000" --timeout-ms "$timeout_ms" \
    --status "$tmp/c$h" >"$tmp/c$h.out" 2>&1 &
  disown
done
for h in 2 3; do
  wait_stat "$h" sessions 1 30000 || fail "candidate on host $h never connected"
done
deadline=$(($(now_ms) + 20000))
active=""
while [[ -z $active ]]; do
  for h in 2 3; do [[ $(stat_of "$h" active) == 1 ]] && active=$h; done
  (($(now_ms) < deadline)) || fail "no candidate became active"
  sleep 0.05
done
other=$((active == 2 ? 3 : 2))
sleep 0.5
[[ $(stat_of "$other" active) == 0 ]] || fail "both candidates active"
epoch0=$(stat_of "$active" epoch)
echo "host $active is active with epoch $epoch0; cutting its link"

"$netns" cut "$bed" "$active"
cut_at=$(now_ms)
stepped_down="" took_over=""
deadline=$((cut_at + 4 * timeout_ms + 10000))
while [[ -z $took_over ]]; do
  a=$(stat_of "$active" active)
  o=$(stat_of "$other" active)
  [[ $a == 1 && $o == 1 ]] && fail "both candidates active during the partition"
  [[ -z $stepped_down && $a == 0 ]] && stepped_down=$(($(now_ms) - cut_at))
  [[ $o == 1 ]] && took_over=$(($(now_ms) - cut_at))
  (($(now_ms) < deadline)) || fail "host $other did not take over"
  sleep 0.02
done
epoch1=$(stat_of "$other" epoch)
echo "host $active stopped after ${stepped_down} ms; host $other active after ${took_over} ms with epoch $epoch1"
[[ -n $stepped_down ]] || fail "cut host never stepped down"
# The lease: half the session timeout from the last answered write, plus
# the 50 ms status-file period and scheduling slack.
((stepped_down <= timeout_ms / 2 + 500)) ||
  fail "cut host acted for ${stepped_down} ms after the cut"
((took_over > stepped_down)) ||
  fail "host $other took over (${took_over} ms) before the cut host stopped (${stepped_down} ms)"
((epoch1 > epoch0)) || fail "epoch $epoch1 after failover is not above $epoch0"

"$netns" restore "$bed" "$active"
wait_stat "$active" sessions 2 30000 ||
  fail "host $active did not rejoin with a new session after the link returned"
sleep 1
[[ $(stat_of "$active" active) == 0 ]] || fail "old master active again"
[[ $(stat_of "$other" active) == 1 ]] || fail "new master lost leadership"
[[ $(stat_of "$other" epoch) == "$epoch1" ]] || fail "epoch changed without a failover"
grep -q "STANDBY" "$tmp/c$active.out" || fail "old master never reported stepping down"

"$zkserver" stop "$dir"
echo "PASS"
