#!/usr/bin/env bash
# Stop a PostgreSQL started by pg-start.sh and delete its directory.
#   bash tests/harness/pg-stop.sh [DIR]      (default: $BUZON_TEST_PG_DIR)
# BUZON_TEST_KEEP=1 keeps the directory (logs: DIR/postgres.log). Safe to run twice.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/harness/lib.sh
. "$here/lib.sh"
D=${1:-${BUZON_TEST_PG_DIR:?usage: pg-stop.sh DIR}}
[ -d "$D" ] || exit 0
cd /

pidfile=$D/data/postmaster.pid
if [ -s "$pidfile" ]; then
  pid=$(head -1 "$pidfile" | tr -dc 0-9)
  bindir=$(cat "$D/bindir" 2>/dev/null)
  # Run pg_ctl as the owner of the data dir (postgres when we started it as root).
  owner=$(stat -c %U "$D/data")
  if harness_is_root && [ "$owner" != root ]; then run() { runuser -u "$owner" -- "$@"; }; else run() { "$@"; }; fi
  if [ -n "$pid" ] && alive "$pid"; then
    if ! run "${bindir:-$(dirname "$(command -v pg_ctl)")}/pg_ctl" -D "$D/data" stop -m fast -w -t 20 -s >/dev/null 2>&1; then
      echo "pg-stop: pg_ctl stop failed for $D; sending SIGQUIT/SIGKILL to $pid" >&2
      kill -QUIT "$pid" 2>/dev/null
      wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
    fi
    wait_gone "$pid" 10 || echo "pg-stop: postmaster $pid still alive" >&2
  fi
fi
[ "${BUZON_TEST_KEEP:-0}" = 1 ] || rm -rf "$D"
