#!/usr/bin/env bash
# bench/failover/run.sh: the master failover benchmark of docs/benchmarks.md
# ("Master failover"): KILLS kill -9s of the active master under a write
# load, with a 3 s ZooKeeper session and with the default (10 s), then the
# default with 20 s leases, on one loopback cluster per setting (ZooKeeper,
# 3 masters, 2 tablet servers); plus LookupTablets/s and the active
# master's CPU per lookup with two standbys running vs none.
#
#   bench/failover/run.sh [--kills N] [--build DIR] [--out FILE]
#
# Builds mica-failover-bench, mica-master and mica-tserver in DIR (default
# build/), runs them under nice, and writes everything printed to FILE
# (default $TMPDIR/failover-bench.txt) as well as to stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
kills=10 build=$src/build out=${TMPDIR:-/tmp}/failover-bench.txt
while [ $# -gt 0 ]; do
  case $1 in
    --kills) kills=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $kills =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --kills wants a positive number" >&2; exit 2; }
[ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice cmake --build "$build" -j2 --target mica-failover-bench mica-master mica-tserver >/dev/null
export MICA_BIN_DIR=$build/bin
{
  echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# commit $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nice "$build/bin/mica-failover-bench" --session-ms 3000 --kills "$kills" --lookup-runs 7
  nice "$build/bin/mica-failover-bench" --session-ms 10000 --kills "$kills" --lookup-runs 0
  # The default session with the leases raised above it (see the docs).
  nice "$build/bin/mica-failover-bench" --session-ms 10000 --lease-ms 20000 --kills "$kills" --lookup-runs 0
  # Controls: the same load and windows (3 s, 10 s), nothing killed: what
  # the machine's own load does to the throughput ratios.
  nice "$build/bin/mica-failover-bench" --session-ms 3000 --control 1 --kills "$kills" --lookup-runs 0
  nice "$build/bin/mica-failover-bench" --session-ms 10000 --control 1 --kills "$kills" --lookup-runs 0
} 2>&1 | tee "$out"
