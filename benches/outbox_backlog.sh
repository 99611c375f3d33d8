#!/usr/bin/env bash
# Backlog benchmark (not a test; issue 18): how the outbox and the webhook deliveries drain when
# a large backlog is queued, e.g. after the mail server or an endpoint was away for hours.
# For each N (default "5000 20000") and each backend, a database `buzon migrate` created gets
# N/2 tickets with two queued mails each (so the claim's "an earlier mail of this ticket is
# still queued" check has work to do) and N/2 tickets' events with two webhook deliveries each,
# written by SQL in the shape buzon writes them; then
#   - `buzon outbox flush` to an `.eml` directory (the transport costs next to nothing, so the
#     figure is the claim and the marking),
#   - `buzon run --once` delivering the webhooks to a Python receiver on loopback,
# each timed, with the claim's query plan printed once (EXPLAIN QUERY PLAN / EXPLAIN).
# Usage: bash benches/outbox_backlog.sh ["5000 20000"]    (root: PostgreSQL runs as "postgres")
#        BENCH_BIN=path/to/buzon   another build;   BENCH_BACKENDS="sqlite" (or "postgres")
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sizes=${1:-5000 20000}
backends=${BENCH_BACKENDS:-sqlite postgres}
H=tests/harness
# shellcheck source=tests/harness/lib.sh
. "$H/lib.sh"
bash "$H/install-packages.sh" >/dev/null
command -v sqlite3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sqlite3 >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target}
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --locked --quiet
  BENCH_BIN=$CARGO_TARGET_DIR/release/buzon
fi
bin=$BENCH_BIN
work=$(mktemp -d)
chmod 711 "$work"
pg_dir="" receiver=""
cleanup() {
  [ -n "$receiver" ] && kill "$receiver" 2>/dev/null || true
  [ -n "$pg_dir" ] && bash "$H/pg-stop.sh" "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
secret=bench-secret
python3 benches/webhook_receiver.py "$work/port" "$secret" &
receiver=$!
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
echo "settings: $(nproc) cores; SQLite as buzon sets it (WAL, synchronous=FULL); PostgreSQL fsync=on synchronous_commit=on; outbox to an .eml directory; webhooks to a Python receiver on loopback"

config() { # $1 url, $2 outbox dir
  printf '[deployment]\nname = "Bench"\n[database]\nurl = "%s"\n[outbox]\ndir = "%s"\n' "$1" "$2"
  printf '[[webhooks]]\nname = "bench"\nurl = "http://127.0.0.1:%s/hook"\nevents = ["ticket.created"]\nsecret_env = "BENCH_HOOK_SECRET"\n' "$port"
}

# The backlog, in SQL both backends run: N/2 tickets, two queued mails each (ids interleaved
# as a drain queues them: ticket k's are 2k-1 and 2k), N/2 events of ticket.created with two
# deliveries each. $1: N; $2: the backend's expression for the mail's bytes.
backlog() {
  local n=$1 raw=$2 t=$(($1 / 2))
  cat <<SQL
INSERT INTO tickets (id, subject, state, pipeline, priority, mailbox, created_at, updated_at)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $t)
  SELECT i, 'Pedido ' || i, 'new', 'Soporte', 'medium', 'soporte', 0, 0 FROM n;
INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, created_at)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $n)
  SELECT (i + 1) / 2, 'acknowledgement', 'bench.' || i || '@bench.example', 'soporte@bench.example',
         'cliente' || i || '@example.test', $raw, 'queued', 0, 0, 0 FROM n;
INSERT INTO webhook_events (id, ticket_id, kind, detail, created_at, subject, state, pipeline, priority, mailbox, fanned_out)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $n)
  SELECT i, (i + 1) / 2, 'ticket.created', '{}', 0, 'Pedido', 'new', 'Soporte', 'medium', 'soporte', 1 FROM n;
INSERT INTO webhook_deliveries (delivery_id, event_id, endpoint, ticket_id, status, attempts, next_attempt_at, created_at)
  WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $n)
  SELECT 'bench-' || i, i, 'bench', (i + 1) / 2, 'queued', 0, 0, 0 FROM n;
SQL
}

rate() { # $1 label, $2 count, $3 start, $4 end
  python3 -c "import sys; n, s, e = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]); print(f'{sys.argv[1]}: {n} in {e - s:.1f} s = {n / (e - s):.0f}/s')" "$@"
}

# The claims' plans (the queries as src/store/sql/outbox.rs and webhooks.rs run them).
outbox_claim="SELECT o.id FROM outbox o WHERE o.status = 'queued' AND +o.next_attempt_at <= 1 AND (o.lease_until IS NULL OR o.lease_until < 1) AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.status = 'queued' AND e.ticket_id = o.ticket_id AND e.id < o.id) ORDER BY o.id LIMIT 200"
hook_claim="SELECT d.id FROM webhook_deliveries d WHERE d.status = 'queued' AND +d.next_attempt_at <= 1 AND (d.lease_until IS NULL OR d.lease_until < 1) AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.status = 'queued' AND e.endpoint = d.endpoint AND e.ticket_id = d.ticket_id AND e.event_id < d.event_id) ORDER BY d.event_id LIMIT 8"

for n in $sizes; do
  for backend in $backends; do
    case $backend in
    sqlite)
      url="sqlite:$work/b$n.db"
      config "$url" "$work/out$n-$backend" > "$work/b.toml"
      "$bin" --config "$work/b.toml" migrate > /dev/null
      backlog "$n" "CAST('Subject: hola' AS BLOB)" | sqlite3 "$work/b$n.db"
      if [ "$n" = "${sizes%% *}" ]; then
        echo "sqlite outbox claim plan:"; sqlite3 "$work/b$n.db" "EXPLAIN QUERY PLAN $outbox_claim" | sed 's/^/  /'
        echo "sqlite webhook claim plan:"; sqlite3 "$work/b$n.db" "EXPLAIN QUERY PLAN $hook_claim" | sed 's/^/  /'
      fi
      ;;
    postgres)
      if [ -z "$pg_dir" ]; then
        eval "$(BUZON_PG_DURABLE=1 bash "$H/pg-start.sh")"
        pg_dir=$BUZON_TEST_PG_DIR
      fi
      psql "$BUZON_TEST_POSTGRES_URL" -qc "CREATE DATABASE bench$n" > /dev/null
      url="${BUZON_TEST_POSTGRES_URL%/*}/bench$n"
      config "$url" "$work/out$n-$backend" > "$work/b.toml"
      "$bin" --config "$work/b.toml" migrate > /dev/null
      backlog "$n" "convert_to('Subject: hola', 'UTF8')" | psql "$url" -q -v ON_ERROR_STOP=1
      for t in tickets outbox webhook_events webhook_deliveries; do
        psql "$url" -qAt -c "SELECT setval(pg_get_serial_sequence('$t', 'id'), (SELECT MAX(id) FROM $t))" > /dev/null
      done
      psql "$url" -q -c "VACUUM ANALYZE"
      if [ "$n" = "${sizes%% *}" ]; then
        echo "postgres outbox claim plan:"; psql "$url" -qAt -c "EXPLAIN $outbox_claim" | sed 's/^/  /'
        echo "postgres webhook claim plan:"; psql "$url" -qAt -c "EXPLAIN $hook_claim" | sed 's/^/  /'
      fi
      ;;
    esac
    start=$(date +%s.%N)
    "$bin" --config "$work/b.toml" outbox flush > /dev/null 2> "$work/flush.log"
    end=$(date +%s.%N)
    files=$(find "$work/out$n-$backend" -name '*.eml' | wc -l)
    rate "$backend, $n queued: outbox flush ($files files)" "$n" "$start" "$end"
    start=$(date +%s.%N)
    BENCH_HOOK_SECRET=$secret "$bin" --config "$work/b.toml" run --once > /dev/null 2> "$work/run.log"
    end=$(date +%s.%N)
    rate "$backend, $n queued: webhooks delivered (run --once)" "$n" "$start" "$end"
  done
done
