#!/usr/bin/env bash
# bench/clog_s3/run.sh: the commit log on S3 at --wal-batch-ms 5, 10, 20
# against the commit log on POSIX, in one run, on a local s3rver
# (tools/s3-test-server). docs/benchmarks.md, "Commit log on S3 (issue 16)".
#
#   bench/clog_s3/run.sh [BUILD_DIR] [mica-clog-s3-bench flags...]
set -euo pipefail
prog=mica-clog-s3-bench tag=mica-clog-s3
. "$(dirname "$0")/s3rver.sh"
echo "s3rver at $endpoint; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"
"$bin" --s3-root=s3://mica-bench/clog --dir="$work/posix" "$@"
