#!/usr/bin/env bash
# Search benchmark (not a test; issue 14): TICKETS tickets with MESSAGES messages of Spanish
# support mail (default 250,000 / 1,000,000; benches/search.py: the web tray bench's history
# with a varied vocabulary, agents' replies and internal comments), loaded into a database
# `buzon migrate` created, so migration 0011's triggers index every row as it is written; then
# 200 mixed searches (50 order numbers, 50 words, 50 phrases, 50 addresses, each taken from
# the rows) through the store's search (benches/search.rs: the first page of 50, every state,
# as the tray asks), one after another, on SQLite and on PostgreSQL. Prints p50 / p95 / max
# per kind and over all, the load time (with the index written by the triggers) and the size
# of the index. The target is p95 < 50 ms at 1,000,000 messages.
#
# Usage: bash benches/search.sh                     (root: PostgreSQL runs as "postgres")
#        BENCH_TICKETS=25000 BENCH_MESSAGES=100000 bash benches/search.sh
#        BENCH_BACKENDS="sqlite" (or "postgres") for one of them.
# The IMAP drain with and without the index: BENCH_COMPARE_SEARCH=1 bash benches/imap_drain.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tickets=${BENCH_TICKETS:-250000}
messages=${BENCH_MESSAGES:-1000000}
backends=${BENCH_BACKENDS:-sqlite postgres}
H=tests/harness
# shellcheck source=tests/harness/lib.sh
. "$H/lib.sh"
bash "$H/install-packages.sh" >/dev/null
command -v sqlite3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sqlite3 >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target}
cargo build --release --locked --quiet
bin=$CARGO_TARGET_DIR/release/buzon
cargo bench --locked --quiet --bench search --no-run 2>/dev/null
work=$(mktemp -d)
chmod 711 "$work"
pg_dir=""
cleanup() {
  [ -n "$pg_dir" ] && bash "$H/pg-stop.sh" "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
t0=$SECONDS
echo "settings: $(nproc) cores; release build; $tickets tickets, $messages messages; one search at a time;" \
  "SQLite as buzon sets it (WAL, synchronous=FULL); PostgreSQL $(psql --version | awk '{print $3}') fsync=on synchronous_commit=on"
config() { printf '[deployment]\nname = "Bench"\n[database]\nurl = "%s"\n' "$1"; }

for backend in $backends; do
  case $backend in
  sqlite)
    url="sqlite:$work/bench.db"
    config "$url" > "$work/migrate.toml"
    "$bin" --config "$work/migrate.toml" migrate > /dev/null
    start=$SECONDS
    python3 benches/search.py sqlite "$work/bench.db" "$tickets" "$messages" "$work/queries"
    sizes=$(sqlite3 "$work/bench.db" "SELECT (SELECT COUNT(*) FROM messages) || ' messages, ' || \
      (SELECT COUNT(*) FROM search_docs) || ' documents indexed; index ' || \
      (SELECT SUM(pgsize) / 1048576 FROM dbstat WHERE name LIKE 'search_docs%') || ' MB of ' || \
      (SELECT page_count * page_size / 1048576 FROM pragma_page_count, pragma_page_size) || ' MB'")
    echo "sqlite: loaded in $((SECONDS - start)) s: $sizes"
    ;;
  postgres)
    eval "$(BUZON_PG_DURABLE=1 bash "$H/pg-start.sh")"
    pg_dir=$BUZON_TEST_PG_DIR
    psql "$BUZON_TEST_POSTGRES_URL" -qc "CREATE DATABASE buzon_bench" > /dev/null
    url="${BUZON_TEST_POSTGRES_URL%/*}/buzon_bench"
    config "$url" > "$work/migrate.toml"
    "$bin" --config "$work/migrate.toml" migrate > /dev/null
    start=$SECONDS
    mkdir "$work/copy"
    python3 benches/search.py pgcopy "$work/copy" "$tickets" "$messages" "$work/queries" |
      while read -r table cols; do
        psql "$url" -q -v ON_ERROR_STOP=1 -c "\\copy $table ($cols) FROM '$work/copy/$table.copy'"
        rm "$work/copy/$table.copy"
      done
    for t in tickets messages events outbox; do
      psql "$url" -qAt -c "SELECT setval(pg_get_serial_sequence('$t', 'id'), (SELECT MAX(id) FROM $t))" > /dev/null
    done
    psql "$url" -q -c "VACUUM ANALYZE"
    sizes=$(psql "$url" -qAt -c "SELECT (SELECT COUNT(*) FROM messages) || ' messages, ' || \
      (SELECT COUNT(*) FROM search_docs) || ' documents indexed; index ' || \
      pg_size_pretty(pg_total_relation_size('search_docs')) || ' (GIN ' || \
      pg_size_pretty(pg_relation_size('search_docs_words')) || ') of ' || \
      pg_size_pretty(pg_database_size(current_database()))")
    echo "postgres: loaded in $((SECONDS - start)) s: $sizes"
    ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  BENCH_DATABASE_URL=$url BENCH_QUERIES=$work/queries cargo bench --locked --quiet --bench search
  # An upgrade indexes what the database holds in migration 0011's last statements: timed
  # here by emptying the index and running them again.
  backfill=$(sed -n '/^-- An existing database/,$p' "migrations/$backend/0011_search.sql")
  case $backend in
  sqlite)
    sqlite3 "$work/bench.db" "DELETE FROM search_docs"
    start=$(date +%s.%N)
    docs=$(printf '%s\nSELECT COUNT(*) FROM search_docs;\n' "$backfill" | sqlite3 "$work/bench.db") ;;
  postgres)
    psql "$url" -qc "TRUNCATE search_docs"
    start=$(date +%s.%N)
    docs=$(psql "$url" -qAt -c "$backfill" -c "SELECT COUNT(*) FROM search_docs") ;;
  esac
  echo "$backend: an upgrade's indexing (migration 0011 on these rows): $docs documents in" \
    "$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$start" "$(date +%s.%N)") s"
done
echo "total $((SECONDS - t0)) s"
