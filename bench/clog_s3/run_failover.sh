#!/usr/bin/env bash
# bench/clog_s3/run_failover.sh: time from a tablet server's kill -9 until
# its tablets serve elsewhere, with several tablets on the killed server,
# with the new owner's replays of the dead log sharing their reads (the
# default) and not (MICA_CLOG_REPLAY_CACHE_MB=0, the behaviour before),
# interleaved, on POSIX and on S3 (docs/benchmarks.md, "Several tablets
# recovering from one S3 log").
#
#   bench/clog_s3/run_failover.sh [--build DIR] [--rounds N] [--keys N]
#
# Each run: tools/mica-cluster starts a master and 2 tablet servers (2 s
# leases; with --s3 on a local s3rver), a table of 12 tablets (6 per
# server), `mica load` of --keys keys of 200 bytes across them (left in
# the commit logs: nothing flushes them), kill -9 of tserver-1, then polls
# `mica tablets` every 20 ms until all 12 serve on the survivor.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$src/build rounds=3 keys=12000
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run_failover.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ && $keys =~ ^[1-9][0-9]*$ ]] ||
  { echo "run_failover.sh: --rounds and --keys want positive numbers" >&2; exit 2; }
bin=$build/bin
mica=$bin/mica
work=$(mktemp -d "${TMPDIR:-/tmp}/mica-failover-bench.XXXXXX")
cl=$work/cluster
cleanup() { "$src/tools/mica-cluster" --dir "$cl" --bin "$bin" stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
# The load: keys spread over the 12 tablets (k0.. kb prefixes).
for ((i = 0; i < keys; i++)); do
  printf 'k%x-%08d\t%0200d\n' $((i % 12)) "$i" 0
done > "$work/load.tsv"
now_ms() { date +%s%3N; }
one_run() { # $1: s3|posix, $2: on|off
  local s3flag=() ; [ "$1" = s3 ] && s3flag=(--s3)
  if [ "$2" = off ]; then export MICA_CLOG_REPLAY_CACHE_MB=0; else unset MICA_CLOG_REPLAY_CACHE_MB; fi
  rm -rf "$cl"
  "$src/tools/mica-cluster" --dir "$cl" --bin "$bin" start --servers 2 --lease-ms 2000 "${s3flag[@]}" >/dev/null
  export MICA_MASTER; MICA_MASTER=$("$src/tools/mica-cluster" --dir "$cl" addr)
  "$mica" create t --splits k1,k2,k3,k4,k5,k6,k7,k8,k9,ka,kb >/dev/null
  "$mica" load t "$work/load.tsv" >/dev/null
  local victim; victim=$("$mica" servers --format tsv | awk -F'\t' '$2 == "'"$(cat "$cl/run/tserver-1.addr")"'" {print $1}')
  local held; held=$("$mica" tablets t --format tsv | awk -F'\t' -v v="$victim" '$6 == v' | wc -l)
  local t0; t0=$(now_ms)
  "$src/tools/mica-cluster" --dir "$cl" --bin "$bin" kill tserver-1 >/dev/null
  local t1=0 until=$((t0 + 60000))
  while [ "$(now_ms)" -lt $until ]; do
    if "$mica" tablets t --format tsv 2>/dev/null |
        awk -F'\t' -v v="$victim" '$5 != "serving" || $6 == v {bad++} END {exit bad > 0 || NR != 12}'; then
      t1=$(now_ms); break
    fi
    sleep 0.02
  done
  local reads; reads=$(grep -ho "shared with concurrent replays" "$cl"/logs/tserver-2.log | wc -l)
  local shared; shared=$(grep -ho "[0-9]* of them shared" "$cl"/logs/tserver-2.log | awk '{s += $1} END {print s + 0}')
  local objs; objs=$(grep -ho "([0-9]* segments read" "$cl"/logs/tserver-2.log | tr -d '(' | awk '{s += $1} END {print s + 0}')
  "$src/tools/mica-cluster" --dir "$cl" --bin "$bin" stop >/dev/null 2>&1 || true
  unset MICA_CLOG_REPLAY_CACHE_MB
  if [ "$t1" = 0 ]; then
    echo "$1 sharing=$2: $held tablets on the killed server; NOT all serving elsewhere within 60 s"
  else
    echo "$1 sharing=$2: $held tablets on the killed server serving elsewhere after $((t1 - t0)) ms; $reads replays read $objs objects/segments, $shared of them shared"
  fi
}
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $keys keys of 200 B, commit $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"
for ((r = 1; r <= rounds; r++)); do
  for mode in s3 posix; do
    if ((r % 2)); then order="off on"; else order="on off"; fi
    for sh in $order; do echo "round $r $(one_run "$mode" "$sh")"; done
  done
done
