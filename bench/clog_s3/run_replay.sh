#!/usr/bin/env bash
# bench/clog_s3/run_replay.sh: recovery time of a commit log of N objects
# on a local s3rver (tools/s3-test-server), read-ahead against one object
# at a time. docs/benchmarks.md, "Commit log on S3 (issue 16)".
#
#   bench/clog_s3/run_replay.sh [BUILD_DIR] [mica-clog-replay-bench flags...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
shift || true
bin=$build/bin/mica-clog-replay-bench
[ -x "$bin" ] || { echo "run_replay.sh: build mica-clog-replay-bench first ($bin)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/mica-clog-replay.XXXXXX")
cleanup() { "$src/tools/s3-test-server" stop "$work/s3" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
trap "exit 1" INT TERM
read -r endpoint _pid < <(MICA_S3_OWNER_PID=$$ "$src/tools/s3-test-server" start "$work/s3" mica-bench)
export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
echo "s3rver at $endpoint; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" --s3-root=s3://mica-bench/replay "$@"
