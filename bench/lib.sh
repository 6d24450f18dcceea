# bench/lib.sh: what the benchmark scripts share; sourced, never run.
#
# Processes are started in the background by the script and registered in
# bench_pids; bench_stop_all (the scripts' EXIT trap calls it) stops each
# with SIGTERM, so a Mica server flushes its tablets, and SIGKILLs whatever
# is still there after 10 s. Everything listens on 127.0.0.1 only.
#
# bench_mica DIR N [MASTER-ARGS...] [-- TSERVER-ARGS...] starts a master and
# N tablet servers on one data root, DIR/data, with logs in DIR/logs, and
# waits until all N are live (asking with `mica servers`, given
# bench_cli_args: --ca and --token for a secured cluster); it sets
# bench_addr (the master's RPC address) and bench_mica_pids (master
# first). A failure exits the script with status 1, naming the log to read.
# Needs $bin (mica-master, mica-tserver, mica).

bench_pids=()
bench_cli_args=()

bench_die() { echo "${0##*/}: $*" >&2; exit 1; }

bench_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_wait_file FILE PID SECONDS: until FILE is not empty; fails at once
# when PID exits first, or after SECONDS.
bench_wait_file() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

bench_stop_all() {
  local pid i alive
  for pid in "${bench_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 100; i++)); do
    alive=0
    for pid in "${bench_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${bench_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

bench_mica() {
  local dir=$1 n=$2 margs=() targs=() pid i
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do margs+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  targs=("$@")
  mkdir -p "$dir/data" "$dir/logs"
  "$bin/mica-master" --data-dir "$dir/data" --listen 127.0.0.1:0 \
    --http-listen 127.0.0.1:0 --address-file "$dir/master.addr" "${margs[@]}" \
    >"$dir/logs/master.out" 2>"$dir/logs/master.log" &
  pid=$!
  bench_pids+=("$pid")
  bench_mica_pids=("$pid")
  bench_wait_file "$dir/master.addr" "$pid" 30 ||
    bench_die "the master in $dir did not start; see $dir/logs/master.log"
  bench_addr=$(cat "$dir/master.addr")
  for ((i = 1; i <= n; i++)); do
    "$bin/mica-tserver" --data-dir "$dir/data" --listen 127.0.0.1:0 \
      --master "$bench_addr" --address-file "$dir/tserver-$i.addr" "${targs[@]}" \
      >"$dir/logs/tserver-$i.out" 2>"$dir/logs/tserver-$i.log" &
    pid=$!
    bench_pids+=("$pid")
    bench_mica_pids+=("$pid")
    bench_wait_file "$dir/tserver-$i.addr" "$pid" 30 ||
      bench_die "tserver-$i in $dir did not start; see $dir/logs/tserver-$i.log"
  done
  for ((i = 0; i < 300; i++)); do
    [ "$("$bin/mica" --master "$bench_addr" "${bench_cli_args[@]}" servers \
        --format tsv 2>/dev/null | awk -F'\t' '$3 == "live"' | wc -l)" -ge "$n" ] &&
      return 0
    sleep 0.1
  done
  bench_die "not all $n tablet servers of $dir registered; see $dir/logs"
}
