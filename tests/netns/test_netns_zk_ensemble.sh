#!/usr/bin/env bash
# Issue 13, the ensemble case: the nine-host bed (tests/netns/bed.sh) with
# a 3-node ZooKeeper ensemble on host 1; under a write load the ensemble's
# leader is killed (kill -9). The two remaining nodes elect a new leader;
# whatever the masters do meanwhile (the active one keeps its session, or
# exits 3 and a standby takes over), a master is active afterwards, writes
# are acknowledged again, and every acknowledged put is read back. Then the
# killed node rejoins and an admin change succeeds. Needs root; exits 77
# (skipped) when namespaces cannot be created.
set -euo pipefail
BED_ZK_NODES=3
. "$(dirname "$0")/bed.sh"

bed_setup ze
make_table t
load_start w
wait_acked w 300 30000

leader=""
for i in 1 2 3; do
  port=$(sed -n 's/^clientPort=//p' "$zkdir/n$i/zoo.cfg")
  ans=$(on "$ZK_HOST" timeout 2 bash -c "exec 3<>/dev/tcp/$(addr "$ZK_HOST")/$port && printf srvr >&3 && cat <&3" 2>/dev/null || true)
  [[ $ans == *"Mode: leader"* ]] && leader=$i
done
[[ -n $leader ]] || fail "no ZooKeeper node says it leads"
a=$(active_master)
e0=$(log_epochs | tail -n1)
echo "killing ZooKeeper node $leader (the ensemble's leader); active master on host $a"
t0=$(now_ms)
kill -KILL "$(cat "$zkdir/n$leader/pid")"
sleep 2
b=$(wait_active_master "" 60000) || fail "no master active after the ZooKeeper leader died"
n=$(acked w)
wait_acked w $((n + 300)) 60000
e1=$(log_epochs | tail -n1)
echo "after $(($(now_ms) - t0)) ms: master on host $b (epoch $((10#$e0)) -> $((10#$e1)))"
if [[ $b != "$a" ]]; then
  ((10#$e1 > 10#$e0)) || fail "a new master without a new epoch"
fi
rm -f "$zkdir/n$leader/pid"
on "$ZK_HOST" "$zkserver" start-node "$zkdir" "$leader" >/dev/null || fail "node $leader did not rejoin"
cli create after_zk_kill --splits m >/dev/null || fail "admin change after the ZooKeeper node rejoined"
load_stop w
verify w
echo "FIGURES zk_ensemble_leader_kill: master_host_before $a after $b epoch $((10#$e0))->$((10#$e1))"
echo PASS
