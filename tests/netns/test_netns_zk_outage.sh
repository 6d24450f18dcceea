#!/usr/bin/env bash
# Issue 13, test 5: stop ZooKeeper (standalone, on host 1 of the nine-host
# bed, tests/netns/bed.sh) for 15 s under a write load, then start it
# again. The active master must stop acting at once (it exits 3 when its
# leadership lease ends); tablet servers keep serving until their own
# leases end, then refuse (never acknowledge) writes; after ZooKeeper
# returns a master is elected with a higher epoch, every tablet server is
# live again and writes are acknowledged again, with no operator action;
# every acknowledged put is read back. Prints how long the data path kept
# working after the stop and how long after the restart it came back.
# Needs root; exits 77 (skipped) when namespaces cannot be created.
set -euo pipefail
. "$(dirname "$0")/bed.sh"
OUTAGE_S=${OUTAGE_S:-15}

bed_setup zo
make_table t
load_start w
wait_acked w 300 30000
a=$(active_master)
e0=$(log_epochs | tail -n1)

echo "stopping ZooKeeper for $OUTAGE_S s (active master on host $a, epoch $((10#$e0)))"
t_stop=$(now_ms)
"$zkserver" stop "$zkdir" >/dev/null
rc=0; wait "${mpid[$a]}" || rc=$?
t_exit=$(($(now_ms) - t_stop))
((rc == 3)) || fail "the active master exited with status $rc, not 3, without ZooKeeper"
echo "the active master stopped acting (exit 3) $t_exit ms after ZooKeeper stopped"
((t_exit <= SESSION_MS / 2 + 1500)) || fail "the master acted $t_exit ms without ZooKeeper"
sleep $((OUTAGE_S - t_exit / 1000))
during=$(awk -v s="$t_stop" '$3 > s' "$tmp/w.acks" | wc -l)
last_during=$(awk -v s="$t_stop" '$3 > s {print $3}' "$tmp/w.acks" | sort -n | tail -n1)
echo "acknowledged during the outage: $during, the last $(( ${last_during:-$t_stop} - t_stop )) ms after the stop"
# Tablet servers refuse once their leases end: the last lease was granted
# before the master stopped acting, so it ends within one lease of that.
((${last_during:-0} <= t_stop + t_exit + LEASE_MS)) ||
  fail "a put was acknowledged $((last_during - t_stop)) ms into the outage, past the master's exit ($t_exit ms) plus the $LEASE_MS ms lease"

t_start=$(now_ms)
on "$ZK_HOST" "$zkserver" start-node "$zkdir" 1 >/dev/null || fail "ZooKeeper did not start again"
b=$(wait_active_master "$a" 60000) || fail "no master became active after ZooKeeper returned"
t_master=$(($(now_ms) - t_start))
e1=$(log_epochs | tail -n1)
((10#$e1 > 10#$e0)) || fail "epoch $e1 after the outage is not above $e0"
n=$(acked w)
wait_acked w $((n + 1)) 60000
first_after=$(awk -v s="$t_start" '$3 > s {print $3}' "$tmp/w.acks" | sort -n | head -n1)
t_writes=$((first_after - t_start))
echo "after ZooKeeper returned: host $b active after $t_master ms (epoch $((10#$e1))), writes acknowledged after $t_writes ms"
deadline=$(($(now_ms) + 30000))
while (($(live_servers) < ${#TSERVERS[@]})); do
  (($(now_ms) < deadline)) || fail "only $(live_servers) tablet servers live after the outage"
  sleep 0.2
done
wait_acked w $((n + 300)) 30000
load_stop w
verify w
echo "FIGURES zk_outage: master_exit_ms $t_exit last_ack_into_outage_ms $(( ${last_during:-$t_stop} - t_stop )) new_master_after_restart_ms $t_master writes_after_restart_ms $t_writes outage_s $OUTAGE_S"
echo PASS
