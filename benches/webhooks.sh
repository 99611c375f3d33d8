#!/usr/bin/env bash
# Webhook benchmark (not a test): what webhooks cost the intake, and how fast
# they are delivered. A backlog of N mails (default 2000) in a private Dovecot
# is drained by `buzon run --once` into tickets (no mail transport, so the
# drain measures intake), on SQLite:
#   - intake without [[webhooks]] (each change still writes its event, which
#     the run then drops),
#   - intake with one endpoint for ticket.created, delivered in the same run
#     to a Python receiver on loopback that checks every signature,
#   - delivery alone: the same N deliveries queued again and sent by
#     `buzon run --once` (fan-out done; claim, sign, POST, mark).
# Usage: bash benches/webhooks.sh [N]      (root or a user Dovecot runs as)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-2000}
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
stack="" receiver=""
cleanup() {
  [ -n "$receiver" ] && kill "$receiver" 2>/dev/null || true
  [ -n "$stack" ] && bash "$H/mail-stop.sh" "$stack" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

eval "$(bash "$H/mail-start.sh" "$work/mail")"
stack=$MAILTEST_DIR
secret=bench-secret
python3 benches/webhook_receiver.py "$work/port" "$secret" &
receiver=$!
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
echo "settings: $(nproc) cores; SQLite as buzon sets it (WAL, synchronous=FULL); receiver: Python ThreadingHTTPServer on loopback"

fill() { # $1 user, $2 count
  python3 - "$IMAP_PORT" "$1@example.test" "$1-pass" <<'PY'
import imaplib, sys
m = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); m.login(sys.argv[2], sys.argv[3]); m.select("INBOX"); m.logout()
PY
  local maildir="$MAILTEST_DIR/mail/example.test/$1/Maildir"
  python3 benches/imap_drain.py fill "$maildir" "$2" "customer+$1{i}@example.test"
  chown -R "$(stat -c %u:%g "$maildir")" "$maildir"
}

config() { # $1 user (mailbox), $2 database url, $3 "hooks" for an endpoint
  cat <<EOT
[deployment]
name = "Bench"
our_domains = ["bench.example"]
[database]
url = "$2"
[daemon]
listen = ""
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
  if [ "${3:-}" = hooks ]; then
    printf '[[webhooks]]\nname = "bench"\nurl = "http://127.0.0.1:%s/hook"\nevents = ["ticket.created"]\nsecret_env = "BENCH_HOOK_SECRET"\n' "$port"
  fi
}

rate() { # $1 label, $2 count, $3 start, $4 end, $5 unit
  python3 -c "import sys; n=int(sys.argv[2]); t=float(sys.argv[4])-float(sys.argv[3]); print(f'{sys.argv[1]}: {n} in {t:.2f} s = {n/t:.0f} {sys.argv[5]}/s')" "$@"
}
received() { python3 -c "import urllib.request,sys; print(urllib.request.urlopen(f'http://127.0.0.1:{sys.argv[1]}/count').read().decode())" "$port"; }

run() { # $1 label, $2 user, $3 config file
  local start end
  start=$(date +%s.%N)
  BENCH_PASS="$2-pass" BENCH_HOOK_SECRET=$secret "$bin" --config "$3" run --once > /dev/null
  end=$(date +%s.%N)
  rate "$1" "$n" "$start" "$end" mails
}

fill soporte "$n"
config soporte "sqlite:$work/a.db" > "$work/a.toml"
run "intake without [[webhooks]] (run --once, SQLite)" soporte "$work/a.toml"

fill sac "$n"
config sac "sqlite:$work/b.db" hooks > "$work/b.toml"
run "intake + ticket.created delivered (run --once, SQLite)" sac "$work/b.toml"
read -r ok bad ids <<< "$(received)"
echo "  receiver: $ok requests signed right, $bad wrong, $ids distinct ids"

python3 - "$work/b.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE webhook_deliveries SET status = 'queued', attempts = 0, next_attempt_at = 0, sent_at = NULL")
db.commit()
PY
start=$(date +%s.%N)
BENCH_PASS=sac-pass BENCH_HOOK_SECRET=$secret "$bin" --config "$work/b.toml" run --once > /dev/null
end=$(date +%s.%N)
rate "delivery alone (run --once, SQLite)" "$n" "$start" "$end" requests
read -r ok bad ids <<< "$(received)"
echo "  receiver: $ok requests signed right in all, $bad wrong, $ids distinct ids"
