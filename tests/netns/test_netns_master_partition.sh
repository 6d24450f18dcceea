#!/usr/bin/env bash
# Issue 13, test 2: cut the active master's link for longer than its
# ZooKeeper session, under a write load, on the nine-host bed
# (tests/netns/bed.sh). The cut master must step down (exit 3 once its
# leadership lease ends) and a standby take over with a higher master
# epoch. When the link returns the old master has changed nothing:
#  - the metadata log: every file of its epoch is, when the link returns,
#    byte for byte what it was when the master exited, or retired (deleted)
#    by the new master; no file of the old epoch appears afterwards;
#  - the tablet servers: every one has moved its fence to the new epoch
#    (so each would refuse the old master with STALE_MASTER), none saw the
#    old epoch again, and each kept its tablets and served throughout.
# Every acknowledged put is read back. Needs root; exits 77 (skipped) when
# namespaces cannot be created.
set -euo pipefail
. "$(dirname "$0")/bed.sh"

bed_setup mp
make_table t
load_start w
wait_acked w 300 30000

a=$(active_master)
e0=$(log_epochs | tail -n1)
echo "cutting the link of the active master on host $a (epoch $((10#$e0)))"
"$netns" cut "$bed" "$a"
t0=$(now_ms)
rc=0; wait "${mpid[$a]}" || rc=$?
t_exit=$(($(now_ms) - t0))
((rc == 3)) || fail "the cut master exited with status $rc, not 3 (deposed)"
grep -q "no longer the active master" "$tmp/m$a.err" ||
  fail "the cut master did not say why it stopped"
echo "the cut master exited 3 after $t_exit ms"
# Its leadership lease is half the session from its last answered write.
((t_exit <= SESSION_MS / 2 + 1500)) ||
  fail "the cut master acted for $t_exit ms after the cut"
# What the old epoch's files were when it stopped.
( cd "$tmp/data/master" && for f in *-"$e0"-*; do
    [[ -e $f ]] && echo "$f $(sha256sum <"$f" | cut -c1-64)"; done ) >"$tmp/old.sums"

b=$(wait_active_master "$a" $((4 * SESSION_MS + 20000))) || fail "no standby took over"
t_new=$(($(now_ms) - t0))
e1=$(log_epochs | tail -n1)
((10#$e1 > 10#$e0)) || fail "log epoch $e1 after the takeover is not above $e0"
echo "host $b took over after $t_new ms with epoch $((10#$e1))"
n=$(acked w)
wait_acked w $((n + 200)) 30000

"$netns" restore "$bed" "$a"
sleep $((SESSION_MS / 1000 + 1))
# The log: nothing of the old epoch changed or appeared.
while read -r f sum; do
  [[ -e $tmp/data/master/$f ]] || continue # retired by the new master
  [[ $(sha256sum <"$tmp/data/master/$f" | cut -c1-64) == "$sum" ]] ||
    fail "log file $f of the old epoch changed after its master exited"
done <"$tmp/old.sums"
for f in "$tmp/data/master"/*-"$e0"-*; do
  [[ -e $f ]] || continue
  grep -q "^$(basename "$f") " "$tmp/old.sums" ||
    fail "log file $(basename "$f") of the old epoch appeared after its master exited"
done
echo "metadata log: $(ls "$tmp/data/master" | tr '\n' ' ')"
# The tablet servers: fenced at the new epoch, the old one never again.
for h in "${TSERVERS[@]}"; do
  grep -q "master epoch $((10#$e1)) (was $((10#$e0)))" "$tmp/t$h.err" ||
    fail "tablet server $h did not move to master epoch $((10#$e1))"
  ! sed -n "/master epoch $((10#$e1)) (was/,\$p" "$tmp/t$h.err" |
      grep -q "master epoch $((10#$e0)) (was" ||
    fail "tablet server $h went back to the old epoch"
  ! grep -q "tablet .* closed\|lease expired\|LEASE_EXPIRED" "$tmp/t$h.err" ||
    fail "tablet server $h lost its lease or tablets during the master's partition"
done
stale=$(grep -c STALE_MASTER "$tmp/m$a.err" || true)
echo "commands of the old master refused STALE_MASTER: $stale (it stopped before sending any)"

# The old host, restarted as a supervisor would, is a standby naming host b.
mv "$tmp/m$a.out" "$tmp/m$a.first.out" # wait for the new process's line
start_master "$a"
wait_line "$tmp/m$a.out" standby 30000 >/dev/null || fail "restarted master is no standby"
# (A standby that just started may not have read the active record yet:
# it then says no master is active; it must name host b within seconds.)
deadline=$(($(now_ms) + 10000))
while :; do
  if out=$(on "$CLIENT" "$bin/mica" --deadline 3000 --master "$(addr "$a"):7000" tables 2>&1); then
    fail "the old master answered: $out"
  fi
  [[ $out == *NOT_ACTIVE_MASTER* || $out == *"not the active master"* ]] ||
    fail "the old master's refusal is not NOT_ACTIVE_MASTER: $out"
  [[ $out == *"$(addr "$b"):7000"* ]] && break
  (($(now_ms) < deadline)) || fail "the old master's refusal does not name $(addr "$b"):7000: $out"
  sleep 0.2
done
echo "the old master, restarted: $out"

# Harder: freeze the active master (SIGSTOP) and cut its link, so it
# cannot even notice it was deposed; thaw it only after another candidate
# has won. The winner must wait for the frozen one's data-root lock; the
# thawed one must exit 3 at once (its lease ran out while it slept), and
# change nothing: no log file of its epoch changes or appears, no tablet
# server goes back to its epoch.
e1n=$((10#$e1))
( cd "$tmp/data/master" && for f in *-"$e1"-*; do
    [[ -e $f ]] && echo "$f $(sha256sum <"$f" | cut -c1-64)"; done ) >"$tmp/frozen.sums"
kill -STOP "${mpid[$b]}"
"$netns" cut "$bed" "$b"
t1=$(now_ms)
echo "froze and cut the active master on host $b (epoch $e1n)"
won_epoch() { sed -n 's/.*won the election with master epoch \([0-9]*\).*/\1/p' "$tmp/m$1.err" | sort -n | tail -n1; }
winner=""
deadline=$(($(now_ms) + 4 * SESSION_MS + 20000))
while [[ -z $winner ]]; do
  for h in "${MASTERS[@]}"; do
    [[ $h == "$b" ]] && continue
    w=$(won_epoch "$h")
    [[ -n $w ]] && ((w > e1n)) && winner=$h
  done
  (($(now_ms) < deadline)) || fail "no candidate won while host $b was frozen"
  sleep 0.1
done
t_won=$(($(now_ms) - t1))
sleep 1
grep -q '^listening ' "$tmp/m$winner.out" 2>/dev/null &&
  fail "host $winner serves while the deposed master still holds the data root"
"$netns" restore "$bed" "$b"
kill -CONT "${mpid[$b]}"
rc=0; wait "${mpid[$b]}" || rc=$?
((rc == 3)) || fail "the thawed master exited with status $rc, not 3"
c=$(wait_active_master "$b" 30000) || fail "host $winner never served after the thawed master exited"
[[ $c == "$winner" ]] || fail "host $c serves, host $winner won"
e2=$(log_epochs | tail -n1)
((10#$e2 > e1n)) || fail "epoch $e2 is not above $e1n"
echo "host $winner won after $t_won ms (epoch $((10#$e2))), served once the thawed master exited 3"
sleep 1
while read -r f sum; do
  [[ -e $tmp/data/master/$f ]] || continue
  [[ $(sha256sum <"$tmp/data/master/$f" | cut -c1-64) == "$sum" ]] ||
    fail "log file $f of the frozen master's epoch changed after it was frozen"
done <"$tmp/frozen.sums"
for f in "$tmp/data/master"/*-"$e1"-*; do
  [[ -e $f ]] || continue
  grep -q "^$(basename "$f") " "$tmp/frozen.sums" ||
    fail "log file $(basename "$f") of the frozen master's epoch appeared after it was frozen"
done
for h in "${TSERVERS[@]}"; do
  ! sed -n "/master epoch $((10#$e2)) (was/,\$p" "$tmp/t$h.err" |
      grep -q "master epoch $e1n (was" ||
    fail "tablet server $h went back to the frozen master's epoch"
done
stale=$(grep -c STALE_MASTER "$tmp/m$b.err" || true)
echo "the thawed master's commands refused STALE_MASTER: $stale"

load_stop w
verify w
echo "FIGURES partition: cut_to_exit_ms $t_exit cut_to_new_master_ms $t_new frozen_cut_to_won_ms $t_won session_ms $SESSION_MS"
echo PASS
