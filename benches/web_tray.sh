#!/usr/bin/env bash
# Web tray benchmark (not a test; issue 12, "Speed"): a year of a busy team's support mail,
# TICKETS tickets with MESSAGES messages (default 100,000 / 300,000), then the time of the
# pages agents open most, on SQLite and on PostgreSQL, served by `buzon run` ([web] listen,
# no [accounts]) to one signed-in agent over loopback, measured with curl (one connection,
# requests one after another, after 5 unmeasured ones per view):
#   - the tray's default view          /                                  (in progress, by activity)
#   - a filtered view                  /?responsable=catalina&estado=new&estado=open
#   - a search for an order number     /?q=75321                          (a `pedido` key)
#   - a search for an address          /?q=felipe.araya.c@gmail.example   (10s of tickets)
# and prints p50 / p95 / max of REQUESTS requests (default 200) per view per backend. The
# target is p95 < 100 ms. Every page also computes the header's badge (the agent's tickets
# waiting on them, their open alerts).
#
# The rows are written directly with SQL into a database `buzon migrate` created (the real
# pipeline would take most of an hour for 300,000 messages): benches/web_tray.py writes
# tickets, messages (raw bytes included), ticket_keys, participants, message_mailboxes,
# events and alerts in the shape `buzon ingest` writes them (see its header); not the outbox.
# SQLite: python's sqlite3, then served as buzon opens it (WAL, synchronous=FULL, no ANALYZE:
# buzon never runs it). PostgreSQL: psql \copy, then VACUUM ANALYZE (what autovacuum does
# after a bulk load), fsync, synchronous_commit and full_page_writes on (BUZON_PG_DURABLE=1).
#
# Usage: bash benches/web_tray.sh                   (root: PostgreSQL runs as "postgres")
#        BENCH_TICKETS=20000 BENCH_MESSAGES=60000 BENCH_REQUESTS=100 bash benches/web_tray.sh
#        BENCH_BIN=path/to/buzon to measure another build (e.g. an older commit's);
#        BENCH_BACKENDS="sqlite" (or "postgres") for one of them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tickets=${BENCH_TICKETS:-100000}
messages=${BENCH_MESSAGES:-300000}
requests=${BENCH_REQUESTS:-200}
backends=${BENCH_BACKENDS:-sqlite postgres}
H=tests/harness
# shellcheck source=tests/harness/lib.sh
. "$H/lib.sh"
bash "$H/install-packages.sh" >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target}
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --locked --quiet
  BENCH_BIN=$CARGO_TARGET_DIR/release/buzon
fi
bin=$BENCH_BIN
work=$(mktemp -d)
chmod 711 "$work"
pg_dir="" daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  [ -n "$pg_dir" ] && bash "$H/pg-stop.sh" "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
t0=$SECONDS
echo "settings: $(nproc) cores; release build; $tickets tickets, $messages messages; $requests requests a view, one connection;" \
  "SQLite as buzon sets it (WAL, synchronous=FULL); PostgreSQL $(psql --version | awk '{print $3}') fsync=on synchronous_commit=on full_page_writes=on"

mkdir -p "$work/rules"
cat > "$work/rules/10-claves.toml" <<'EOT'
[[rule]]
name = "pedido"
when.subject_or_body.regex = '(?:pedido)\s*(?:n(?:[°º.]|ro\.?|umero)?\s*)?[:#]?\s*(?P<pedido>\d{4,7})'
EOT
config() { # $1 database url, $2 web port
  cat <<EOT
[deployment]
name = "Tu Patrimonio (bench)"
ticket_prefix = "TP-"
time_zone = "America/Santiago"
our_domains = ["tupatrimonio.example"]
[database]
url = "$1"
[daemon]
listen = ""
[web]
listen = "127.0.0.1:$2"
[rules]
dir = "rules"
[outbox]
dir = "outbox"
[mailboxes.soporte]
address = "soporte@tupatrimonio.example"
pipeline = "Atención a usuarios"
[mailboxes.notarias]
address = "notarias@tupatrimonio.example"
pipeline = "Notarías"
[mailboxes.ventas]
address = "ventas@tupatrimonio.example"
pipeline = "Ventas"
[mailboxes.finanzas]
address = "finanzas@tupatrimonio.example"
pipeline = "Finanzas"
EOT
  local p
  for p in catalina milagros alonso javiera rodrigo ignacio fernanda gerente; do
    printf '[people.%s]\naddress = "%s@tupatrimonio.example"\nrole = "%s"\n' \
      "$p" "$p" "$([ $p = gerente ] && echo admin || echo agent)"
  done
}

# curl's `code seconds` line for each of $requests requests of one URL, on one connection.
measure() { # $1 label, $2 path
  local port=$3 i
  : > "$work/urls"
  for i in $(seq 1 $((requests + 5))); do
    printf 'url = "http://127.0.0.1:%s%s"\noutput = "/dev/null"\n' "$port" "$2" >> "$work/urls"
  done
  curl -s -b "$work/jar" -w '%{http_code} %{time_total}\n' -K "$work/urls" | tail -n +6 > "$work/times"
  python3 benches/web_tray.py times "$1" "$work/times"
}

serve() { # $1 label, $2 url: run the daemon, sign in, measure the views, stop it
  local port
  port=$(free_ports 1)
  config "$2" "$port" > "$work/$1.toml"
  echo 'una clave larga para el bench' | "$bin" --config "$work/$1.toml" passwd catalina > /dev/null
  "$bin" --config "$work/$1.toml" run 2> "$work/$1.log" &
  daemon=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.1; done
  curl -s -o /dev/null -c "$work/jar" --data-urlencode username=catalina \
    --data-urlencode 'password=una clave larga para el bench' "http://127.0.0.1:$port/login"
  grep -q buzon_session "$work/jar" || { echo "sign-in failed" >&2; cat "$work/$1.log" >&2; exit 1; }
  # The searches must find what they look for, or they measure nothing.
  curl -s -b "$work/jar" "http://127.0.0.1:$port/?q=75321" | grep -q 'pedido=75321' ||
    { echo "the search for 75321 does not find its ticket" >&2; exit 1; }
  curl -s -b "$work/jar" "http://127.0.0.1:$port/?q=felipe.araya.c%40gmail.example" | grep -q 'Felipe Araya' ||
    { echo "the search for felipe.araya.c@gmail.example finds nothing" >&2; exit 1; }
  measure "$1: tray, default view (/)" "/" "$port"
  measure "$1: filtered (responsable=catalina, estado=new+open)" "/?responsable=catalina&estado=new&estado=open" "$port"
  measure "$1: search, order number (q=75321)" "/?q=75321" "$port"
  measure "$1: search, address (q=felipe.araya.c@gmail.example)" "/?q=felipe.araya.c%40gmail.example" "$port"
  kill "$daemon"; wait "$daemon" || true; daemon=""
}

for backend in $backends; do
  case $backend in
  sqlite)
    url="sqlite:$work/bench.db"
    config "$url" 1 > "$work/migrate.toml"
    "$bin" --config "$work/migrate.toml" migrate > /dev/null
    start=$SECONDS
    python3 benches/web_tray.py sqlite "$work/bench.db" "$tickets" "$messages"
    counts=$(sqlite3 "$work/bench.db" "SELECT (SELECT COUNT(*) FROM tickets) || ' tickets (' || \
      (SELECT COUNT(*) FROM tickets WHERE state <> 'done') || ' in progress), ' || \
      (SELECT COUNT(*) FROM messages) || ' messages, ' || (SELECT COUNT(*) FROM events) || ' events, ' || \
      (SELECT COUNT(*) FROM alerts WHERE cleared_at IS NULL) || ' open alerts'")
    echo "sqlite: loaded in $((SECONDS - start)) s: $counts; $(du -sh "$work/bench.db" | cut -f1)"
    serve sqlite "$url"
    ;;
  postgres)
    eval "$(BUZON_PG_DURABLE=1 bash "$H/pg-start.sh")"
    pg_dir=$BUZON_TEST_PG_DIR
    psql "$BUZON_TEST_POSTGRES_URL" -qc "CREATE DATABASE buzon_bench" > /dev/null
    url="${BUZON_TEST_POSTGRES_URL%/*}/buzon_bench"
    config "$url" 1 > "$work/migrate.toml"
    "$bin" --config "$work/migrate.toml" migrate > /dev/null
    start=$SECONDS
    mkdir "$work/copy"
    python3 benches/web_tray.py pgcopy "$work/copy" "$tickets" "$messages" |
      while read -r table cols; do
        psql "$url" -q -v ON_ERROR_STOP=1 -c "\\copy $table ($cols) FROM '$work/copy/$table.copy'"
        rm "$work/copy/$table.copy"
      done
    for t in tickets messages events alerts; do
      psql "$url" -qAt -c "SELECT setval(pg_get_serial_sequence('$t', 'id'), (SELECT MAX(id) FROM $t))" > /dev/null
    done
    psql "$url" -q -c "VACUUM ANALYZE"
    counts=$(psql "$url" -qAt -c "SELECT (SELECT COUNT(*) FROM tickets) || ' tickets (' || \
      (SELECT COUNT(*) FROM tickets WHERE state <> 'done') || ' in progress), ' || \
      (SELECT COUNT(*) FROM messages) || ' messages, ' || (SELECT COUNT(*) FROM events) || ' events, ' || \
      (SELECT COUNT(*) FROM alerts WHERE cleared_at IS NULL) || ' open alerts; ' || \
      pg_size_pretty(pg_database_size(current_database()))")
    echo "postgres: loaded in $((SECONDS - start)) s: $counts"
    serve postgres "$url"
    ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
done
echo "total $((SECONDS - t0)) s"
