#!/usr/bin/env bash
# bench/clog_s3/run.sh: the commit log on S3 at --wal-batch-ms 5, 10, 20
# against the commit log on POSIX, in one run, on a local s3rver
# (tools/s3-test-server). docs/benchmarks.md, "Commit log on S3 (issue 16)".
#
#   bench/clog_s3/run.sh [BUILD_DIR] [mica-clog-s3-bench flags...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build}
shift || true
bin=$build/bin/mica-clog-s3-bench
[ -x "$bin" ] || { echo "run.sh: build mica-clog-s3-bench first ($bin)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/mica-clog-s3.XXXXXX")
cleanup() { "$src/tools/s3-test-server" stop "$work/s3" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
trap "exit 1" INT TERM
read -r endpoint _pid < <(MICA_S3_OWNER_PID=$$ "$src/tools/s3-test-server" start "$work/s3" mica-bench)
export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
echo "s3rver at $endpoint; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
"$bin" --s3-root=s3://mica-bench/clog --dir="$work/posix" "$@"
