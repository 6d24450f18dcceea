#!/usr/bin/env bash
# Issue 13, test 1: kill -9 of the active master under a write load, on the
# nine-host bed (tests/netns/bed.sh). A checker on the client host writes
# into every tablet; the active master is killed with SIGKILL; the checker
# measures, from the kill, the time until a cold client gets a key (a
# standby answered LookupTablets) and until an admin change (CreateTable)
# succeeds. Two loads run, one following the active master through
# ZooKeeper (zk://), one given the comma-separated list of the three
# masters; both go on through the failover, and afterwards every
# acknowledged put of both is read back. Needs root; exits 77 (skipped) when
# namespaces cannot be created.
set -euo pipefail
. "$(dirname "$0")/bed.sh"

bed_setup km
make_table t
list=$(for h in "${MASTERS[@]}"; do printf '%s:7000,' "$(addr "$h")"; done)
list=${list%,}
load_start w
load_start l "$CLIENT" --master "$list" --writers 2
wait_acked w 300 30000
wait_acked l 100 30000

a=$(active_master)
epochs0=$(log_epochs | tail -n1)
echo "killing the active master on host $a (log epoch $epochs0)"
t0=$(now_ms)
kill -KILL "${mpid[$a]}"
out=$(check failover --table t --key "$(head -n1 "$tmp/w.acks" | cut -d' ' -f1)" \
        --create after_kill --since-ms "$t0" --timeout-ms 60000) ||
  fail "no failover: $out"
echo "$out"
b=$(wait_active_master "$a" 1000) || fail "no master prints listening after the failover"
epochs1=$(log_epochs | tail -n1)
((epochs1 > epochs0)) || fail "log epoch $epochs1 after the failover is not above $epochs0"
echo "host $b is active, log epoch $epochs1"

# The load goes on through the new master.
n=$(acked w) nl=$(acked l)
wait_acked w $((n + 300)) 30000
wait_acked l $((nl + 100)) 30000
load_stop w
load_stop l
verify w l
# The checker itself can fail: a key never written and a wrong value.
{ echo "never.written.key v.x 0 0"
  head -n1 "$tmp/w.acks" | awk '{print $1, "not-its-value", $3, $4}'; } >"$tmp/fake.acks"
if check verify --table t "$tmp/fake.acks" >/dev/null 2>"$tmp/fake.err"; then
  fail "the checker accepted a lost key and a wrong value"
fi
grep -q "^LOST: never.written.key" "$tmp/fake.err" &&
  grep -q "^WRONG VALUE: $(head -n1 "$tmp/w.acks" | cut -d' ' -f1)" "$tmp/fake.err" ||
  fail "the checker did not name the lost key and the wrong value: $(cat "$tmp/fake.err")"
echo "FIGURES kill9: $(echo "$out" | tr '\n' ' ')session_ms $SESSION_MS"
echo PASS
