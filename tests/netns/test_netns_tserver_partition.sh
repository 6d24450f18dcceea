#!/usr/bin/env bash
# Issue 13, test 3: cut a tablet server's link, on the nine-host bed
# (tests/netns/bed.sh). Two loads run: one on the client host over every
# tablet, and one on the victim's own host writing only to the victim's
# tablets (it reaches the victim over its own address even while the link
# is cut, so it sees exactly what the victim still acknowledges). The
# victim must fence itself at the end of its lease: its last acknowledged
# put comes no later than the cut plus one lease (--lease-ms, counted from
# the last heartbeat answered before the cut), and before its tablets
# reopen on other servers; every tablet reopens elsewhere; every put either
# load saw acknowledged is read back. Needs root; exits 77 (skipped) when
# namespaces cannot be created.
set -euo pipefail
. "$(dirname "$0")/bed.sh"

bed_setup tp
make_table t
v=${TSERVERS[0]}
vaddr=$(addr "$v"):7100
mine=$(cli tablets t --format tsv | awk -F'\t' -v a="$vaddr" '$0 ~ a {print $1}' | grep -E '^[0-9]+$' || true)
[[ -n $mine ]] || fail "the victim $vaddr serves no tablet of t: $(cli tablets t)"
echo "victim: host $v ($vaddr), tablets $(echo $mine)"
load_start w
load_start local "$v" --server "$vaddr" --deadline-ms 1000 --writers 2
wait_acked w 300 30000
wait_acked local 100 30000

"$netns" cut "$bed" "$v"
t_cut=$(now_ms) # the cut took effect before this instant
echo "cut host $v"
# Its tablets reopen on other servers.
deadline=$(($(now_ms) + 60000))
while :; do
  left=$(cli tablets t --format tsv 2>/dev/null | grep -c "$vaddr" || true)
  serving=$(cli tablets t --format tsv 2>/dev/null | grep -c serving || true)
  ((left == 0 && serving == 8)) && break
  (($(now_ms) < deadline)) || fail "the victim's tablets did not reopen elsewhere: $(cli tablets t)"
  sleep 0.2
done
t_moved=$(($(now_ms) - t_cut))
n=$(acked w)
wait_acked w $((n + 300)) 30000
load_stop local
last=$(awk '{print $3}' "$tmp/local.acks" | sort -n | tail -n1)
echo "the victim's last acknowledgement came $((last - t_cut)) ms after the cut (lease $LEASE_MS ms); its tablets served elsewhere after $t_moved ms"
((last <= t_cut + LEASE_MS)) ||
  fail "the victim acknowledged a put $((last - t_cut)) ms after the cut, past its lease of $LEASE_MS ms"
# And before any of its tablets reopened on another server (their logs).
first_reopen=""
for id in $mine; do
  for h in "${TSERVERS[@]:1}"; do
    ts=$(grep -hE "tablet $id open under assign_epoch ([2-9]|[1-9][0-9]+) " "$tmp/t$h.err" | head -n1 | cut -d' ' -f1 || true)
    [[ -n $ts ]] || continue
    ms=$(date -d "$ts" +%s%3N)
    [[ -z $first_reopen || $ms -lt $first_reopen ]] && first_reopen=$ms
  done
done
[[ -n $first_reopen ]] || fail "no other server's log shows the victim's tablets opening"
((last < first_reopen)) ||
  fail "the victim acknowledged a put at $last, after its tablet reopened elsewhere at $first_reopen"
echo "first reopen elsewhere $((first_reopen - t_cut)) ms after the cut"

"$netns" restore "$bed" "$v"
load_stop w
verify w local
echo "FIGURES tserver_cut: last_ack_after_cut_ms $((last - t_cut)) reopen_after_cut_ms $((first_reopen - t_cut)) all_serving_after_cut_ms $t_moved lease_ms $LEASE_MS"
echo PASS
