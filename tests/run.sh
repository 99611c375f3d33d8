#!/usr/bin/env bash
# The project's test command:
#
#   bash tests/run.sh                         # everything
#   bash tests/run.sh -- store                # extra args for `cargo test` (here a name filter)
#   bash tests/run.sh -- --test imap -- --nocapture   # cargo args -- test-binary args
#
# Steps: install the missing Debian packages (tests/harness/install-packages.sh), start a
# private PostgreSQL (unless BUZON_TEST_POSTGRES_URL is set) and a private mail stack
# (unless IMAP_PORT is set), run
#   cargo test --locked [ARGS] -- --test-threads=2 [TEST ARGS]
# and stop what it started, on success, failure or interrupt. Exits with cargo's status.
#
# Environment the tests get (on top of the harness's export lines, see tests/harness/*-start.sh):
#   BUZON_TEST_POSTGRES_URL, BUZON_TEST_PG_DIR                       PostgreSQL
#   MAILTEST_DIR IMAP_PORT IMAPS_PORT LMTP_PORT SMTP_PORT SUBMISSION_PORT SMTPS_PORT
#   MAILTEST_CA DOVECOT_CONF                                          mail stack
#   BUZON_TEST_RUN_DIR  temp dir of this run: stacks that tests start themselves with
#                       tests/harness/*-start.sh land in it, and are stopped and deleted at
#                       the end even if a killed test leaked them
#   BUZON_SHARED_DIR    ../shared beside the repo, if it exists (optional robustness corpus)
#   CARGO_TARGET_DIR    default ${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target, so that
#                       repeated runs (CI's fresh clones too) reuse the build
# Knobs:
#   BUZON_TEST_DRY_RUN=1     do everything but run `true` instead of cargo (to check the harness)
#   BUZON_TEST_DRY_RUN=CMD   ... run `bash -c CMD` instead of cargo, e.g. 'exit 3' to check
#                            that the failure path still cleans up and passes the status on
#   BUZON_TEST_KEEP=1        keep the servers' temp dirs (logs) after stopping them
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
H=$repo/tests/harness
# shellcheck source=tests/harness/lib.sh
. "$H/lib.sh"

t_start=$SECONDS
step() { printf '==> [%3ss] %s\n' "$((SECONDS - t_start))" "$*"; }

# Arguments: [--] CARGO_ARGS... [-- TEST_ARGS...]
[ "${1:-}" = -- ] && shift
cargo_args=() test_args=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; test_args=("$@"); break; fi
  cargo_args+=("$1"); shift
done
threads=(--test-threads=2)
for a in "${test_args[@]}"; do [[ $a == --test-threads* ]] && threads=(); done

# --- cleanup: stop what this script started, and anything leaked into its run dir ---------
RUN_DIR="" pg_dir="" mail_dir=""
cleanup() {
  local rc=$? d
  trap - EXIT INT TERM HUP
  set +e
  if [ -n "$RUN_DIR" ] && [ -d "$RUN_DIR" ]; then
    # Quiet on success, so that cargo's summary stays the last thing printed.
    [ "$rc" = 0 ] || echo "==> [$((SECONDS - t_start))s] stopping test servers (exit status $rc)" >&2
    # Ours, plus any other stack in the run dir (started by tests themselves, or leaked by
    # a killed test or a failed start). All in parallel: Dovecot alone takes ~1.1 s to stop.
    local -a mails=() pgs=()
    [ -n "$mail_dir" ] && mails+=("$mail_dir")
    [ -n "$pg_dir" ] && pgs+=("$pg_dir")
    local ours=$((${#mails[@]} + ${#pgs[@]}))
    for d in "$RUN_DIR"/buzon-mail.*; do [ -d "$d" ] && [ "$d" != "$mail_dir" ] && mails+=("$d"); done
    for d in "$RUN_DIR"/buzon-pg.*; do [ -d "$d" ] && [ "$d" != "$pg_dir" ] && pgs+=("$d"); done
    local others=$((${#mails[@]} + ${#pgs[@]} - ours))
    [ "$others" -gt 0 ] && echo "    also stopping $others other server dir(s) left in $RUN_DIR" >&2
    for d in "${mails[@]}"; do bash "$H/mail-stop.sh" "$d" & done
    for d in "${pgs[@]}"; do bash "$H/pg-stop.sh" "$d" & done
    wait
    if [ "${BUZON_TEST_KEEP:-0}" = 1 ]; then echo "    kept: $RUN_DIR" >&2; else rm -rf "$RUN_DIR"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

step "packages (tests/harness/install-packages.sh)"
bash "$H/install-packages.sh"

RUN_DIR=$(harness_mktemp buzon-test)
export BUZON_TEST_RUN_DIR=$RUN_DIR

if [ -z "${BUZON_TEST_POSTGRES_URL:-}" ]; then
  step "starting PostgreSQL (tests/harness/pg-start.sh)"
  out=$(bash "$H/pg-start.sh")
  eval "$out"
  pg_dir=$BUZON_TEST_PG_DIR
  echo "    $BUZON_TEST_POSTGRES_URL"
else
  step "PostgreSQL: using BUZON_TEST_POSTGRES_URL from the environment"
fi

if [ -z "${IMAP_PORT:-}" ]; then
  step "starting mail servers (tests/harness/mail-start.sh)"
  out=$(bash "$H/mail-start.sh")
  eval "$out"
  mail_dir=$MAILTEST_DIR
  echo "    IMAP $IMAP_PORT  IMAPS $IMAPS_PORT  LMTP $LMTP_PORT  SMTP ${SMTP_PORT:--}  SUBMISSION ${SUBMISSION_PORT:--}  SMTPS ${SMTPS_PORT:--}"
else
  step "mail servers: using IMAP_PORT etc. from the environment"
fi

if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -n "${XDG_CACHE_HOME:-}${HOME:-}" ]; then
  export CARGO_TARGET_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target
fi
if [ -z "${BUZON_SHARED_DIR:-}" ] && [ -d ../shared ]; then
  BUZON_SHARED_DIR=$(cd ../shared && pwd)
  export BUZON_SHARED_DIR
fi

cmd=(cargo test --locked "${cargo_args[@]}" -- "${threads[@]}" "${test_args[@]}")
step "${cmd[*]}   (CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target})"
case ${BUZON_TEST_DRY_RUN:-} in
  "" | 0) ;;
  1) echo "    BUZON_TEST_DRY_RUN=1: running 'true' instead"; cmd=(true) ;;
  *) echo "    BUZON_TEST_DRY_RUN: running 'bash -c \"$BUZON_TEST_DRY_RUN\"' instead"; cmd=(bash -c "$BUZON_TEST_DRY_RUN") ;;
esac
set +e
"${cmd[@]}"
status=$?
set -e
exit "$status"
