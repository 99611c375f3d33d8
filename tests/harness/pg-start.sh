#!/usr/bin/env bash
# Start a private, throw-away PostgreSQL server on 127.0.0.1, entirely inside one temp dir.
#
#   eval "$(bash tests/harness/pg-start.sh)"
#   psql "$BUZON_TEST_POSTGRES_URL" -c 'select 1'
#   bash tests/harness/pg-stop.sh "$BUZON_TEST_PG_DIR"
#
# Prints (for eval):
#   export BUZON_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres
#   export BUZON_TEST_PG_DIR=DIR
# The superuser is "postgres", with trust auth (no password) over TCP and the unix socket,
# which lives in DIR. Tests may create and drop databases freely. The server is tuned for
# tests, not durability: fsync, synchronous_commit and full_page_writes are off, unless
# BUZON_PG_DURABLE=1 (the benchmarks): then they stay on, as in production.
#
# PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the "postgres" system
# user (created by Debian's postgresql package), which owns DIR.
# Env in: BUZON_PG_BINDIR   directory of initdb/pg_ctl (default: newest /usr/lib/postgresql/*/bin,
#                           else the initdb on PATH)
#         BUZON_TEST_RUN_DIR parent of DIR (default ${TMPDIR:-/tmp}); see lib.sh
#         BUZON_PG_DURABLE  1: keep fsync, synchronous_commit and full_page_writes on
# On failure: prints the server log to stderr, stops what it started, keeps DIR.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/harness/lib.sh
. "$here/lib.sh"
log() { echo "pg-start: $*" >&2; }

bindir=${BUZON_PG_BINDIR:-}
if [ -z "$bindir" ]; then
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [ -x "$d/initdb" ] && { bindir=$d; break; }
  done
fi
if [ -z "$bindir" ] && command -v initdb >/dev/null; then bindir=$(dirname "$(command -v initdb)"); fi
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] ||
  { log "no PostgreSQL server found (initdb); run tests/harness/install-packages.sh"; exit 1; }

if harness_is_root; then
  id postgres >/dev/null 2>&1 ||
    { log "running as root needs the 'postgres' system user (Debian package postgresql)"; exit 1; }
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

D=$(harness_mktemp buzon-pg)
harness_is_root && chown postgres: "$D" && chmod 700 "$D"
echo "$bindir" > "$D/bindir"
cd /   # the postgres user may not be able to read the caller's cwd

started=0
on_exit() {
  local rc=$?
  [ $rc = 0 ] && return
  show_log "$D/initdb.log"
  show_log "$D/postgres.log"
  [ $started = 1 ] && as_pg "$bindir/pg_ctl" -D "$D/data" stop -m immediate -w -s >/dev/null 2>&1
  log "failed; logs in $D"
}
trap on_exit EXIT

# initdb: superuser "postgres", trust auth, UTF8. C.UTF-8 sorts like C but knows Unicode
# character classes; fall back to plain C where the C.UTF-8 locale is missing.
# -N: no fsync of the new cluster (it is thrown away anyway).
if ! as_pg "$bindir/initdb" -D "$D/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 -N \
      >"$D/initdb.log" 2>&1; then
  rm -rf "$D/data"
  as_pg "$bindir/initdb" -D "$D/data" -U postgres -A trust -E UTF8 --locale=C -N >>"$D/initdb.log" 2>&1
fi

cat >> "$D/data/postgresql.conf" <<CONF

# --- buzon test harness (tests/harness/pg-start.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$D'
max_connections = 200
include 'port.conf'
CONF
if [ "${BUZON_PG_DURABLE:-0}" != 1 ]; then
  printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n' >> "$D/data/postgresql.conf"
fi

# Pick a free port; if another process grabs it before the server binds it, pick again.
for attempt in 1 2 3; do
  PORT=$(free_ports 1)
  echo "port = $PORT" > "$D/data/port.conf"
  harness_is_root && chown postgres: "$D/data/port.conf"
  if as_pg "$bindir/pg_ctl" -D "$D/data" -l "$D/postgres.log" -w -t 15 -s start >/dev/null 2>>"$D/pg_ctl.err"; then
    started=1
    break
  fi
  grep -qE 'could not (bind|create listen)|[Aa]ddress already in use' "$D/postgres.log" 2>/dev/null || break
  log "port $PORT was taken (attempt $attempt), retrying"
done
[ $started = 1 ] || { show_log "$D/pg_ctl.err"; log "PostgreSQL did not start"; exit 1; }

# pg_ctl -w already waited for the postmaster; also check the TCP listener, max ~15 s.
ready=0
for ((i = 0; i < 150; i++)); do
  if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -t 2; then ready=1; break; fi
  sleep 0.1
done
[ $ready = 1 ] || { log "PostgreSQL on port $PORT is not ready after 15 s"; exit 1; }

printf 'export BUZON_TEST_POSTGRES_URL=%q\n' "postgres://postgres@127.0.0.1:$PORT/postgres"
printf 'export BUZON_TEST_PG_DIR=%q\n' "$D"
