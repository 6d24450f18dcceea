#!/usr/bin/env bash
# bench/clog_s3/run_replay.sh: recovery time of a commit log of N objects
# on a local s3rver (tools/s3-test-server), read-ahead against one object
# at a time. docs/benchmarks.md, "Commit log on S3 (issue 16)".
#
#   bench/clog_s3/run_replay.sh [BUILD_DIR] [mica-clog-replay-bench flags...]
set -euo pipefail
prog=mica-clog-replay-bench tag=mica-clog-replay
. "$(dirname "$0")/s3rver.sh"
echo "s3rver at $endpoint; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" --s3-root=s3://mica-bench/replay "$@"
