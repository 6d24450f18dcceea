#!/usr/bin/env bash
# bench/hotsplit/sampling.sh: what load sampling (tabletserver/server/
# ts_load.h) costs on the request path, sampling on against off in one run.
#
# It starts one mica-master and one mica-tserver on 127.0.0.1 in a
# temporary directory, loads --records YCSB records into a one-tablet table
# with mica-bench, then runs the same mica-bench workload --runs times in
# each mode, alternating (on, off, on, off, ...) so a change in machine
# load hits both alike. The mode is switched by restarting only the master,
# on the same address and data, with --load-split on or off; the tablet
# server keeps running and takes the setting from the master's
# registration reply. With "on" the thresholds are set out of reach
# (--load-split-ops 1e12, --load-split-bytes 1000G), so every request is
# offered to the sampler and no tablet is ever split: the cost measured is
# the sampling alone. The tablet server's CPU time per operation is read
# from /proc around each run.
#
# Results: one line per run and a table of medians (ops/s, p99, server CPU
# µs per op, and the on/off ratios) on stdout. Every process it started is
# stopped by its pid at exit; the data is deleted.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/../lib.sh"

bin=${MICA_BIN_DIR:-build/bin}
records=20000
threads=16
seconds=10
runs=3
workload=c
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --workload) workload=$2; shift 2 ;;
    -h|--help)
      cat <<'USAGE'
usage: bench/hotsplit/sampling.sh [--bin DIR] [--records N] [--threads N]
                                  [--seconds S] [--runs N] [--workload W]
  --bin DIR       mica-master, mica-tserver, mica-bench (default
                  $MICA_BIN_DIR, else build/bin)
  --records N     YCSB records of 1 KB (default 20000)
  --threads N     mica-bench client threads (default 16)
  --seconds S     length of each run (default 10)
  --runs N        runs per mode; medians are reported (default 3)
  --workload W    mica-bench workload (default c: 100% zipfian reads)
example:
  bench/hotsplit/sampling.sh --bin build/bin --runs 3 --workload a
USAGE
      exit 0 ;;
    *) echo "sampling.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for t in mica-master mica-tserver mica-bench; do
  [ -x "$bin/$t" ] || { echo "sampling.sh: $bin/$t not found (--bin)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mica-sampling.XXXXXX")
master_pid=""
ts_pid=""
cleanup() {
  for pid in $master_pid $ts_pid; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in $master_pid $ts_pid; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(bench_free_port)
addr=127.0.0.1:$port
mkdir -p "$work/data"

start_master() { # on|off
  rm -f "$work/master.addr"
  "$bin/mica-master" --data-dir "$work/data" --listen "$addr" \
    --address-file "$work/master.addr" --merge off --balancer off \
    --load-split "$1" --load-split-ops 1000000000000 \
    --load-split-bytes 1000G >>"$work/master.log" 2>&1 &
  master_pid=$!
  bench_wait_file "$work/master.addr" "$master_pid" 30 ||
    { echo "sampling.sh: master did not start; see its log:" >&2; tail "$work/master.log" >&2; exit 1; }
}

stop_master() {
  kill "$master_pid"
  wait "$master_pid" 2>/dev/null || true
  master_pid=""
}

# Waits until the tablet server logs the setting the master sent.
wait_mode() { # on|off
  local want="load-based split $1"
  for ((i = 0; i < 300; i++)); do
    [ "$(grep -c "$want" "$work/tserver.log" || true)" -gt "${2:-0}" ] && return 0
    sleep 0.1
  done
  echo "sampling.sh: the tablet server never logged '$want'; the logs end:" >&2
  tail -n 5 "$work/tserver.log" "$work/master.log" >&2
  exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

start_master on
"$bin/mica-tserver" --data-dir "$work/data" --listen 127.0.0.1:0 --master "$addr" \
  --address-file "$work/tserver.addr" >"$work/tserver.out" 2>"$work/tserver.log" &
ts_pid=$!
bench_wait_file "$work/tserver.addr" "$ts_pid" 30 || { echo "sampling.sh: tserver did not start" >&2; exit 1; }
wait_mode on

"$bin/mica-bench" load --master "$addr" --records "$records" --threads "$threads" \
  --tablets 1 --quiet >/dev/null

current=on
results=$work/results.tsv
: >"$results"
for ((r = 1; r <= runs; r++)); do
  for mode in on off; do
    if [ "$mode" != "$current" ]; then
      seen=$(grep -c "load-based split $mode" "$work/tserver.log" || true)
      stop_master
      start_master "$mode"
      wait_mode "$mode" "$seen"
      current=$mode
      sleep 2 # the server's heartbeats settle
    fi
    c0=$(cpu_ticks "$ts_pid")
    "$bin/mica-bench" run --master "$addr" --workload "$workload" --records "$records" \
      --threads "$threads" --duration "$seconds" --ops 1000000000 --quiet \
      --json "$work/run-$mode-$r.json" >/dev/null
    c1=$(cpu_ticks "$ts_pid")
    python3 - "$work/run-$mode-$r.json" "$mode" "$r" "$((c1 - c0))" "$hz" >>"$results" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ticks, hz = int(sys.argv[4]), int(sys.argv[5])
ops = j["all"]["count"]
cpu_us = ticks / hz * 1e6 / ops if ops else 0
print(f'{sys.argv[2]}\t{sys.argv[3]}\t{j["throughput_ops_s"]:.0f}\t{j["all"]["p99_us"]}\t{cpu_us:.1f}')
PY
    tail -1 "$results" | awk -F'\t' '{printf "run %s sampling %-3s  %8s ops/s  p99 %6s us  server CPU %s us/op\n", $2, $1, $3, $4, $5}'
  done
done

python3 - "$results" "$workload" "$threads" "$seconds" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
def med(mode, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == mode)
on, off = [med("on", 2), med("on", 3), med("on", 4)], [med("off", 2), med("off", 3), med("off", 4)]
print()
print(f"workload {sys.argv[2]}, {sys.argv[3]} threads, {sys.argv[4]} s per run, medians:")
print("| sampling | ops/s | p99 µs | server CPU µs/op |")
print("|---|---:|---:|---:|")
print(f"| on | {on[0]:,.0f} | {on[1]:,.0f} | {on[2]:.1f} |")
print(f"| off | {off[0]:,.0f} | {off[1]:,.0f} | {off[2]:.1f} |")
print(f"| on/off | {on[0]/off[0]:.3f} | {on[1]/off[1]:.3f} | {on[2]/off[2]:.3f} |")
PY
