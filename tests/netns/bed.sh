# bed.sh: the cluster of issue 13's multi-host tests, sourced by them.
#
# One bed (tools/mica-netns) of nine hosts, each its own network namespace:
#   host 1      ZooKeeper (standalone, or a 3-node ensemble with
#               BED_ZK_NODES=3: three server processes on this host)
#   hosts 2-4   mica-master --zk (candidates; one is active)
#   hosts 5-8   mica-tserver --master zk://...
#   host 9      the client: the `mica` CLI and mica-netns-check
# Everything is given zk://ZK/mica, so it follows the active master. The
# data root is one directory of the file system every namespace shares
# (the shared mount of a real deployment). Short timers keep the tests
# short: ZooKeeper session 3 s, tablet-server lease 3 s, heartbeat 300 ms.
#
# bed_setup makes the bed and starts everything; an EXIT trap takes it
# down, kills every process and removes every namespace also on failure
# (and fails the test if any is left), printing the logs when it failed.
# Needs root; bed_setup exits 77 (skipped) with the reason when namespaces
# cannot be created. MICA_NETNS_KEEP=1 keeps the temporary directory (logs,
# ack files, data root) for a look afterwards.

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
netns=$src/tools/mica-netns
zkserver=$src/tools/zk-test-server
bin=${MICA_BIN_DIR:?MICA_BIN_DIR must name the directory holding mica-master}
export MICA_BIN_DIR
SESSION_MS=${SESSION_MS:-3000}
LEASE_MS=${LEASE_MS:-3000}
HEARTBEAT_MS=${HEARTBEAT_MS:-300}
MASTERS=(2 3 4)
TSERVERS=(5 6 7 8)
CLIENT=9
ZK_HOST=1

fail() { echo "FAIL: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }
addr() { echo "${MICA_NETNS_NET:-10.77.0}.$1"; }

bed_cleanup() {
  local rc=$?
  trap - EXIT
  [[ -n ${bed:-} ]] && "$netns" down "$bed"
  if [[ -n ${bed:-} ]] && ip netns list | grep -q "^mica-$bed-"; then
    echo "FAIL: namespaces of bed $bed left behind" >&2; rc=1
  fi
  if [[ -n ${tmp:-} ]] && pgrep -f "$tmp" >/dev/null; then
    echo "FAIL: processes left behind: $(pgrep -af "$tmp")" >&2; rc=1
  fi
  if ((rc != 0)) && [[ -n ${tmp:-} ]]; then
    local f
    for f in "$tmp"/*.out "$tmp"/*.err "$tmp"/zk/n*/log; do
      [[ -f $f ]] && { echo "== $f"; tail -n 25 "$f"; } >&2
    done
  fi
  if [[ -n ${tmp:-} && -n ${MICA_NETNS_KEEP:-} ]]; then
    echo "kept $tmp (MICA_NETNS_KEEP)" >&2
  elif [[ -n ${tmp:-} ]]; then
    rm -rf "$tmp"
  fi
  exit "$rc"
}

# Runs COMMAND inside host I. (Background processes are started with
# "$netns" exec directly, so that $! is the process itself: mica-netns
# execs into it.)
on() { local h=$1; shift; "$netns" exec "$bed" "$h" "$@"; }

cli() { on "$CLIENT" "$bin/mica" --deadline "${CLI_DEADLINE:-10000}" --master "$spec" "$@"; }
check() { on "$CLIENT" "$bin/mica-netns-check" "$1" --master "$spec" "${@:2}"; }

# Prints FILE's first "WORD value" line's value once it appears.
wait_line() { # FILE WORD TIMEOUT_MS
  local deadline=$(($(now_ms) + $3)) v
  while :; do
    v=$(sed -n "s/^$2 //p" "$1" 2>/dev/null | head -n1)
    [[ -n $v ]] && { echo "$v"; return 0; }
    (($(now_ms) < deadline)) || return 1
    sleep 0.05
  done
}

declare -A mpid tpid
start_master() {
  local h=$1
  "$netns" exec "$bed" "$h" "$bin/mica-master" --data-dir "$tmp/data" \
    --listen "$(addr "$h"):7000" --http-listen "$(addr "$h"):8080" \
    --zk "$zk/mica" --zk-session-ms "$SESSION_MS" --insecure \
    --lease-ms "$LEASE_MS" --heartbeat-ms "$HEARTBEAT_MS" \
    --lease-margin-ms 1000 --merge off --balancer off \
    >>"$tmp/m$h.out" 2>>"$tmp/m$h.err" &
  mpid[$h]=$!
}

start_tserver() {
  local h=$1
  "$netns" exec "$bed" "$h" "$bin/mica-tserver" --data-dir "$tmp/data" \
    --listen "$(addr "$h"):7100" --http-listen "$(addr "$h"):8180" \
    --master "$spec" --lease-ms "$LEASE_MS" --heartbeat-ms "$HEARTBEAT_MS" \
    --memory-budget 64M --block-cache 8M --threads 2 --insecure \
    >>"$tmp/t$h.out" 2>>"$tmp/t$h.err" &
  tpid[$h]=$!
  disown # never waited for; spares the log a "Killed" line at teardown
}

# The host whose master serves (its stdout says `listening`, and it runs).
active_master() {
  local h
  for h in "${MASTERS[@]}"; do
    [[ -n ${mpid[$h]:-} ]] && kill -0 "${mpid[$h]}" 2>/dev/null &&
      grep -q '^listening ' "$tmp/m$h.out" 2>/dev/null && { echo "$h"; return 0; }
  done
  return 1
}
wait_active_master() { # [SKIP_HOST] [TIMEOUT_MS]: prints the host
  local deadline=$(($(now_ms) + ${2:-30000})) h
  while :; do
    h=$(active_master) && [[ $h != "${1:-}" ]] && { echo "$h"; return 0; }
    (($(now_ms) < deadline)) || return 1
    sleep 0.05
  done
}

# The master epoch of the active master's log files: the highest E of
# log-E-G in the data root.
log_epochs() {
  ls "$tmp/data/master" 2>/dev/null | sed -n 's/^\(log\|snap\)-\([0-9]*\)-.*/\2/p' | sort -n | uniq
}

# Live tablet servers the master knows.
live_servers() { cli servers --format tsv 2>/dev/null | grep -c "7100" || true; }

bed_setup() { # NAME
  "$netns" check || exit $?
  local b
  for b in mica-master mica-tserver mica mica-netns-check; do
    [[ -x $bin/$b ]] || fail "$bin/$b is missing (build it: cmake --build build --target $b)"
  done
  bed=$1$$
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/mica-netns-test.XXXXXX")
  trap bed_cleanup EXIT
  trap 'exit 143' TERM INT # so that the EXIT trap runs
  # If this shell is killed outright (SIGKILL: a ctest timeout), the
  # watchdogs of mica-netns (the bed) and zk-test-server (ZooKeeper) clean
  # up; this one removes the temporary directory after them.
  # (The directory goes by the environment: the check for processes left
  # behind looks for it in command lines.)
  MICA_NETNS_TMP=$tmp MICA_NETNS_KEEP=${MICA_NETNS_KEEP:-} setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done
      sleep 3; [[ -n $MICA_NETNS_KEEP ]] || rm -rf "$MICA_NETNS_TMP"' mica-netns-test-watchdog $$ \
    </dev/null >/dev/null 2>&1 &
  "$netns" up "$bed" 9 --owner-pid $$
  local out
  out=$(on "$ZK_HOST" "$zkserver" start --bind "$(addr "$ZK_HOST")" \
          --nodes "${BED_ZK_NODES:-1}" --dir "$tmp/zk" --owner-pid $$) ||
    fail "ZooKeeper did not start"
  eval "$out" # dir= connect=
  zkdir=$dir zk=$connect spec="zk://$connect/mica"
  mkdir "$tmp/data"
  local h
  for h in "${MASTERS[@]}"; do start_master "$h"; done
  wait_active_master "" 60000 >/dev/null || fail "no master became active"
  for h in "${TSERVERS[@]}"; do start_tserver "$h"; done
  local deadline=$(($(now_ms) + 60000)) n
  while n=$(live_servers); ((n < ${#TSERVERS[@]})); do
    (($(now_ms) < deadline)) || fail "only $n of ${#TSERVERS[@]} tablet servers registered"
    sleep 0.2
  done
  echo "bed $bed: ZooKeeper $zk, active master on host $(active_master), ${#TSERVERS[@]} tablet servers"
}

# Creates table T with 8 tablets (two per tablet server).
make_table() {
  cli create "$1" --splits k1,k2,k3,k4,k5,k6,k7 >/dev/null || fail "cannot create table $1"
}

# load_start NAME [HOST] [ARGS...]: a checker load in the background on HOST
# (default the client) writing $tmp/NAME.acks until $tmp/NAME.stop exists.
declare -A lpid
load_start() {
  local name=$1 h=${2:-$CLIENT}
  "$netns" exec "$bed" "$h" "$bin/mica-netns-check" load --master "$spec" --table t \
    --acks "$tmp/$name.acks" --stop-file "$tmp/$name.stop" --prefix "$name" \
    "${@:3}" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  lpid[$name]=$!
  wait_line "$tmp/$name.out" loading 30000 >/dev/null || fail "load $name did not start"
}
# load_stop NAME: stops it and prints its summary line.
load_stop() {
  touch "$tmp/$1.stop"
  local rc=0
  wait "${lpid[$1]}" || rc=$?
  ((rc == 0)) || fail "load $1 exited with status $rc"
  grep '^acked ' "$tmp/$1.out"
}
acked() { wc -l <"$tmp/$1.acks"; }
wait_acked() { # NAME MIN TIMEOUT_MS
  local deadline=$(($(now_ms) + $3))
  while (($(acked "$1") < $2)); do
    (($(now_ms) < deadline)) || fail "load $1: only $(acked "$1") acks, wanted $2"
    sleep 0.1
  done
}
# verify FILE...: every acknowledged put of these loads is read back.
verify() {
  local files=() n
  for n in "$@"; do files+=("$tmp/$n.acks"); done
  check verify --table t "${files[@]}" || fail "acknowledged writes lost (above)"
}
