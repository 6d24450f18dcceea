#!/usr/bin/env bash
# bench/compare/postgres.sh: runs a private PostgreSQL 15 for mica-bench.
#
#   bench/compare/postgres.sh DIR PORT
#
# Makes a new database cluster in DIR/pgdata (initdb, superuser "mica",
# trust authentication: it listens on 127.0.0.1 only and its Unix socket is
# in DIR) unless one is there, then replaces itself with the postmaster in
# the foreground, so the caller's $! is the postmaster's pid: stop it with
# SIGTERM (smart shutdown) or SIGINT (fast), by that pid. Connect with
#   postgresql://mica@127.0.0.1:PORT/postgres
#
# Durability is PostgreSQL's default and stated explicitly: fsync = on,
# synchronous_commit = on, full_page_writes = on, wal_sync_method =
# fdatasync (Linux's default), so a commit is acknowledged once its WAL
# record is on disk, as Mica acknowledges a write once its WAL record is
# synced. shared_buffers = 128MB (the default) and nothing else is tuned.
#
# PostgreSQL refuses to run as root. Run as root, the script makes DIR/pgdata
# owned by the unprivileged user "nobody" and starts initdb and postgres as
# that user with setpriv (util-linux: it changes the ids and execs, with no
# PAM session or shell in between, so the pid stays the postmaster's). DIR
# and every directory above it must then be traversable by others (a temp
# directory made by mktemp is 0700: chmod it 0711). The binaries are
# Debian's (/usr/lib/postgresql/15/bin, package postgresql-15), or
# $PG_BIN_DIR.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }
[ $# = 2 ] || die "usage: bench/compare/postgres.sh DIR PORT"
dir=$1 port=$2
[[ $port =~ ^[1-9][0-9]*$ ]] && [ "$port" -lt 65536 ] || die "'$port' is not a TCP port"
[ -d "$dir" ] || die "$dir is not a directory"
dir=$(cd "$dir" && pwd)
pgbin=${PG_BIN_DIR:-/usr/lib/postgresql/15/bin}
for b in initdb postgres; do
  [ -x "$pgbin/$b" ] || die "$pgbin/$b not found (apt-get install postgresql-15, or set PG_BIN_DIR)"
done

as=()
if [ "$(id -u)" = 0 ]; then
  user=nobody
  group=$(id -gn "$user" 2>/dev/null) || die "no user '$user' to run PostgreSQL as"
  as=(setpriv --reuid="$user" --regid="$group" --clear-groups --inh-caps=-all --)
  "${as[@]}" test -x "$dir" 2>/dev/null ||
    die "$dir is not reachable by '$user' (chmod 0711 it and its parents)"
  mkdir -p "$dir/pgdata"
  chown "$user:$group" "$dir/pgdata"
  chmod 0700 "$dir/pgdata"
fi

data=$dir/pgdata
if [ ! -s "$data/PG_VERSION" ]; then
  # initdb refuses a non-empty directory; a fresh one, or one we own, is empty.
  "${as[@]}" "$pgbin/initdb" -D "$data" -U mica --auth=trust --encoding=UTF8 \
    --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
fi
exec "${as[@]}" "$pgbin/postgres" -D "$data" \
  -c listen_addresses=127.0.0.1 -c port="$port" \
  -c unix_socket_directories="$data" \
  -c fsync=on -c synchronous_commit=on -c full_page_writes=on \
  -c wal_sync_method=fdatasync \
  -c max_connections=200 -c logging_collector=off
