#!/usr/bin/env bash
# bench/tls/run.sh: what TLS and bearer tokens cost (issue 14;
# docs/benchmarks.md, "TLS and tokens"). Two Mica clusters on 127.0.0.1,
# each a master and one tablet server, run side by side:
#   plain  plaintext, no tokens file (client calls open)
#   tls    TLS on every listener and channel (certificates from
#          tools/mica-certs) and a tokens file; mica-bench runs with --ca
#          and a write token (the load with an admin token)
# Both get the same two tables (pre-split into --tablets tablets, --records
# records of 1000 bytes each): "ycsb" with YCSB's hashed keys for C, "bt"
# with keys in record order for randread and randwrite. Then, for each round, for each workload (randread
# = Get, randwrite = durable Put, c = YCSB C), plain then tls: mica-bench run
# for --seconds with --threads threads (one call in flight each). The CPU
# time the cluster's processes (master + tablet server) used during each
# run is read from /proc. report.py prints medians over rounds and the
# ratios.
#
# usage: bench/tls/run.sh [--bin DIR] [--out DIR] [--records N] [--rounds N]
#                         [--seconds S] [--threads N] [--tablets N]
#                         [--workloads "randread randwrite c"] [--perf W]
# --perf W: after the rounds, one more run of workload W on each cluster
# with `perf record -g` on its tablet server; the top of `perf report`
# (by shared object, and by symbol) goes to OUT/perf-NAME-W.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
src=$(cd "$here/../.." && pwd)
bin=$src/build/bin
out=
records=50000
rounds=3
seconds=8
threads=64
tablets=4
workloads="randread randwrite c"
perf_w=

die() { echo "bench/tls/run.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --tablets) tablets=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --perf) perf_w=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
for p in mica-master mica-tserver mica-bench mica; do
  [ -x "$bin/$p" ] || die "$bin/$p not found (build it, or give --bin)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mica-tlsbench.XXXXXX")
[ -n "$out" ] || out=$work/results
mkdir -p "$out"
out=$(cd "$out" && pwd)
cleanup() {
  bench_stop_all
  rm -rf "$work/plain" "$work/tls" "$work/certs" "$work/tokens"
  rmdir "$work" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU ticks (user + system) the given live processes have used so far.
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' \
      "/proc/$pid/stat")
    total=$((total + t))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)
# CPU ticks of this shell's reaped children (mica-bench, the client).
child_ticks() {
  awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[14] + f[15] }' "/proc/$$/stat"
}

"$src/tools/mica-certs" "$work/certs" >/dev/null
# Random tokens (never printed): an admin one for the load, a write one
# for the runs.
admin_tok=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
write_tok=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
umask 077
printf '%s bench-admin admin\n%s bench-write write\n' "$admin_tok" "$write_tok" \
  >"$work/tokens"
umask 022

# start NAME: a master and one tablet server under $work/NAME
# (bench/lib.sh); sets addr_NAME and pids_NAME.
start() {
  local name=$1 sec=() m=()
  bench_cli_args=()
  if [ "$name" = tls ]; then
    sec=(--tls-cert "$work/certs/server.pem" --tls-key "$work/certs/server.key"
         --tls-ca "$work/certs/ca.pem")
    m=(--tokens "$work/tokens")
    bench_cli_args=(--ca "$work/certs/ca.pem")
  fi
  MICA_TOKEN=$admin_tok bench_mica "$work/$name" 1 --merge off --balancer off \
    "${sec[@]}" "${m[@]}" -- "${sec[@]}"
  eval "addr_$name=\$bench_addr"
  eval "pids_$name=(\"\${bench_mica_pids[@]}\")"
}

# bench NAME ARGS...: mica-bench against cluster NAME with its credentials.
bench() {
  local name=$1 m
  shift
  eval "m=\$addr_$name"
  if [ "$name" = tls ]; then
    MICA_TOKEN=${tok:-$write_tok} "$bin/mica-bench" --master "$m" \
      --ca "$work/certs/ca.pem" "$@"
  else
    "$bin/mica-bench" --master "$m" "$@"
  fi
}

start plain
start tls
echo "loading $records records into each cluster ($tablets tablets)" >&2
for name in plain tls; do
  # The tablet server registers within a heartbeat; the load retries
  # UNAVAILABLE meanwhile.
  # Two tables: YCSB's hashed keys for C, keys in record order for the
  # Bigtable-style randread and randwrite.
  tok=$admin_tok bench "$name" load --table ycsb --records "$records" --tablets "$tablets" \
    --threads 16 >>"$out/bench.log" 2>&1 || die "load into $name failed; see $out/bench.log"
  tok=$admin_tok bench "$name" load --table bt --workload randread --records "$records" \
    --tablets "$tablets" --threads 16 >>"$out/bench.log" 2>&1 ||
    die "load into $name failed; see $out/bench.log"
done

for ((r = 1; r <= rounds; r++)); do
  for w in $workloads; do
    for name in plain tls; do
      eval "p=(\"\${pids_$name[@]}\")"
      c0=$(cpu_ticks "${p[@]}")
      k0=$(child_ticks)
      table=bt
      [ "$w" = c ] && table=ycsb
      bench "$name" run --table "$table" --workload "$w" --records "$records" --threads "$threads" \
        --ops 0 --duration "$seconds" --json "$out/$name-$w-$r.json" \
        >>"$out/bench.log" 2>&1 || die "$name $w round $r failed; see $out/bench.log"
      c1=$(cpu_ticks "${p[@]}")
      k1=$(child_ticks)
      echo "$((c1 - c0)) $hz $((k1 - k0))" >"$out/$name-$w-$r.cpu"
      echo "round $r $w $name: $(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_ops_s"]))' \
        "$out/$name-$w-$r.json") ops/s" >&2
    done
  done
done
python3 "$here/report.py" "$out" "$rounds" $workloads

if [ -n "$perf_w" ]; then
  command -v perf >/dev/null || die "--perf: perf not found"
  table=bt
  [ "$perf_w" = c ] && table=ycsb
  for name in plain tls; do
    eval "p=(\"\${pids_$name[@]}\")"
    perf record -g -o "$out/perf-$name.data" -p "${p[1]}" -- sleep "$seconds" \
      >>"$out/bench.log" 2>&1 &
    perf_pid=$!
    bench "$name" run --table "$table" --workload "$perf_w" --records "$records" \
      --threads "$threads" --ops 0 --duration "$seconds" --json "$out/perf-$name.json" \
      >>"$out/bench.log" 2>&1
    wait "$perf_pid"
    # The reports in full first, then their tops (head would cut a pipe).
    perf report -i "$out/perf-$name.data" --no-children --sort dso --stdio -g none \
      >"$out/perf-$name.dso" 2>/dev/null || true
    perf report -i "$out/perf-$name.data" --no-children --sort dso,sym --stdio -g none \
      >"$out/perf-$name.sym" 2>/dev/null || true
    {
      echo "# perf: $name tablet server during $perf_w, by shared object"
      awk '!/^#/ && NF' "$out/perf-$name.dso" | awk 'NR <= 15'
      echo "# by symbol"
      awk '!/^#/ && NF' "$out/perf-$name.sym" | awk 'NR <= 40'
      echo "# top symbols of libcrypto and libssl"
      awk '!/^#/ && NF && /libcrypto|libssl/' "$out/perf-$name.sym" | awk 'NR <= 15'
      echo "# gRPC's TLS layer (secure endpoint, TSI frame protector, SSL glue)"
      awk '!/^#/ && NF && /secure_endpoint|tsi_|[Ss]sl_|SslTransport/' \
        "$out/perf-$name.sym" | awk 'NR <= 15'
      awk '!/^#/ && NF && /secure_endpoint|tsi_|[Ss]sl_|SslTransport/ { s += $1 }
           END { printf "# sum of the above gRPC TLS symbols: %.2f%%\n", s }' "$out/perf-$name.sym"
      awk '!/^#/ && NF && /libcrypto|libssl/ { s += $1 }
           END { printf "# sum of libcrypto and libssl: %.2f%%\n", s }' "$out/perf-$name.sym"
    } >"$out/perf-$name-$perf_w.txt"
    rm -f "$out/perf-$name.sym" "$out/perf-$name.data"
    echo "perf report: $out/perf-$name-$perf_w.txt" >&2
  done
  # Per operation: each shared object's samples (the event count times its
  # share) divided by the operations of that run, plain against TLS.
  python3 "$here/report.py" --perf "$out" | tee "$out/perf-per-op-$perf_w.txt"
  rm -f "$out/perf-plain.dso" "$out/perf-tls.dso"
fi
