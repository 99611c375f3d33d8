#!/usr/bin/env bash
# Search benchmark (not a test; issue 14): TICKETS tickets with MESSAGES messages of Spanish
# support mail (default 250,000 / 1,000,000; benches/search.py: the web tray bench's history
# with a varied vocabulary, agents' replies and internal comments), written into a database
# `buzon migrate` created and indexed by migration 0011's own statements; then 200 mixed
# searches (50 order numbers, 50 words, 50 phrases, 50 addresses, each taken from the rows)
# through the store's search (benches/search.rs: the first page of 50, every state, as the
# tray asks), one after another, on SQLite and on PostgreSQL. Prints p50 / p95 / max per kind
# and over all, the time to generate and index, and the sizes. The target is p95 < 50 ms at
# 1,000,000 messages.
#
# The generated databases are kept (BENCH_CACHE, default /var/tmp/buzon-bench-search, one
# directory per size: a few GB at the default size, readable by the postgres user), so a
# second run only migrates (a new index) and searches. BENCH_FRESH=1 generates them again.
#
# How the rows are indexed: SQLite's rows are inserted with the triggers on, so the triggers
# index each one as intake would; PostgreSQL's are copied (COPY) with the triggers off and
# then indexed by the statements an upgrade runs (the end of migration 0011: the same views
# the triggers read), which is timed as "an upgrade's indexing". The same documents either way.
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
cache=${BENCH_CACHE:-/var/tmp/buzon-bench-search}/$tickets-$messages
H=tests/harness
# shellcheck source=tests/harness/lib.sh
. "$H/lib.sh"
bash "$H/install-packages.sh" >/dev/null
command -v sqlite3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sqlite3 >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target}
cargo build --release --locked --quiet
bin=$CARGO_TARGET_DIR/release/buzon
cargo bench --locked --quiet --bench search --no-run 2>/dev/null
[ "${BENCH_FRESH:-0}" = 1 ] && rm -rf "$cache"
mkdir -p "$cache"
chmod 711 "$cache" "$(dirname "$cache")"
work=$(mktemp -d)
pg_data=""
if harness_is_root; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi
cleanup() {
  if [ -n "$pg_data" ] && [ -s "$pg_data/postmaster.pid" ]; then
    as_pg "$(cat "$cache/pg/bindir")/pg_ctl" -D "$pg_data" stop -m fast -w -s >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
t0=$SECONDS
seconds_since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$1" "$(date +%s.%N)"; }
echo "settings: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); release build; $tickets tickets," \
  "$messages messages; one search at a time; SQLite as buzon sets it (WAL, synchronous=FULL);" \
  "PostgreSQL $(psql --version | awk '{print $3}') fsync=on synchronous_commit=on; cache $cache"
config() { printf '[deployment]\nname = "Bench"\n[database]\nurl = "%s"\n' "$1"; }

for backend in $backends; do
  case $backend in
  sqlite)
    db=$cache/sqlite.db
    url="sqlite:$db"
    config "$url" > "$work/migrate.toml"
    if [ ! -e "$cache/sqlite.done" ]; then
      rm -f "$db" "$db-wal" "$db-shm"
      "$bin" --config "$work/migrate.toml" migrate > /dev/null
      start=$(date +%s.%N)
      python3 benches/search.py sqlite "$db" "$tickets" "$messages" "$cache/queries"
      echo "sqlite: generated and indexed (triggers) in $(seconds_since "$start") s" | tee "$cache/sqlite.done"
      # An upgrade indexes what the database holds in migration 0011's last statements: timed
      # here by emptying the index and running them again.
      backfill=$(sed -n '/^-- An existing database/,$p' migrations/sqlite/0011_search.sql)
      sqlite3 "$db" "DELETE FROM search_docs"
      start=$(date +%s.%N)
      docs=$(printf '%s\nSELECT COUNT(*) FROM search_docs;\n' "$backfill" | sqlite3 "$db")
      echo "sqlite: an upgrade's indexing (migration 0011 on these rows): $docs documents in" \
        "$(seconds_since "$start") s" | tee -a "$cache/sqlite.done"
    else
      cat "$cache/sqlite.done"
    fi
    "$bin" --config "$work/migrate.toml" migrate > /dev/null
    sizes=$(sqlite3 "$db" "SELECT (SELECT COUNT(*) FROM messages) || ' messages, ' || \
      (SELECT COUNT(*) FROM search_docs) || ' documents indexed; index ' || \
      (SELECT SUM(pgsize) / 1048576 FROM dbstat WHERE name LIKE 'search_docs%') || ' MB of ' || \
      (SELECT page_count * page_size / 1048576 FROM pragma_page_count, pragma_page_size) || ' MB'")
    echo "sqlite: $sizes"
    ;;
  postgres)
    if [ ! -e "$cache/postgres.done" ]; then
      rm -rf "$cache/pg" "$cache"/buzon-pg.*
      eval "$(BUZON_PG_DURABLE=1 BUZON_TEST_RUN_DIR=$cache bash "$H/pg-start.sh")"
      ln -s "$(basename "$BUZON_TEST_PG_DIR")" "$cache/pg"   # its configuration names that directory
      pg_data=$cache/pg/data
      psql "$BUZON_TEST_POSTGRES_URL" -qc "CREATE DATABASE buzon_bench" > /dev/null
      url="${BUZON_TEST_POSTGRES_URL%/*}/buzon_bench"
      config "$url" > "$work/migrate.toml"
      "$bin" --config "$work/migrate.toml" migrate > /dev/null
      start=$(date +%s.%N)
      mkdir "$work/copy"
      tables=$(python3 benches/search.py pgcopy "$work/copy" "$tickets" "$messages" "$cache/queries")
      while read -r table cols; do
        psql "$url" -q -v ON_ERROR_STOP=1 -c "ALTER TABLE $table DISABLE TRIGGER USER" \
          -c "\\copy $table ($cols) FROM '$work/copy/$table.copy'" -c "ALTER TABLE $table ENABLE TRIGGER USER"
        rm "$work/copy/$table.copy"
      done <<< "$tables"
      for t in tickets messages events outbox; do
        psql "$url" -qAt -c "SELECT setval(pg_get_serial_sequence('$t', 'id'), (SELECT MAX(id) FROM $t))" > /dev/null
      done
      loaded=$(seconds_since "$start")
      backfill=$(sed -n '/^-- An existing database/,$p' migrations/postgres/0011_search.sql)
      start=$(date +%s.%N)
      docs=$(psql "$url" -qAt -v ON_ERROR_STOP=1 -c "SET maintenance_work_mem = '256MB'" -c "$backfill" \
        -c "SELECT COUNT(*) FROM search_docs")
      indexed=$(seconds_since "$start")
      psql "$url" -q -c "VACUUM ANALYZE"
      { echo "postgres: generated and copied in $loaded s (triggers off)"
        echo "postgres: an upgrade's indexing (migration 0011 on these rows): $docs documents in $indexed s"
      } | tee "$cache/postgres.done"
    else
      cat "$cache/postgres.done"
      pg_data=$cache/pg/data
      port=$(free_ports 1)
      echo "port = $port" > "$pg_data/port.conf"
      harness_is_root && chown postgres: "$pg_data/port.conf"
      as_pg "$(cat "$cache/pg/bindir")/pg_ctl" -D "$pg_data" -l "$cache/pg/postgres.log" -w -t 60 -s start
      url="postgres://postgres@127.0.0.1:$port/buzon_bench"
      config "$url" > "$work/migrate.toml"
    fi
    "$bin" --config "$work/migrate.toml" migrate > /dev/null
    psql "$url" -q -c "ANALYZE"
    sizes=$(psql "$url" -qAt -c "SELECT (SELECT COUNT(*) FROM messages) || ' messages, ' || \
      (SELECT COUNT(*) FROM search_docs) || ' documents indexed; index ' || \
      pg_size_pretty(pg_total_relation_size('search_docs')) || ' (GIN ' || \
      pg_size_pretty(pg_relation_size('search_docs_words')) || ') of ' || \
      pg_size_pretty(pg_database_size(current_database()))")
    echo "postgres: $sizes"
    ;;
  *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  BENCH_DATABASE_URL=$url BENCH_QUERIES=$cache/queries cargo bench --locked --quiet --bench search
  if [ "$backend" = postgres ]; then
    as_pg "$(cat "$cache/pg/bindir")/pg_ctl" -D "$pg_data" stop -m fast -w -s >/dev/null
    pg_data=""
  fi
done
echo "total $((SECONDS - t0)) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
