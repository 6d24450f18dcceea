#!/usr/bin/env bash
# bench/compare/run.sh: Mica against etcd 3.4 and PostgreSQL 15 with YCSB,
# beside the transport's own echo ceiling, and against Bigtable's published
# per-server figures, in one run on loopback.
#
# It starts, each in its own temporary directory and on 127.0.0.1 only:
#   - etcd (one member; every Put fsynced by its raft log),
#   - PostgreSQL 15 (bench/compare/postgres.sh: Debian's binaries, fsync and
#     synchronous_commit on, so every upsert's commit record is flushed
#     before it is acknowledged; one connection per client thread),
#   - a 1-server Mica (mica-master + 1 mica-tserver; every write's WAL record
#     synced before it is acknowledged; --block-cache and --compression are
#     passed to the tablet servers),
#   - a 3-server Mica (mica-master + 3 mica-tservers), unless --no-mica3,
#   - mica-rpc-bench --serve: the RPC transport's echo server,
# loads the same records into each store with mica-bench (same generator,
# threads and record size; only the backend differs), then runs YCSB A, B,
# C and E against each, interleaved (A on all, then B on all, ...) so a
# change in machine load hits every system alike, --runs times. Each round
# also measures the echo rate at the same concurrency (--threads calls in
# flight) and payload (the record size): that is the most any read-only
# workload can reach through Mica's transport on this machine. It prints a
# table of medians (ops/s, p99 over all operations, server CPU per
# operation) with Mica's ratios against etcd, PostgreSQL and the echo
# ceiling. Then it reproduces Bigtable's single-tablet-server benchmark
# (OSDI 2006, Figure 6) against the 1-server Mica. Every process it started
# is stopped by its pid at exit, also on error or Ctrl-C; the data is
# deleted unless --keep.
#
# etcd's workload E is capped at --etcd-e-seconds (default 60) per run:
# etcd 3.4 answers a Range with a limit only after counting every key up to
# the range's end (the response's `count` field), so each short scan costs
# time in proportion to the whole table, and at 200,000 records a run of E
# takes hours. Its ops/s over the capped time is still its rate; the cap
# only keeps the run finite. At 1,000,000 records most of its scans pass
# mica-bench's 10 s deadline: the run is kept with its errors counted.
#
# Results: a markdown report on stdout and in OUT/report.md, every
# mica-bench JSON report in OUT/json/.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/compare/run.sh [options]

  --bin DIR         where mica-bench, mica-master, mica-tserver, mica and
                    mica-rpc-bench are
                    (default: $MICA_BIN_DIR, else build/bin)
  --records N       YCSB records, 1 KB each (default 20000); 1000000 makes
                    1 GB, far more than the block cache
  --ops N           operations per YCSB run (default 20000)
  --threads N       client threads (default 16)
  --runs N          rounds of the YCSB runs; the table shows medians (default 3)
  --tablets N       Mica tables pre-split into N tablets (default 6)
  --bt-records N    rows of the Bigtable benchmark (default 20000)
  --bt-ops N        operations of its random read/write runs (default 20000)
  --workloads LIST  YCSB workloads, comma-separated (default a,b,c,e)
  --block-cache SIZE tablet servers' block cache (default 64M)
  --compression C   tablet servers' SSTable compression: lz4, zstd or none
                    (default: the server's, lz4)
  --etcd-e-seconds S cap of each etcd workload E run (default 60): etcd 3.4
                    counts every key up to a Range's end, so a scan costs
                    time in proportion to the table and E would not end
  --echo-seconds S  measuring time of each echo run (default 5)
  --no-etcd         skip etcd
  --no-postgres     skip PostgreSQL
  --no-mica3        skip the 3-server Mica
  --no-echo         skip the transport's echo ceiling
  --no-bigtable     skip the Bigtable part
  --until TIME      start no new round that would end after TIME (anything
                    `date -d` reads, e.g. 19:30 or '2026-12-03 19:30 UTC'),
                    judged by the last round's length; the first round always
                    runs, and the report covers the rounds run (default: all
                    --runs rounds)
  --perf-c          after the rounds, one more YCSB C run on the 1-server
                    Mica with `perf record -e cpu-clock -g` attached to its
                    tablet server (not counted in the tables), to
                    OUT/perf-c.data with its reports in OUT/perf-c-*.txt
  --out DIR         results directory (default: a new temporary directory)
  --keep            keep the data directories and logs
  -h, --help

Needs etcd unless --no-etcd (installed from Debian's etcd-server package
when missing), PostgreSQL 15 unless --no-postgres (Debian's postgresql-15;
run as root, the script runs it as the user nobody), and python3 for the
tables.

Example (the defaults take several minutes on 2 cores):
  bench/compare/run.sh --bin build/bin --runs 3
  # The size that does not fit the caches (1 GB of records, 64 MiB block
  # cache); each system's load takes 3-10 min on 2 shared cores, etcd's
  # rounds ~8 min each, Mica's and PostgreSQL's ~4 min together:
  bench/compare/run.sh --bin build/bin --records 1000000 --ops 100000 \
      --block-cache 64M --runs 3 --no-mica3 --no-bigtable --perf-c --until 19:30
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
cmdline="bench/compare/run.sh $*"
bin=${MICA_BIN_DIR:-$here/../../build/bin}
records=20000 ops=20000 threads=16 runs=3 tablets=6
bt_records=20000 bt_ops=20000 workloads=a,b,c,e
block_cache=64M compression="" etcd_e_seconds=60 echo_seconds=5
with_etcd=1 with_pg=1 with_mica3=1 with_echo=1 with_bigtable=1 out="" keep=0
until="" until_s=0 perf_c=0
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
    --block-cache) block_cache=$2; shift 2 ;;
    --compression) compression=$2; shift 2 ;;
    --etcd-e-seconds) etcd_e_seconds=$2; shift 2 ;;
    --echo-seconds) echo_seconds=$2; shift 2 ;;
    --no-etcd) with_etcd=0; shift ;;
    --no-postgres) with_pg=0; shift ;;
    --no-mica3) with_mica3=0; shift ;;
    --no-echo) with_echo=0; shift ;;
    --no-bigtable) with_bigtable=0; shift ;;
    --until) until=$2; shift 2 ;;
    --perf-c) perf_c=1; shift ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "run.sh: $*" >&2; exit 1; }
for n in "$records" "$ops" "$threads" "$runs" "$tablets" "$bt_records" "$bt_ops" \
    "$etcd_e_seconds" "$echo_seconds"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "'$n' is not a positive whole number"
done
if [ -n "$until" ]; then
  until_s=$(date -d "$until" +%s 2>/dev/null) || die "--until: '$until' is not a time date(1) reads"
fi
if [ $perf_c = 1 ] && ! command -v perf >/dev/null; then
  die "--perf-c needs perf (apt-get install linux-perf)"
fi
[[ $block_cache =~ ^[0-9]+[KMGkmg]?$ ]] || die "--block-cache: '$block_cache' is not a size (64M)"
case $compression in
  "" | lz4 | zstd | none) ;;
  *) die "--compression: '$compression' is not lz4, zstd or none" ;;
esac
tools=(mica-bench mica-master mica-tserver mica)
[ $with_echo = 1 ] && tools+=(mica-rpc-bench)
for b in "${tools[@]}"; do
  [ -x "$bin/$b" ] || die "$bin/$b not found (build first, or pass --bin)"
done
pg_bin=${PG_BIN_DIR:-/usr/lib/postgresql/15/bin}
if [ $with_pg = 1 ] && ! [ -x "$pg_bin/postgres" ]; then
  die "$pg_bin/postgres not found (apt-get install postgresql-15, or --no-postgres)"
fi
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

cleanup() {
  # SIGTERM every process we started (a Mica server flushes its tablets),
  # then SIGKILL whatever is still there after 10 s.
  bench_stop_all
  if [ $keep = 1 ]; then
    echo "run.sh: data and logs kept in $work" >&2
  else
    rm -rf "$work/etcd" "$work/mica1" "$work/mica3" "$work/pg" "$work/echo"
    rmdir "$work" 2>/dev/null || true # empty when --out pointed elsewhere
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU time (clock ticks) the given processes have used so far, with that
# of their children: the live ones' own time and the reaped ones' (fields
# 16 and 17). PostgreSQL serves each connection in a child process that
# exits with the connection; Mica and etcd have no children.
cpu_ticks() {
  local pid total=0 t
  for pid in "$@"; do
    t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)
    total=$((total + t))
    # Comm (field 2) may hold spaces; the fields after its ')' are fixed.
    # A process may exit while cat reads /proc: its failure is no error.
    t=$(cat /proc/[0-9]*/stat 2>/dev/null |
      awk -v p="$pid" '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " ");
                         if (f[2] == p) n += f[12] + f[13] } END { print n + 0 }' || true)
    total=$((total + t))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

# start_mica NAME SERVERS: a master and SERVERS tablet servers under
# $work/NAME (bench/lib.sh); sets mica_addr and mica_pids.
start_mica() {
  bench_mica "$work/$1" "$2" --merge off -- --block-cache "$block_cache" \
    ${compression:+--compression "$compression"}
  mica_addr=$bench_addr
  mica_pids=("${bench_mica_pids[@]}")
}

# start_etcd: one member under $work/etcd; sets etcd_addr.
start_etcd() {
  local dir=$work/etcd client peer pid i
  mkdir -p "$dir"
  client=$(bench_free_port)
  peer=$(bench_free_port)
  etcd --name compare --data-dir "$dir/data" \
    --listen-client-urls "http://127.0.0.1:$client" \
    --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "compare=http://127.0.0.1:$peer" \
    --quota-backend-bytes 8589934592 \
    >"$dir/etcd.log" 2>&1 &
  pid=$!
  bench_pids+=("$pid")
  etcd_pids=("$pid")
  etcd_addr=127.0.0.1:$client
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || die "etcd exited; see $dir/etcd.log"
    curl -fsS "http://$etcd_addr/health" 2>/dev/null | grep -q '"true"' && return 0
    sleep 0.1
  done
  die "etcd did not become healthy; see $dir/etcd.log"
}

# start_pg: PostgreSQL 15 under $work/pg (bench/compare/postgres.sh); sets
# pg_uri and pg_pids.
start_pg() {
  local dir=$work/pg port pid i
  mkdir -p "$dir"
  # Run as root, postgres.sh runs PostgreSQL as nobody, which must reach
  # its directory: let others traverse (not list) the work directory.
  chmod 0711 "$work" "$dir"
  port=$(bench_free_port)
  PG_BIN_DIR=$pg_bin "$here/postgres.sh" "$dir" "$port" >"$dir/postgres.log" 2>&1 &
  pid=$!
  bench_pids+=("$pid")
  pg_pids=("$pid")
  pg_uri=postgresql://mica@127.0.0.1:$port/postgres
  for ((i = 0; i < 600; i++)); do
    kill -0 "$pid" 2>/dev/null || die "PostgreSQL exited; see $dir/postgres.log"
    grep -qs "ready to accept connections" "$dir/postgres.log" && return 0
    sleep 0.1
  done
  die "PostgreSQL did not start; see $dir/postgres.log"
}

# pg_settle: waits (up to 10 s) until the backends of mica-bench's
# connections have exited and been reaped, so their CPU time is in the
# postmaster's children's time when cpu_ticks reads it (a backend reaped
# between cpu_ticks's two reads would be missed). Client backends are the
# children whose title names their client's address; an exited one not yet
# reaped is a zombie (state Z), whose title is already gone.
pg_settle() {
  local i busy
  for ((i = 0; i < 100; i++)); do
    busy=$(awk -v p="${pg_pids[0]}" '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " ");
        if (f[2] == p) { if (f[1] == "Z") z = 1; else print "/proc/" $1 "/cmdline" } }
        END { if (z) print "zombie" }' /proc/[0-9]*/stat 2>/dev/null || true)
    case $busy in
      *zombie*) ;;
      *) grep -qs '127\.0\.0\.1(' $busy /dev/null || return 0 ;;
    esac
    sleep 0.1
  done
}

# start_echo: the transport's echo server (mica-rpc-bench --serve) with as
# many polling threads as a tablet server (one per core); sets echo_addr
# and echo_pids.
start_echo() {
  local dir=$work/echo pid i
  mkdir -p "$dir"
  "$bin/mica-rpc-bench" --serve=127.0.0.1:0 >"$dir/addr" 2>"$dir/log" &
  pid=$!
  bench_pids+=("$pid")
  echo_pids=("$pid")
  bench_wait_file "$dir/addr" "$pid" 30 || die "mica-rpc-bench --serve did not start; see $dir/log"
  echo_addr=$(head -1 "$dir/addr")
}

# echo_run ROUND: the echo rate at --threads calls in flight with a
# payload of one record, in both client shapes mica-rpc-bench has (one
# blocking call per thread, as mica-bench's workers; and one thread
# keeping the calls in flight), to $out/json/echo-MODE-ROUND.txt and the
# echo server's CPU meanwhile to .cpu.
echo_run() {
  local r=$1 mode c0 c1 line
  for mode in threads async; do
    c0=$(cpu_ticks "${echo_pids[@]}")
    "$bin/mica-rpc-bench" --connect "$echo_addr" --modes "$mode" --payload "$record_bytes" \
      --inflight "$threads" --seconds "$echo_seconds" >"$out/json/echo-$mode-$r.txt" 2>>"$out/bench.log" ||
      die "mica-rpc-bench failed; see $out/bench.log"
    c1=$(cpu_ticks "${echo_pids[@]}")
    echo "$((c1 - c0)) $hz" >"$out/json/echo-$mode-$r.cpu"
    line=$(grep -v '^#' "$out/json/echo-$mode-$r.txt" | head -1)
    printf '  %-6s %-14s %s\n' echo "$mode-$r" "$line" >&2
  done
}

# load_mark LABEL: the machine's load averages (1, 5, 15 min) now, with
# the time and LABEL, to $out/loadavg.log; a background sampler adds a
# line every 10 s ("sample"). The report gives their range: on a shared
# machine the other work running beside the benchmark is part of the result.
load_mark() {
  echo "$(date +%s) $(cut -d' ' -f1-3 /proc/loadavg) $1" >>"$out/loadavg.log"
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
    pg) target=(--postgres "$pg_uri"); spids=("${pg_pids[@]}") ;;
    # Mica's server CPU is the tablet servers' (the pids after the
    # master's): they serve every operation; the master only takes
    # heartbeats, and the client library caches where tablets are.
    mica1) target=(--master "$mica1_addr"); spids=("${mica1_pids[@]:1}") ;;
    mica3) target=(--master "$mica3_addr"); spids=("${mica3_pids[@]:1}") ;;
  esac
  echo "== $sys $name: mica-bench $* ${target[*]}" >>"$out/bench.log"
  load_mark "start $sys-$name"
  c0=$(cpu_ticks "${spids[@]}")
  if ! "$bin/mica-bench" "$@" "${target[@]}" --threads "$threads" --quiet \
      --json "$out/json/$sys-$name.json" >>"$out/bench.log" 2>&1; then
    tail -20 "$out/bench.log" >&2
    # mica-bench exits 1 when any operation failed, and still writes its
    # report: a run with failures (etcd's capped E, whose scans can pass
    # the client's deadline) is kept, its errors counted in the report.
    # Without a report the run itself failed.
    [ -s "$out/json/$sys-$name.json" ] ||
      die "mica-bench failed against $sys ($name); see $out/bench.log"
    echo "run.sh: $sys $name had failed operations; kept (see $out/bench.log)" >&2
  fi
  [ "$sys" = pg ] && pg_settle
  c1=$(cpu_ticks "${spids[@]}")
  load_mark "end $sys-$name"
  echo "$((c1 - c0)) $hz" >"$out/json/$sys-$name.cpu"
  printf '  %-6s %-14s %s ops/s\n' "$sys" "$name" \
    "$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["throughput_ops_s"]))' \
      "$out/json/$sys-$name.json")" >&2
}

systems=(mica1)
[ $with_etcd = 1 ] && systems+=(etcd)
[ $with_pg = 1 ] && systems+=(pg)
[ $with_mica3 = 1 ] && systems+=(mica3)
record_bytes=1000 # mica-bench's default record: 10 fields of 100 bytes

echo "run.sh: work directory $work, results in $out" >&2
start_mica mica1 1
mica1_addr=$mica_addr mica1_pids=("${mica_pids[@]}")
if [ $with_mica3 = 1 ]; then
  start_mica mica3 3
  mica3_addr=$mica_addr mica3_pids=("${mica_pids[@]}")
fi
if [ $with_etcd = 1 ]; then start_etcd; fi
if [ $with_pg = 1 ]; then start_pg; fi
if [ $with_echo = 1 ]; then start_echo; fi

( while :; do load_mark sample; sleep 10; done ) &
bench_pids+=("$!")
started=$(date +%s)
echo "loading $records records into ${systems[*]}" >&2
load_mark load-start
for sys in "${systems[@]}"; do
  bench "$sys" load load --workload a --records "$records" --tablets "$tablets"
done
load_mark load-end
# Where the tablets ended up (column 7 is the serving address), for the
# report: a 3-server run that left every tablet on one server would
# measure one server.
spread=""
micas=(mica1)
[ $with_mica3 = 1 ] && micas+=(mica3)
for sys in "${micas[@]}"; do
  addr_var=${sys}_addr
  "$bin/mica" --master "${!addr_var}" tablets usertable --format tsv >"$out/tablets-$sys.tsv"
  spread+="$sys: $(cut -f7 "$out/tablets-$sys.tsv" | sort | uniq -c | awk '{print $1}' | paste -sd/ -) tablets per server; "
done
IFS=, read -r -a wls <<<"$workloads"
load_mark rounds-start
for ((r = 1; r <= runs; r++)); do
  if [ $r -gt 1 ] && [ "$until_s" -gt 0 ]; then
    now=$(date +%s)
    if [ $((now + (now - round_started))) -gt "$until_s" ]; then
      echo "run.sh: another round would end after --until $until; stopping after $((r - 1)) of $runs rounds" >&2
      runs=$((r - 1))
      break
    fi
  fi
  round_started=$(date +%s)
  echo "round $r of $runs" >&2
  for w in "${wls[@]}"; do
    for sys in "${systems[@]}"; do
      cap=()
      # etcd counts every key to a Range's end: cap E's time (see the top).
      [ "$sys$w" = etcde ] && cap=(--duration "$etcd_e_seconds")
      bench "$sys" "$w-$r" run --workload "$w" --records "$records" --ops "$ops" "${cap[@]}"
    done
  done
  if [ $with_echo = 1 ]; then echo_run "$r"; fi
done
load_mark rounds-end

if [ $perf_c = 1 ]; then
  # One more C run, not counted in the tables (perf's sampling costs the
  # server a little): where the tablet server's CPU goes under reads.
  echo "perf record of mica1's tablet server during YCSB C" >&2
  perf record -e cpu-clock -g -p "${mica1_pids[1]}" -o "$out/perf-c.data" \
    >"$out/perf-c.log" 2>&1 &
  perf_pid=$!
  bench_pids+=("$perf_pid")
  sleep 1
  bench mica1 c-perf run --workload c --records "$records" --ops "$ops"
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  perf report -i "$out/perf-c.data" --stdio --no-children --sort dso -g none \
    >"$out/perf-c-dso.txt" 2>/dev/null || true
  perf report -i "$out/perf-c.data" --stdio --no-children --sort dso,sym -g none \
    >"$out/perf-c-sym.txt" 2>/dev/null || true
fi

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
  --systems "$(IFS=,; echo "${systems[*]}")" --bigtable "$with_bigtable" --echo "$with_echo" \
  --command "$cmdline" \
  --loadavg "$out/loadavg.log" \
  --setup "records=$records (1 KB) ops=$ops threads=$threads tablets=$tablets runs=$runs block-cache=$block_cache compression=${compression:-lz4 (default)} etcd-E-cap=${etcd_e_seconds}s; $(nproc) cores; ${spread}${elapsed}s" \
  | tee "$out/report.md"
