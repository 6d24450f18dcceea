#!/usr/bin/env bash
# Issue 13, test 4: 50 ms of delay on every link of the nine-host bed
# (tests/netns/bed.sh), in each direction, so host to host is 100 ms one
# way and 200 ms round trip (tools/mica-netns delay, through
# mica-netns-relay: this kernel has no sch_netem). Under it everything
# works: a cold client's lookup, an admin change, a write load over every
# tablet, a tablet server killed with its tablets reopened elsewhere, and
# every acknowledged put read back. Prints the latencies. Needs root;
# exits 77 (skipped) when namespaces cannot be created or the relay is
# missing.
set -euo pipefail
. "$(dirname "$0")/bed.sh"
DELAY_MS=${DELAY_MS:-50}
"$netns" check --delay || exit $?

bed_setup dl
make_table t
cli put t k1 v1 >/dev/null || fail "cannot put k1"
for h in $(seq 9); do "$netns" delay "$bed" "$h" "$DELAY_MS"; done
echo "every link delayed $DELAY_MS ms each way"
# The delay is there: a round trip client -> tablet server takes 4 link
# crossings.
t0=$(now_ms)
on "$CLIENT" bash -c "exec 3<>/dev/tcp/$(addr "${TSERVERS[0]}")/7100" ||
  fail "cannot connect to a tablet server through the delay"
rtt=$(($(now_ms) - t0))
((rtt >= 4 * DELAY_MS)) || fail "a TCP connect took $rtt ms, less than $((4 * DELAY_MS)) ms: no delay"
echo "TCP connect client -> tablet server: $rtt ms"

out=$(check failover --table t --key k1 --create delayed --since-ms "$(now_ms)" --timeout-ms 60000 --attempt-ms 20000) ||
  fail "cold lookup or admin change failed under delay: $out"
lookup=$(echo "$out" | sed -n 's/^lookup_ms //p')
admin=$(($(echo "$out" | sed -n 's/^admin_ms //p') - lookup))
echo "cold client lookup+get $lookup ms; CreateTable $admin ms"

load_start w "$CLIENT" --writers 8
wait_acked w 100 60000
# A tablet server killed under delay: its tablets reopen elsewhere.
v=${TSERVERS[3]}
kill -KILL "${tpid[$v]}"
t_kill=$(now_ms)
deadline=$(($(now_ms) + 60000))
while :; do
  tabs=$(cli tablets t --format tsv 2>/dev/null || true)
  [[ -n $tabs ]] && ! grep -q "$(addr "$v"):7100" <<<"$tabs" &&
    (($(grep -c serving <<<"$tabs") == 8)) && break
  (($(now_ms) < deadline)) || fail "the killed server's tablets did not reopen: $tabs"
  sleep 0.3
done
t_reopen=$(($(now_ms) - t_kill))
n=$(acked w)
wait_acked w $((n + 100)) 60000
load_stop w
summary=$(grep '^acked ' "$tmp/w.out")
verify w
p50=$(sed -n 's/.*p50_us \([0-9]*\).*/\1/p' <<<"$summary")
((p50 >= 4 * DELAY_MS * 1000)) || fail "put p50 $p50 us is below one round trip through the delay"
echo "FIGURES delay${DELAY_MS}: connect_ms $rtt cold_lookup_ms $lookup create_table_ms $admin tserver_kill_reopen_ms $t_reopen $summary"
echo PASS
