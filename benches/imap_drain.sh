#!/usr/bin/env bash
# IMAP drain benchmark (not a test): loads N realistic mails (default 10000)
# into a private Dovecot and reports, in one run:
#   - the raw IMAP fetch rate of that folder (the physical limit of intake),
#   - `buzon run --once` drain rate into tickets with acknowledgements
#     queued (no transport configured, so the drain measures intake alone),
#     on SQLite and on PostgreSQL,
#   - then the delivery rate of those queued acknowledgements to a
#     directory of .eml files (`buzon outbox flush` with BUZON_OUTBOX_DIR),
#   - peak RSS of each drain.
# With BENCH_COMPARE_SEARCH=1, each backend also drains into a database whose search
# index triggers (migration 0011) were dropped, first, for the rate without the index
# beside the rate with it, in the same sitting (issue 14).
# BUZON_BENCH_BIN=path drains with that binary instead of building this tree (a
# build of another commit, to compare before and after back to back).
# BENCH_FLUSH=0 leaves out the outbox flushes (the intake alone, quicker).
# BENCH_MIX=followups: every fifth mail follows up the one before it (the same customer
# and order number, half of them with References), and a rule file extracts the order
# number as a key: threading's lookups, which the all-new default leaves out.
# BENCH_MIX=attachments: every mail carries a PDF of BENCH_ATTACH_KB kilobytes (default
# 300; 420 KB a mail as sent): the memory a batch of large mail takes.
# BENCH_BATCH_BYTES=N sets the account's `batch_bytes` (default 1 MiB).
# Usage: bash benches/imap_drain.sh [N]      (root or a user Dovecot runs as)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-10000}
H=tests/harness
bash "$H/install-packages.sh" >/dev/null
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends time >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target}
if [ -n "${BUZON_BENCH_BIN:-}" ]; then
  bin=$BUZON_BENCH_BIN
else
  cargo build --release --locked --quiet
  bin=$CARGO_TARGET_DIR/release/buzon
fi
work=$(mktemp -d)
chmod 711 "$work"
stacks=()
cleanup() {
  for s in "${stacks[@]}"; do bash "$H/mail-stop.sh" "$s" >/dev/null 2>&1 || true; done
  [ -n "${BUZON_BENCH_PG_DIR:-}" ] && BUZON_TEST_PG_DIR=$BUZON_BENCH_PG_DIR bash "$H/pg-stop.sh" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

eval "$(MAILTEST_SMTP=none bash "$H/mail-start.sh" "$work/mail")"
stacks+=("$MAILTEST_DIR")
# One login creates the maildir with the right owner, then fill it directly.
python3 - "$IMAP_PORT" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login("soporte@example.test", "soporte-pass"); m.select("INBOX"); m.logout()
PY
maildir="$MAILTEST_DIR/mail/example.test/soporte/Maildir"
python3 benches/imap_drain.py fill "$maildir" "$n"
owner=$(stat -c %u:%g "$maildir")
chown -R "$owner" "$maildir"
echo "loaded $n mails"
python3 benches/imap_drain.py fetch "$IMAP_PORT" soporte@example.test soporte-pass

if [ "${BENCH_MIX:-}" = followups ]; then
  mkdir -p "$work/rules"
  cat > "$work/rules/10-pedidos.toml" <<'EOT'
[[rule]]
name = "pedidos"
when.subject_or_body.regex = '(?i)pedido(?: N°)? (?P<order>\d{4,7})'
pipeline = "Soporte"
EOT
fi

config() { # $1 database url
  [ "${BENCH_MIX:-}" = followups ] && printf '[rules]\ndir = "%s"\n' "$work/rules"
  cat <<EOT
[deployment]
name = "Bench"
[database]
url = "$1"
[daemon]
listen = ""
[mailboxes.soporte]
address = "soporte@example.test"
[accounts.soporte]
host = "127.0.0.1"
port = $IMAP_PORT
tls = "none"
username = "soporte@example.test"
password_env = "BENCH_PASS"
folders = [{ folder = "INBOX", mailbox = "soporte", disposition = "leave" }]
EOT
  [ -n "${BENCH_BATCH_BYTES:-}" ] && printf 'batch_bytes = %s\n' "$BENCH_BATCH_BYTES"
  true
}

drain() { # $1 label, $2 url
  config "$2" "$1" > "$work/$1.toml"
  local start end
  start=$(date +%s.%N)
  BENCH_PASS=soporte-pass /usr/bin/time -f "%M %U %S" -o "$work/$1.rss" ${BUZON_BENCH_WRAP:-} "$bin" --config "$work/$1.toml" run --once > "$work/$1.out"
  end=$(date +%s.%N)
  python3 - "$1" "$n" "$start" "$end" "$(cat "$work/$1.rss")" "$(cat "$work/$1.out")" <<'PY'
import sys
label, n, start, end, usage, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5].split(), sys.argv[6]
rss, cpu = int(usage[0]), float(usage[1]) + float(usage[2])
took = end - start
# CPU time of buzon itself (user + sys) tells whether the drain waits on
# the database or works: well under the wall time means it waits.
print(f"buzon run --once ({label}): {n} mails in {took:.2f} s = {n / took:.0f} mails/s, peak RSS {rss / 1024:.1f} MB, buzon CPU {cpu:.2f} s  [{out.strip()}]")
PY
}

flush() { # $1 label: deliver the queued acknowledgements to .eml files
  [ "${BENCH_FLUSH:-1}" = 0 ] && return
  local start end
  start=$(date +%s.%N)
  BUZON_OUTBOX_DIR="$work/outbox-$1" "$bin" --config "$work/$1.toml" outbox flush > /dev/null
  end=$(date +%s.%N)
  python3 -c "import sys; n=int(sys.argv[1]); t=float(sys.argv[3])-float(sys.argv[2]); print(f'outbox flush ($1): {n} acknowledgements written in {t:.2f} s = {n/t:.0f} mails/s')" "$(ls "$work/outbox-$1" | wc -l)" "$start" "$end"
}

# A migrated database without the search index's triggers: the drain as before issue 14.
unindexed() { # $1 label, $2 url
  config "$2" > "$work/$1.toml"
  "$bin" --config "$work/$1.toml" migrate > /dev/null
  case $2 in
  sqlite:*)
    sqlite3 "${2#sqlite:}" "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'search\_%' ESCAPE '\'" |
      while read -r t; do sqlite3 "${2#sqlite:}" "DROP TRIGGER $t"; done ;;
  *)
    psql "$2" -qAt -c "SELECT 'DROP TRIGGER ' || tgname || ' ON ' || tgrelid::regclass FROM pg_trigger WHERE tgname LIKE 'search\_%'" |
      while read -r s; do psql "$2" -qc "$s"; done ;;
  esac
}

if [ -n "${BENCH_COMPARE_SEARCH:-}" ]; then
  unindexed sqlite-unindexed "sqlite:$work/unindexed.db"
  drain sqlite-unindexed "sqlite:$work/unindexed.db"
fi
drain sqlite "sqlite:$work/bench.db"
flush sqlite
if [ -z "${BUZON_TEST_POSTGRES_URL:-}" ]; then
  eval "$(BUZON_PG_DURABLE=1 bash "$H/pg-start.sh")"
  BUZON_BENCH_PG_DIR=$BUZON_TEST_PG_DIR
fi
if [ -n "${BENCH_COMPARE_SEARCH:-}" ]; then
  psql "$BUZON_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS buzon_bench_unindexed" -c "CREATE DATABASE buzon_bench_unindexed" >/dev/null
  unindexed postgres-unindexed "${BUZON_TEST_POSTGRES_URL%/*}/buzon_bench_unindexed"
  drain postgres-unindexed "${BUZON_TEST_POSTGRES_URL%/*}/buzon_bench_unindexed"
fi
psql "$BUZON_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS buzon_bench" -c "CREATE DATABASE buzon_bench" >/dev/null
drain postgres "${BUZON_TEST_POSTGRES_URL%/*}/buzon_bench"
flush postgres
