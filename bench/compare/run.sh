#!/usr/bin/env bash
# bench/compare/run.sh: Mica against etcd 3.4 with YCSB, and against
# Bigtable's published per-server figures, in one run on loopback.
#
# It starts, each in its own temporary directory and on 127.0.0.1 only:
#   - etcd (one member; every Put fsynced by its raft log),
#   - a 1-server Mica (mica-master + 1 mica-tserver; every write's WAL record
#     synced before it is acknowledged),
#   - a 3-server Mica (mica-master + 3 mica-tservers),
# loads the same records into each with mica-bench (same generator, threads
# and record size; only the backend differs), then runs YCSB A, B, C and E
# against each, interleaved (A on all three, then B on all three, ...) so a
# change in machine load hits every system alike, --runs times. It prints a
# table of medians (ops/s and p99 over all operations) with Mica/etcd ratios.
# Then it reproduces Bigtable's single-tablet-server benchmark (OSDI 2006,
# Figure 6) against the 1-server Mica. Every process it started is stopped
# by its pid at exit, also on error or Ctrl-C; the data is deleted unless
# --keep.
#
# Results: a markdown report on stdout and in OUT/report.md, every
# mica-bench JSON report in OUT/json/.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/compare/run.sh [options]

  --bin DIR         where mica-bench, mica-master, mica-tserver and mica are
                    (default: $MICA_BIN_DIR, else build/bin)
  --records N       YCSB records, 1 KB each (default 20000)
  --ops N           operations per YCSB run (default 20000)
  --threads N       client threads (default 16)
  --runs N          rounds of the YCSB runs; the table shows medians (default 3)
  --tablets N       Mica tables pre-split into N tablets (default 6)
  --bt-records N    rows of the Bigtable benchmark (default 20000)
  --bt-ops N        operations of its random read/write runs (default 20000)
  --workloads LIST  YCSB workloads, comma-separated (default a,b,c,e)
  --no-etcd         skip etcd (Mica only)
  --no-bigtable     skip the Bigtable part
  --out DIR         results directory (default: a new temporary directory)
  --keep            keep the data directories and logs
  -h, --help

Needs etcd unless --no-etcd (installed from Debian's etcd-server package
when missing) and python3 for the tables.

Example (the defaults take about 5 minutes on 2 cores):
  bench/compare/run.sh --bin build/bin --runs 3
  bench/compare/run.sh --bin build/bin --records 200000 --ops 200000 --threads 32
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
bin=${MICA_BIN_DIR:-$here/../../build/bin}
records=20000 ops=20000 threads=16 runs=3 tablets=6
bt_records=20000 bt_ops=20000 workloads=a,b,c,e
with_etcd=1 with_bigtable=1 out="" keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --records) records=$2; shift 2 ;;
    --ops) ops=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --tablets) tablets=$2; shift 2 ;;
    --bt-records) bt_records=$2; shift 2 ;;
    --bt-ops) bt_ops=$2; shift 2 ;;
    --workloads) workloads=$2; shift 2 ;;
    --no-etcd) with_etcd=0; shift ;;
    --no-bigtable) with_bigtable=0; shift ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "run.sh: $*" >&2; exit 1; }
for n in "$records" "$ops" "$threads" "$runs" "$tablets" "$bt_records" "$bt_ops"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive whole number"
done
for b in mica-bench mica-master mica-tserver mica; do
  [ -x "$bin/$b" ] || die "$bin/$b not found (build first, or pass --bin)"
done
command -v python3 >/dev/null || die "python3 is needed for the result tables"
if [ $with_etcd = 1 ] && ! command -v etcd >/dev/null; then
  # The peer comes from Debian's own package, as a user would install it.
  echo "run.sh: etcd not found; installing Debian's etcd-server" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  { $sudo apt-get install -y etcd-server >&2 && command -v etcd >/dev/null; } ||
    die "could not install etcd-server (apt-get install etcd-server, or --no-etcd)"
  # Debian starts the packaged service; this script runs its own instance.
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mica-compare.XXXXXX")
[ -n "$out" ] || out=$work/results
mkdir -p "$out/json"
out=$(cd "$out" && pwd)
pids=()

cleanup() {
  local pid
  # SIGTERM every process we started (a Mica server flushes its tablets),
  # then SIGKILL whatever is still there after 10 s.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 100; i++)); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $keep = 1 ]; then
    echo "run.sh: data and logs kept in $work" >&2
  else
    rm -rf "$work/etcd" "$work/mica1" "$work/mica3"
    rmdir "$work" 2>/dev/null || true # empty when --out pointed elsewhere
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_file() { # FILE PID SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# CPU time (clock ticks) the given processes have used so far.
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

# start_mica NAME SERVERS: a master and SERVERS tablet servers under
# $work/NAME; sets mica_addr and mica_pids.
start_mica() {
  local dir=$work/$1 n=$2 i pid
  mkdir -p "$dir/data" "$dir/logs"
  "$bin/mica-master" --data-dir "$dir/data" --listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --address-file "$dir/master.addr" --merge off \
    >"$dir/logs/master.out" 2>"$dir/logs/master.log" &
  pid=$!
  pids+=("$pid")
  mica_pids=("$pid")
  wait_file "$dir/master.addr" "$pid" 30 || die "$1 master did not start; see $dir/logs/master.log"
  mica_addr=$(cat "$dir/master.addr")
  for ((i = 1; i <= n; i++)); do
    "$bin/mica-tserver" --data-dir "$dir/data" --listen 127.0.0.1:0 --master "$mica_addr" \
      --address-file "$dir/tserver-$i.addr" \
      >"$dir/logs/tserver-$i.out" 2>"$dir/logs/tserver-$i.log" &
    pid=$!
    pids+=("$pid")
    mica_pids+=("$pid")
    wait_file "$dir/tserver-$i.addr" "$pid" 30 ||
      die "$1 tserver-$i did not start; see $dir/logs/tserver-$i.log"
  done
  for ((i = 0; i < 300; i++)); do
    [ "$("$bin/mica" --master "$mica_addr" servers --format tsv 2>/dev/null |
      awk -F'\t' '$3 == "live"' | wc -l)" -ge "$n" ] && return 0
    sleep 0.1
  done
  die "$1: not all $n tablet servers registered; see $dir/logs"
}

# start_etcd: one member under $work/etcd; sets etcd_addr.
start_etcd() {
  local dir=$work/etcd client peer pid i
  mkdir -p "$dir"
  client=$(free_port)
  peer=$(free_port)
  etcd --name compare --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "compare=http://127.0.0.1:$peer" \
    >"$dir/etcd.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  etcd_pids=("$pid")
  etcd_addr=127.0.0.1:$client
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || die "etcd exited; see $dir/etcd.log"
    curl -fsS "http://$etcd_addr/health" 2>/dev/null | grep -q '"true"' && return 0
    sleep 0.1
  done
  die "etcd did not become healthy; see $dir/etcd.log"
}

# bench SYSTEM NAME ARGS...: one mica-bench phase against SYSTEM, JSON to
# $out/json/SYSTEM-NAME.json, the CPU time the system's server processes
# spent meanwhile ("ticks hz") to SYSTEM-NAME.cpu, text appended to
# $out/bench.log.
bench() {
  local sys=$1 name=$2 target spids c0 c1
  shift 2
  case $sys in
    etcd) target=(--etcd "$etcd_addr"); spids=("${etcd_pids[@]}") ;;
    mica1) target=(--master "$mica1_addr"); spids=("${mica1_pids[@]}") ;;
    mica3) target=(--master "$mica3_addr"); spids=("${mica3_pids[@]}") ;;
  esac
  echo "== $sys $name: mica-bench $* ${target[*]}" >>"$out/bench.log"
  c0=$(cpu_ticks "${spids[@]}")
  if ! "$bin/mica-bench" "$@" "${target[@]}" --threads "$threads" --quiet \
      --json "$out/json/$sys-$name.json" >>"$out/bench.log" 2>&1; then
    tail -20 "$out/bench.log" >&2
    die "mica-bench failed against $sys ($name); see $out/bench.log"
  fi
  c1=$(cpu_ticks "${spids[@]}")
  echo "$((c1 - c0)) $hz" >"$out/json/$sys-$name.cpu"
  printf '  %-6s %-14s %s ops/s\n' "$sys" "$name" \
    "$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_ops_s"]))' \
      "$out/json/$sys-$name.json")" >&2
}

systems=(mica1)
[ $with_etcd = 1 ] && systems+=(etcd)
systems+=(mica3)

echo "run.sh: work directory $work, results in $out" >&2
start_mica mica1 1
mica1_addr=$mica_addr mica1_pids=("${mica_pids[@]}")
start_mica mica3 3
mica3_addr=$mica_addr mica3_pids=("${mica_pids[@]}")
[ $with_etcd = 1 ] && start_etcd

started=$(date +%s)
echo "loading $records records into ${systems[*]}" >&2
for sys in "${systems[@]}"; do
  bench "$sys" load load --workload a --records "$records" --tablets "$tablets"
done
# Where the tablets ended up (column 7 is the serving address), for the
# report: a 3-server run that left every tablet on one server would
# measure one server.
spread=""
for sys in mica1 mica3; do
  addr_var=${sys}_addr
  "$bin/mica" --master "${!addr_var}" tablets usertable --format tsv >"$out/tablets-$sys.tsv"
  spread+="$sys: $(cut -f7 "$out/tablets-$sys.tsv" | sort | uniq -c | awk '{print $1}' | paste -sd/ -) tablets per server; "
done
IFS=, read -r -a wls <<<"$workloads"
for ((r = 1; r <= runs; r++)); do
  echo "round $r of $runs" >&2
  for w in "${wls[@]}"; do
    for sys in "${systems[@]}"; do
      bench "$sys" "$w-$r" run --workload "$w" --records "$records" --ops "$ops"
    done
  done
done

if [ $with_bigtable = 1 ]; then
  echo "Bigtable per-server benchmark against mica1" >&2
  bt=(--table bigtable --records "$bt_records")
  for ((r = 1; r <= runs; r++)); do
    # Sequential writes create the rows the other runs read, as in the
    # paper; later rounds overwrite them.
    bench mica1 "bt-seqwrite-$r" load --workload seqwrite "${bt[@]}" --tablets 1
    bench mica1 "bt-randwrite-$r" run --workload randwrite "${bt[@]}" --ops "$bt_ops"
    bench mica1 "bt-seqread-$r" run --workload seqread "${bt[@]}" --ops "$bt_records"
    bench mica1 "bt-randread-$r" run --workload randread "${bt[@]}" --ops "$bt_ops"
    bench mica1 "bt-scan-$r" run --workload scan "${bt[@]}" --ops $((bt_records / 100 + 1))
  done
fi
elapsed=$(($(date +%s) - started))

python3 "$here/report.py" --json "$out/json" --runs "$runs" --workloads "$workloads" \
  --systems "$(IFS=,; echo "${systems[*]}")" --bigtable "$with_bigtable" \
  --command "bench/compare/run.sh --records $records --ops $ops --threads $threads --runs $runs --tablets $tablets --bt-records $bt_records --bt-ops $bt_ops --workloads $workloads" \
  --setup "records=$records (1 KB) ops=$ops threads=$threads tablets=$tablets runs=$runs; $(nproc) cores; ${spread}${elapsed}s" \
  | tee "$out/report.md"
