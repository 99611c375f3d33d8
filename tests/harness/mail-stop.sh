#!/usr/bin/env bash
# Stop what mail-start.sh started in DIR (by the PIDs in its pid files, never by name) and
# delete the directory.
#   bash tests/harness/mail-stop.sh [DIR]    (default: $MAILTEST_DIR)
# MAILTEST_KEEP=1 or BUZON_TEST_KEEP=1 keeps the directory (logs in DIR/log). Safe to run twice.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/harness/lib.sh
. "$here/lib.sh"
D=${1:-${MAILTEST_DIR:?usage: mail-stop.sh DIR}}
[ -d "$D" ] || exit 0

pids=()
for f in "$D/postfix/spool/pid/master.pid" "$D/run/smtp-bridge.pid" "$D/run/master.pid"; do
  [ -s "$f" ] || continue
  pid=$(head -1 "$f" | tr -dc 0-9)
  [ -n "$pid" ] && alive "$pid" && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
done
# Each master takes its children down with it; Dovecot's master needs ~1 s (it sleeps 1 s to
# let its log process flush). Give everything 10 s, then SIGKILL what is left.
for pid in "${pids[@]}"; do
  wait_gone "$pid" 10 && continue
  echo "mail-stop: $pid still alive after 10 s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null
done

[ "${MAILTEST_KEEP:-${BUZON_TEST_KEEP:-0}}" = 1 ] || rm -rf "$D"
