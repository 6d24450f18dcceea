#!/usr/bin/env bash
# bench/s3/run.sh: Mica with its data root on S3 against POSIX (issue 16;
# docs/benchmarks.md, "S3 data root against POSIX"). Two clusters on
# 127.0.0.1 run side by side, started and measured in the same run:
#   posix  a master and tablet servers A, B on --data-dir DIR (local)
#   s3     a master and tablet servers A, B, C on --data-dir s3://mica/bench
#          on a local s3rver (tools/s3-test-server); each server's commit
#          log in a local --wal-dir (the S3 log is not used here); A and B
#          with a 1 GiB disk cache (--cache-dir), C without one
# Every process serves /metrics, whose mica_s3_requests_total{kind} and
# mica_s3_request_seconds_total{kind} counters are summed over the s3
# cluster's processes before and after each measured step.
#
# Setup: the same YCSB table (--records records of 1000 bytes, pre-split
# into --tablets tablets) in both, every tablet moved to server A. Then
# --rounds rounds of the --steps below, in this order, the clusters
# interleaved inside each step (posix first in odd rounds, s3 first in
# even ones), the load average noted, and at the end of each round a wait
# (up to 30 s) until every tablet server is idle, so that one round's
# flushes and compactions do not run into the next round's reads:
#   c, a   YCSB C, then A, for --seconds with --threads threads: ops/s,
#          p50/p99, CPU of the tablet servers per op (/proc), S3 requests
#          per 1,000 operations
#   write  load --wrecords fresh records into a new one-tablet table
#          (16 threads): ops/s, and S3 requests per 1,000 writes
#   move   a new one-tablet table of --mrecords records, moved to a server
#          that never held it (posix: the other server; s3: B, with the disk
#          cache, then C, without), then --mops YCSB C reads (8 threads) on
#          the new owner right away: the first reads after a move. The
#          same reads again on s3 B show the cache-warm rate.
#   split  --splits manual splits of a fresh 5,000-record one-tablet table
#          (`mica split`, timed around the call, which returns once the
#          master has the daughters and they serve), S3 requests per split;
#          with --base-bin DIR also on a third cluster, s3base (a master and
#          one tablet server with a disk cache, on s3://mica/base), run by
#          the binaries in DIR (an older build), for before/after
# Before the rounds, YCSB C runs once on each cluster unmeasured, so that
# the measured rounds start with warm caches.
#
# usage: bench/s3/run.sh [--bin DIR] [--out DIR] [--records N] [--rounds N]
#                        [--seconds S] [--threads N] [--tablets N]
#                        [--splits N] [--wrecords N] [--mrecords N]
#                        [--mops N] [--base-bin DIR]
#                        [--steps c,a,write,move,split]
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
wrecords=20000
mrecords=20000
mops=4000
base_bin=
steps=c,a,write,move,split

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
    --wrecords) wrecords=$2; shift 2 ;;
    --mrecords) mrecords=$2; shift 2 ;;
    --mops) mops=$2; shift 2 ;;
    --base-bin) base_bin=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    -h|--help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
for p in mica-master mica-tserver mica-bench mica; do
  [ -x "$bin/$p" ] || die "$bin/$p not found (build it, or give --bin)"
done
command -v curl >/dev/null || die "curl not found (it reads /metrics)"

work=$(mktemp -d "${TMPDIR:-/tmp}/mica-s3bench.XXXXXX")
[ -n "$out" ] || out=$work/results
mkdir -p "$out"
out=$(cd "$out" && pwd)
cleanup() {
  bench_stop_all
  [ -f "$work/s3/pid" ] && "$src/tools/s3-test-server" stop "$work/s3" || true
  rm -rf "$work/posix" "$work/s3" "$work/s3c" "$work/s3base"
  rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_ticks() { # PID...: user + system ticks so far, summed
  local p t=0 v
  for p in "$@"; do
    v=$(awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' \
      "/proc/$p/stat")
    t=$((t + v))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)
loadavg() { cut -d' ' -f1 /proc/loadavg; }

line=$("$src/tools/s3-test-server" start "$work/s3" mica) ||
  die "the S3 server did not start (node, npm once; tools/install-deps)"
endpoint=${line%% *}
s3env=(env AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1
       AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER)

# start NAME SERVERS: a master and tablet servers A, B[, C]; sets
# addr_NAME (the master's RPC address), ts_NAME (tablet server pids),
# tsaddr_NAME_X (server X's RPC address) and http_NAME (every process's
# HTTP address, master first).
start() {
  local name=$1 n=$2 dir=$work/$1 pid data pre=() m=() ts=() i x b=${3:-$bin}
  local letters=(A B C) https=()
  if [ "$name" != posix ]; then
    [ "$name" = s3 ] && dir=$work/s3c
    mkdir -p "$dir"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/secret" &&
      echo >>"$dir/secret")
    data=s3://mica/bench
    [ "$name" = s3base ] && data=s3://mica/base
    pre=("${s3env[@]}")
    m=(--cluster-secret-file "$dir/secret")
  else
    data=$dir/data
    mkdir -p "$data"
  fi
  mkdir -p "$dir/logs"
  "${pre[@]}" "$b/mica-master" --data-dir "$data" --address-file "$dir/master.addr" \
    --http-listen 127.0.0.1:0 --http-address-file "$dir/master.http" \
    --merge off --balancer off "${m[@]}" \
    >"$dir/logs/master.out" 2>"$dir/logs/master.log" &
  pid=$!
  bench_pids+=("$pid")
  bench_wait_file "$dir/master.http" "$pid" 30 || die "$name master did not start; see $dir/logs"
  bench_wait_file "$dir/master.addr" "$pid" 30 || die "$name master did not start; see $dir/logs"
  eval "addr_$name=$(cat "$dir/master.addr")"
  https+=("$(cat "$dir/master.http")")
  local tpids=()
  for ((i = 0; i < n; i++)); do
    x=${letters[$i]}
    ts=()
    if [ "$name" != posix ]; then
      mkdir -p "$dir/wal-$x"
      ts=(--cluster-secret-file "$dir/secret" --wal-dir "$dir/wal-$x")
      if [ "$x" != C ]; then
        mkdir -p "$dir/cache-$x"
        ts+=(--cache-dir "$dir/cache-$x" --cache-size 1G)
      fi
    fi
    "${pre[@]}" "$b/mica-tserver" --data-dir "$data" --master "$(cat "$dir/master.addr")" \
      --address-file "$dir/ts-$x.addr" --http-listen 127.0.0.1:0 \
      --http-address-file "$dir/ts-$x.http" "${ts[@]}" \
      >"$dir/logs/ts-$x.out" 2>"$dir/logs/ts-$x.log" &
    pid=$!
    bench_pids+=("$pid")
    tpids+=("$pid")
    bench_wait_file "$dir/ts-$x.addr" "$pid" 30 || die "$name tserver $x did not start; see $dir/logs"
    bench_wait_file "$dir/ts-$x.http" "$pid" 30 || die "$name tserver $x did not start; see $dir/logs"
    eval "tsaddr_${name}_$x=$(cat "$dir/ts-$x.addr")"
    https+=("$(cat "$dir/ts-$x.http")")
  done
  eval "ts_$name=(${tpids[*]})"
  eval "http_$name=(${https[*]})"
  for ((i = 0; i < 300; i++)); do
    [ "$("$bin/mica" --master "$(cat "$dir/master.addr")" servers --format tsv 2>/dev/null |
        awk -F'\t' '$3 == "live"' | wc -l)" -ge "$n" ] && return 0
    sleep 0.1
  done
  die "not all $n tablet servers of $name registered; see $dir/logs"
}

maddr() { eval "echo \$addr_$1"; }
tsaddr() { eval "echo \$tsaddr_$1_$2"; }
cli() { local name=$1; shift; "$bin/mica" --master "$(maddr "$name")" "$@"; }

# s3snap LABEL: every s3 process's S3 counters, one line per process and
# kind: "LABEL PROCESS KIND REQUESTS SECONDS".
s3snap() {
  local label=$1 h i=0
  eval 'local hs=("${http_s3[@]}")'
  for h in "${hs[@]}"; do
    curl -s --max-time 10 "http://$h/metrics" | awk -v l="$label" -v p=$i '
      /^mica_s3_requests_total\{/ { split($0, a, "\""); n[a[2]] = $2 }
      /^mica_s3_request_seconds_total\{/ { split($0, a, "\""); s[a[2]] = $2 }
      END { for (k in n) print l, p, k, n[k], s[k] }' >>"$out/s3req.txt"
    i=$((i + 1))
  done
}

# move_to NAME TABLE X: moves TABLE's only tablet to server X (no-op if
# there); prints the milliseconds the move call took.
move_to() {
  local name=$1 table=$2 x=$3 id owner want t0 t1
  read -r id owner < <(cli "$name" tablets "$table" --format tsv |
    awk -F'\t' 'NR == 1 { print $1, $7 }')
  want=$(tsaddr "$name" "$x")
  if [ "$owner" = "$want" ]; then echo 0; return; fi
  t0=$(date +%s%N)
  cli "$name" move "$id" "$want" >>"$out/bench.log" 2>&1 ||
    die "move of tablet $id of $table on $name to $x failed; see $out/bench.log"
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}

# owner NAME TABLE: the letter of the server holding TABLE's first tablet.
owner_of() {
  local name=$1 table=$2 a x
  a=$(cli "$name" tablets "$table" --format tsv | awk -F'\t' 'NR == 1 { print $7 }')
  for x in A B C; do
    [ -n "$(eval "echo \${tsaddr_${name}_$x:-}")" ] || continue
    if [ "$(tsaddr "$name" $x)" = "$a" ]; then echo $x; fi
  done
}

bench_run() { # NAME JSON ARGS...: mica-bench against cluster NAME
  local name=$1 json=$2
  shift 2
  "$bin/mica-bench" --master "$(maddr "$name")" "$@" --json "$json" --quiet \
    >>"$out/bench.log" 2>&1 || die "mica-bench $* on $name failed; see $out/bench.log"
}

start posix 2
start s3 3
clusters=(posix s3)
if [ -n "$base_bin" ]; then
  for p in mica-master mica-tserver; do
    [ -x "$base_bin/$p" ] || die "$base_bin/$p not found"
  done
  start s3base 1 "$base_bin"
  clusters+=(s3base)
fi
echo "loading $records records into each cluster ($tablets tablets, all on A)" >&2
for name in posix s3; do
  bench_run "$name" "$out/$name-load.json" load --table ycsb --records "$records" \
    --tablets "$tablets" --threads 16
  while read -r id a; do
    [ "$a" = "$(tsaddr "$name" A)" ] && continue
    cli "$name" move "$id" "$(tsaddr "$name" A)" >>"$out/bench.log" 2>&1 ||
      die "move of ycsb tablet $id on $name failed"
  done < <(cli "$name" tablets ycsb --format tsv | awk -F'\t' '{ print $1, $7 }')
done

: >"$out/s3req.txt"
: >"$out/steps.txt" # ROUND STEP NAME FILE-OR-VALUE CPU-TICKS LOADAVG EXTRA

# ycsb NAME R W: YCSB workload W on cluster NAME for --seconds.
ycsb() {
  local name=$1 r=$2 w=$3 c0 c1 la
  eval 'local tp=("${ts_'"$name"'[@]}")'
  la=$(loadavg)
  [ "$name" = s3 ] && s3snap "$r-$w-0"
  c0=$(cpu_ticks "${tp[@]}")
  bench_run "$name" "$out/$name-$w-$r.json" run --table ycsb --workload "$w" \
    --records "$records" --threads "$threads" --ops 0 --duration "$seconds"
  c1=$(cpu_ticks "${tp[@]}")
  [ "$name" = s3 ] && s3snap "$r-$w-1"
  echo "$r $w $name $out/$name-$w-$r.json $((c1 - c0)) $la" >>"$out/steps.txt"
  echo "round $r $w $name: $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_ops_s"]))' \
    "$out/$name-$w-$r.json") ops/s (load average $la)" >&2
}

# writes NAME R: a fresh table loaded with --wrecords records.
writes() {
  local name=$1 r=$2 la
  la=$(loadavg)
  [ "$name" = s3 ] && s3snap "$r-write-0"
  bench_run "$name" "$out/$name-write-$r.json" load --table w$r --records "$wrecords" \
    --tablets 1 --threads 16
  [ "$name" = s3 ] && s3snap "$r-write-1"
  echo "$r write $name $out/$name-write-$r.json 0 $la" >>"$out/steps.txt"
}

# cold NAME R X TAG: move table mv$R to server X, then read from it.
cold() {
  local name=$1 r=$2 x=$3 tag=$4 ms la
  la=$(loadavg)
  ms=$(move_to "$name" "mv$r" "$x")
  [ "$name" = s3 ] && s3snap "$r-$tag-0"
  bench_run "$name" "$out/$name-$tag-$r.json" run --table "mv$r" --workload c \
    --records "$mrecords" --threads 8 --ops "$mops"
  [ "$name" = s3 ] && s3snap "$r-$tag-1"
  echo "$r $tag $name $out/$name-$tag-$r.json 0 $la $ms" >>"$out/steps.txt"
}

# moves NAME R: the cold-read step of round R on cluster NAME.
moves() {
  local name=$1 r=$2 o
  bench_run "$name" "$out/$name-mvload-$r.json" load --table "mv$r" --records "$mrecords" \
    --tablets 1 --threads 16
  o=$(owner_of "$name" "mv$r")
  if [ "$name" = posix ]; then
    if [ "$o" = A ]; then cold posix "$r" B move; else cold posix "$r" A move; fi
  else
    # B must never have held it before: park it on A first if needed.
    [ "$o" = B ] && move_to s3 "mv$r" A >/dev/null
    cold s3 "$r" B move
    cold s3 "$r" B warm # the same reads again, chunks on B's disk now
    cold s3 "$r" C move-nocache
  fi
}

# split_round NAME R: a fresh table, then $splits splits, each timed.
split_round() {
  local name=$1 r=$2 id i t0 t1 la table=sp$2
  bench_run "$name" "$out/$name-spload-$r.json" load --table "$table" --records 5000 \
    --tablets 1 --threads 8
  for ((i = 0; i < splits; i++)); do
    # The largest tablet: the first of the table (each split halves one).
    id=$(cli "$name" tablets "$table" --format tsv | awk -F'\t' 'NR == 1 { print $1 }')
    la=$(loadavg)
    [ "$name" = s3 ] && s3snap "$r-split$i-0"
    t0=$(date +%s%N)
    cli "$name" split "$id" >>"$out/bench.log" 2>&1 ||
      die "split of tablet $id on $name failed; see $out/bench.log"
    t1=$(date +%s%N)
    [ "$name" = s3 ] && s3snap "$r-split$i-1"
    echo "$r split$i $name - 0 $la $(((t1 - t0) / 1000))" >>"$out/steps.txt"
  done
}

has_step() { [[ ",$steps," == *",$1,"* ]]; }
echo "warming up: YCSB C for $seconds s on each cluster, unmeasured" >&2
(has_step c || has_step a) && for name in posix s3; do
  bench_run "$name" "$out/$name-warmup.json" run --table ycsb --workload c \
    --records "$records" --threads "$threads" --ops 0 --duration "$seconds"
done

# settle: until no tablet server of any cluster used more than 2% of a
# core over a second (background flushes and compactions done), at most
# 30 s.
settle() {
  local all=() name c0 c1 i
  for name in "${clusters[@]}"; do eval 'all+=("${ts_'"$name"'[@]}")'; done
  for ((i = 0; i < 30; i++)); do
    c0=$(cpu_ticks "${all[@]}")
    sleep 1
    c1=$(cpu_ticks "${all[@]}")
    [ $((c1 - c0)) -le $((hz * ${#all[@]} / 50)) ] && return 0
  done
  echo "servers still busy after 30 s; going on" >&2
}


for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then order=(posix s3); else order=(s3 posix); fi
  settle
  if has_step c; then for name in "${order[@]}"; do ycsb "$name" "$r" c; done; fi
  if has_step a; then for name in "${order[@]}"; do ycsb "$name" "$r" a; done; fi
  if has_step write; then for name in "${order[@]}"; do writes "$name" "$r"; done; fi
  if has_step move; then for name in "${order[@]}"; do moves "$name" "$r"; done; fi
  if has_step split; then
    if ((r % 2)); then sorder=("${clusters[@]}"); else
      sorder=(); for ((i = ${#clusters[@]} - 1; i >= 0; i--)); do sorder+=("${clusters[$i]}"); done
    fi
    settle
    for name in "${sorder[@]}"; do split_round "$name" "$r"; done
  fi
done

python3 "$here/report.py" "$out" "$hz"
