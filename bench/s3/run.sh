#!/usr/bin/env bash
# bench/s3/run.sh: Mica with its data root on S3 against POSIX (issue 16;
# docs/benchmarks.md, "S3 data root against POSIX"). Two clusters on
# 127.0.0.1, each a master and one tablet server, run side by side:
#   posix  --data-dir DIR (a local directory)
#   s3     --data-dir s3://mica/bench on a local s3rver
#          (tools/s3-test-server), WAL in a local --wal-dir, a disk cache
#          (--cache-dir, 1 GiB) under the block cache
# Both get the same YCSB table (--records records of 1000 bytes, pre-split
# into --tablets tablets). Then, per round: YCSB C for --seconds on posix
# then on s3 (the tablet server's CPU read from /proc), and --splits manual
# splits of a fresh 5,000-record single-tablet table on each, each split
# timed around `mica split` (the call returns when the master has the
# daughters). The first C round on s3 starts with a cold block cache.
#
# usage: bench/s3/run.sh [--bin DIR] [--out DIR] [--records N] [--rounds N]
#                        [--seconds S] [--threads N] [--tablets N]
#                        [--splits N]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
src=$(cd "$here/../.." && pwd)
bin=$src/build/bin
out=
records=20000
rounds=3
seconds=8
threads=32
tablets=4
splits=4

die() { echo "bench/s3/run.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --tablets) tablets=$2; shift 2 ;;
    --splits) splits=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
for p in mica-master mica-tserver mica-bench mica; do
  [ -x "$bin/$p" ] || die "$bin/$p not found (build it, or give --bin)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mica-s3bench.XXXXXX")
[ -n "$out" ] || out=$work/results
mkdir -p "$out"
out=$(cd "$out" && pwd)
cleanup() {
  bench_stop_all
  [ -f "$work/s3/pid" ] && "$src/tools/s3-test-server" stop "$work/s3" || true
  rm -rf "$work/posix" "$work/s3" "$work/s3c"
  rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_ticks() { # PID: user + system ticks so far
  awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' \
    "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)

line=$("$src/tools/s3-test-server" start "$work/s3" mica) ||
  die "the S3 server did not start (node, npm once; tools/install-deps)"
endpoint=${line%% *}
s3env=(env AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1
       AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER)

# start NAME: a master and one tablet server; sets addr_NAME, ts_NAME.
start() {
  local name=$1 dir=$work/$1 pid t data pre=() m=() ts=()
  mkdir -p "$dir/logs"
  if [ "$name" = s3 ]; then
    dir=$work/s3c
    mkdir -p "$dir/logs" "$dir/wal" "$dir/cache"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/secret" &&
      echo >>"$dir/secret")
    data=s3://mica/bench
    pre=("${s3env[@]}")
    m=(--cluster-secret-file "$dir/secret")
    ts=(--cluster-secret-file "$dir/secret" --wal-dir "$dir/wal"
        --cache-dir "$dir/cache" --cache-size 1G)
  else
    data=$dir/data
    mkdir -p "$data"
  fi
  "${pre[@]}" "$bin/mica-master" --data-dir "$data" --address-file "$dir/master.addr" \
    --merge off --balancer off "${m[@]}" \
    >"$dir/logs/master.out" 2>"$dir/logs/master.log" &
  pid=$!
  bench_pids+=("$pid")
  bench_wait_file "$dir/master.addr" "$pid" 30 || die "$name master did not start; see $dir/logs"
  eval "addr_$name=$(cat "$dir/master.addr")"
  "${pre[@]}" "$bin/mica-tserver" --data-dir "$data" --master "$(cat "$dir/master.addr")" \
    --address-file "$dir/tserver.addr" "${ts[@]}" \
    >"$dir/logs/tserver.out" 2>"$dir/logs/tserver.log" &
  t=$!
  bench_pids+=("$t")
  eval "ts_$name=$t"
  bench_wait_file "$dir/tserver.addr" "$t" 30 || die "$name tserver did not start; see $dir/logs"
}

maddr() { eval "echo \$addr_$1"; }

start posix
start s3
echo "loading $records records into each cluster ($tablets tablets)" >&2
for name in posix s3; do
  "$bin/mica-bench" --master "$(maddr $name)" load --table ycsb --records "$records" \
    --tablets "$tablets" --threads 16 >>"$out/bench.log" 2>&1 ||
    die "load into $name failed; see $out/bench.log"
done

now_us() { echo $(( $(date +%s%N) / 1000 )); }

# split_round NAME R: a fresh table, then $splits splits, each timed.
split_round() {
  local name=$1 r=$2 m id i t0 t1 table=sp$2
  m=$(maddr "$name")
  "$bin/mica-bench" --master "$m" load --table "$table" --records 5000 --tablets 1 \
    --threads 8 >>"$out/bench.log" 2>&1 || die "split table load on $name failed"
  for ((i = 0; i < splits; i++)); do
    # The largest tablet: the first of the table (each split halves one).
    id=$("$bin/mica" --master "$m" tablets "$table" --format tsv | awk -F'\t' 'NR == 1 { print $1 }')
    t0=$(now_us)
    "$bin/mica" --master "$m" split "$id" >>"$out/bench.log" 2>&1 ||
      die "split of tablet $id on $name failed; see $out/bench.log"
    t1=$(now_us)
    echo "$name $r $((t1 - t0))" >>"$out/splits.txt"
  done
}

: >"$out/splits.txt"
: >"$out/c.txt"
for ((r = 1; r <= rounds; r++)); do
  for name in posix s3; do
    eval "t=\$ts_$name"
    c0=$(cpu_ticks "$t")
    "$bin/mica-bench" --master "$(maddr $name)" run --table ycsb --workload c \
      --records "$records" --threads "$threads" --ops 0 --duration "$seconds" \
      --json "$out/$name-c-$r.json" >>"$out/bench.log" 2>&1 ||
      die "$name C round $r failed; see $out/bench.log"
    c1=$(cpu_ticks "$t")
    echo "$name $r $((c1 - c0)) $hz" >>"$out/c.txt"
    echo "round $r C $name: $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_ops_s"]))' \
      "$out/$name-c-$r.json") ops/s" >&2
  done
  for name in posix s3; do split_round "$name" "$r"; done
done

python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
c = {}
for line in open(f"{out}/c.txt"):
    name, r, ticks, hz = line.split()
    j = json.load(open(f"{out}/{name}-c-{r}.json"))
    ops = j["throughput_ops_s"]
    cpu_us_op = int(ticks) / int(hz) * 1e6 / max(1, j["ops_counted"])
    c.setdefault(name, []).append((ops, cpu_us_op, j["all"]))
med = statistics.median
print("YCSB C, ops/s by round:")
for name in ("posix", "s3"):
    print(f"  {name}: " + ", ".join(f"{x[0]:,.0f}" for x in c[name]))
ratios = [s[0] / p[0] for p, s in zip(c["posix"], c["s3"])]
for name in ("posix", "s3"):
    v = c[name]
    print(f"  {name}: median {med(x[0] for x in v):,.0f} ops/s, tablet server "
          f"CPU {med(x[1] for x in v):.1f} us/op, p50 {med(x[2].get('p50_us', 0) for x in v):,.0f} us, "
          f"p99 {med(x[2].get('p99_us', 0) for x in v):,.0f} us")
print(f"  s3/posix per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
      f"median {med(ratios):.2f}")
s = {}
for line in open(f"{out}/splits.txt"):
    name, r, us = line.split()
    s.setdefault(name, []).append(int(us) / 1000.0)
print("mica split, ms:")
for name in ("posix", "s3"):
    v = s[name]
    print(f"  {name}: median {med(v):.1f}, min {min(v):.1f}, max {max(v):.1f} "
          f"over {len(v)} splits")
print(f"  s3/posix ratio of medians {med(s['s3']) / med(s['posix']):.2f}")
PY
