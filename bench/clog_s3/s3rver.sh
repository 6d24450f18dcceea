# bench/clog_s3/s3rver.sh: what run.sh and run_replay.sh share; sourced,
# never run. The caller sets `prog` (the benchmark binary's name) and
# `tag` (its temp directory's prefix); this takes BUILD_DIR off the
# caller's arguments (default: the source tree's build), sets `bin` and
# `work`, starts a local s3rver (tools/s3-test-server) in $work/s3 with a
# bucket mica-bench, stops it and removes $work on exit, and exports the
# AWS_* settings the benchmark reads.
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$src/build}
shift || true
bin=$build/bin/$prog
[ -x "$bin" ] || { echo "${0##*/}: build $prog first ($bin)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/$tag.XXXXXX")
cleanup() { "$src/tools/s3-test-server" stop "$work/s3" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
trap "exit 1" INT TERM
read -r endpoint _pid < <(MICA_S3_OWNER_PID=$$ "$src/tools/s3-test-server" start "$work/s3" mica-bench)
export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
