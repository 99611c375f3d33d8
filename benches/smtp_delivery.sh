#!/usr/bin/env bash
# End-to-end delivery benchmark (not a test): acknowledgements from a backlog in a private
# Dovecot to the private Postfix of the test harness, counted at the server (Postfix's
# cleanup log line per accepted mail), not only as .eml files. Prints, in one run:
#   - delivery rate: N queued acknowledgements delivered by `buzon outbox flush` over [smtp];
#   - drain with delivery: `buzon run --once` with [smtp], backlog -> tickets ->
#     acknowledgements accepted by Postfix (SQLite, then PostgreSQL);
#   - latency: `buzon run` watching a folder (IDLE), one new mail at a time; from the
#     acknowledgement's outbox row being written (in the ticket's transaction, before its
#     commit) to Postfix's 250 (`sent_at`): an upper bound of commit -> accepted.
# Durable settings, as in production, and printed: SQLite synchronous=FULL (buzon's
# setting), PostgreSQL with fsync, synchronous_commit and full_page_writes on.
# Usage: bash benches/smtp_delivery.sh [N]      (root: Postfix only runs as root)
#        BENCH_BIN=path/to/buzon to measure another build (e.g. an older commit's);
#        BENCH_POOL=N sets smtp.pool_size (default 4, buzon's default).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000}
pool=${BENCH_POOL:-4}   # smtp.pool_size: sessions sending at once
H=tests/harness
bash "$H/install-packages.sh" >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target}
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --locked --quiet
  BENCH_BIN=$CARGO_TARGET_DIR/release/buzon
fi
bin=$BENCH_BIN
work=$(mktemp -d)
chmod 711 "$work"
stack="" pg_dir="" daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null || true
  [ -n "$stack" ] && bash "$H/mail-stop.sh" "$stack" >/dev/null 2>&1 || true
  [ -n "$pg_dir" ] && bash "$H/pg-stop.sh" "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

eval "$(MAILTEST_SMTP=postfix bash "$H/mail-start.sh" "$work/mail")"
stack=$MAILTEST_DIR
postfix_log=$MAILTEST_DIR/log/postfix.log
echo "settings: $(nproc) cores; SQLite as buzon sets it (WAL, synchronous=FULL since the durability change); PostgreSQL fsync=on synchronous_commit=on; Postfix on loopback, plain SMTP, smtp.pool_size=$pool"

# Mails Postfix accepted from buzon so far (one cleanup line per accepted message).
accepted() { grep -c 'message-id=<buzon\.' "$postfix_log" 2>/dev/null || true; }
# Waits until Postfix's log shows $1 accepted mails (the log is written asynchronously).
wait_accepted() {
  local want=$1 i
  for i in $(seq 1 300); do
    [ "$(accepted)" -ge "$want" ] && return 0
    sleep 0.1
  done
  echo "only $(accepted) of $want accepted mails in the Postfix log" >&2
  return 1
}

fill() { # $1 user, $2 count, $3 tag: a backlog of mails from customer+TAG<i>@example.test
  python3 - "$IMAP_PORT" "$1@example.test" "$1-pass" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login(sys.argv[2], sys.argv[3]); m.select("INBOX"); m.logout()
PY
  local maildir="$MAILTEST_DIR/mail/example.test/$1/Maildir"
  python3 benches/imap_drain.py fill "$maildir" "$2" "customer+$3{i}@example.test"
  chown -R "$(stat -c %u:%g "$maildir")" "$maildir"
}

config() { # $1 user (mailbox), $2 database url, $3 "smtp" to deliver over SMTP
  cat <<EOT
[deployment]
name = "Bench"
our_domains = ["bench.example"]
[database]
url = "$2"
[daemon]
listen = ""
[outbox]
auto_reply_limit_per_hour = 1000
[mailboxes.$1]
address = "$1@example.test"
[accounts.$1]
host = "127.0.0.1"
port = $IMAP_PORT
tls = "none"
username = "$1@example.test"
password_env = "BENCH_PASS"
folders = [{ folder = "INBOX", mailbox = "$1", disposition = "seen" }]
EOT
  if [ "${3:-}" = smtp ]; then
    printf '[smtp]\nhost = "127.0.0.1"\nport = %s\ntls = "none"\npool_size = %s\n' "$SMTP_PORT" "$pool"
  fi
}

rate() { # $1 label, $2 count, $3 start, $4 end
  python3 -c "import sys; n=int(sys.argv[2]); t=float(sys.argv[4])-float(sys.argv[3]); print(f'{sys.argv[1]}: {n} in {t:.2f} s = {n/t:.0f} mails/s')" "$@"
}

# 1. Delivery alone: queue the backlog's acknowledgements, then flush them over SMTP.
fill soporte "$n" a
config soporte "sqlite:$work/a.db" > "$work/a-queue.toml"
config soporte "sqlite:$work/a.db" smtp > "$work/a-smtp.toml"
BENCH_PASS=soporte-pass "$bin" --config "$work/a-queue.toml" run --once > /dev/null
before=$(accepted)
start=$(date +%s.%N)
"$bin" --config "$work/a-smtp.toml" outbox flush > "$work/a.out"
end=$(date +%s.%N)
wait_accepted $((before + n))
rate "delivery (outbox flush over SMTP, SQLite)   [$(cat "$work/a.out")]" "$n" "$start" "$end"

# 2. The whole drain with delivery: backlog in Dovecot -> acknowledgements accepted.
drain() { # $1 label, $2 user, $3 url, $4 tag
  fill "$2" "$n" "$4"
  config "$2" "$3" smtp > "$work/$4.toml"
  local before start end
  before=$(accepted)
  start=$(date +%s.%N)
  BENCH_PASS="$2-pass" "$bin" --config "$work/$4.toml" run --once > "$work/$4.out"
  end=$(date +%s.%N)
  wait_accepted $((before + n))
  rate "drain with delivery (run --once, $1)   [$(tr '\n' ' ' < "$work/$4.out")]" "$n" "$start" "$end"
}
drain SQLite sac "sqlite:$work/b.db" b
eval "$(BUZON_PG_DURABLE=1 bash "$H/pg-start.sh")"
pg_dir=$BUZON_TEST_PG_DIR
psql "$BUZON_TEST_POSTGRES_URL" -qc "CREATE DATABASE buzon_bench" >/dev/null
drain PostgreSQL finanzas "${BUZON_TEST_POSTGRES_URL%/*}/buzon_bench" c

# 3. Latency: the daemon watches a folder; one new mail at a time.
config clientes "sqlite:$work/d.db" smtp > "$work/d.toml"
BENCH_PASS=clientes-pass "$bin" --config "$work/d.toml" run 2> "$work/d.log" &
daemon=$!
python3 - "$IMAP_PORT" <<'PY'
import imaplib, sys, time
sys.path.insert(0, "benches")
from imap_drain import mail
time.sleep(2)  # the daemon logs in and starts IDLE
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login("clientes@example.test", "clientes-pass")
for i in range(20):
    raw = mail(100000 + i, "customer+d{i}@example.test")
    m.append("INBOX", None, None, raw)
    time.sleep(0.3)
m.logout()
time.sleep(1)
PY
kill "$daemon"; wait "$daemon" || true; daemon=""
"$bin" --config "$work/d.toml" outbox list --format json > "$work/d.json"
python3 - "$work/d.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))["outbox"]
lat = sorted(r["sent_at"] - r["created_at"] for r in rows if r["sent_at"])
if not lat:
    sys.exit(f"latency: nothing was sent: {rows}")
med = lat[len(lat) // 2]
print(f"latency queued (in the commit's transaction) -> accepted by Postfix: {len(lat)} mails, median {med} ms, max {lat[-1]} ms")
PY
