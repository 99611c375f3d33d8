#!/usr/bin/env bash
# The fuzzers' long run (not a test): every target of tests/fuzz.rs for
# SECONDS each (default 600) over the whole shared corpus, on a release
# build, one target at a time at low priority so it can share the machine.
# Prints each target's inputs tried and time, then the totals (wall and CPU
# time). A crash stops the run and names the input saved and its seed
# (BUZON_FUZZ_SEED replays it); keep it as a fixture beside its fix.
# Usage: bash benches/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-600}
[ -x /usr/bin/time ] || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends time >/dev/null
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target}
nice -n 19 cargo test --release --locked --quiet --test fuzz --no-run
log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$(date +%s)
BUZON_FUZZ_SECONDS=$secs BUZON_FUZZ_CORPUS=all \
  /usr/bin/time -f 'cpu %U s user, %S s system; peak RSS %M KB' \
  nice -n 19 cargo test --release --locked --quiet --test fuzz -- --test-threads=1 --nocapture 2>&1 | tee "$log" | grep --line-buffered -E 'fuzz [a-z-]+: |panic|cpu |test result'
ended=$(date +%s)
total=$(grep -Eo 'fuzz [a-z-]+: [0-9]+ inputs' "$log" | awk '{s += $3} END {print s + 0}')
echo "fuzz total: $total inputs in $(( (ended - started) / 60 )) min of wall time"
