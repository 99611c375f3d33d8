#!/usr/bin/env bash
# The fault campaign (a bench, not a test; `tests/faults.rs` runs a short version in CI).
# Against the real servers of the test harness (a private Dovecot, Postfix and PostgreSQL
# of its own, since it stops and restarts them), it prints one line per fault and a summary:
#   - SIGKILL at KILLS random moments of a MAILS-mail drain, started again each time, for
#     dispositions `seen` and `move`, on SQLite and on PostgreSQL;
#   - SIGKILL at KILLS random moments while ACKS acknowledgements go out to Postfix;
#   - PostgreSQL restarted mid-drain; Dovecot restarted mid-drain;
#   - Postfix stopped for DOWN seconds with ACKS acknowledgements queued;
#   - the disk of the SQLite database full mid-drain (a tmpfs the campaign mounts, 64 MB or
#     8 KB a mail, and unmounts at the end, whatever happens), then space given back.
# The counts never ask buzon: mails by Message-ID in the database against what was put in
# the mailbox, flags and folders over IMAP, acknowledgements in the customer's mailbox by
# ticket number. Exit status 0 when every fault lost and doubled nothing.
#
# Usage: bash benches/faults.sh [MAILS [KILLS [ACKS [DOWN]]]]   (root: Postfix and mount)
#        defaults 20000 25 1000 180
#   FAULTS_BIN=path/to/buzon   the binary (default: a release build of this tree)
#   FAULTS_ONLY="sqlite-disk-full dovecot-restart-mid-drain"   some faults only
#   FAULTS_SEED=N              the same kill moments again (each run prints its seed)
#   FAULTS_KEEP=1              keep the work dir (the daemons' logs)
#   FAULTS_BATCH_BYTES=N       the account's `batch_bytes` (default 1 MiB; 8192 cuts the
#                              campaign's small mail into batches of a few)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
H=$repo/tests/harness
# shellcheck source=tests/harness/lib.sh
. "$H/lib.sh"
harness_is_root || { echo "faults.sh: run as root (Postfix and the small filesystem need it)" >&2; exit 1; }
export FAULTS_MAILS=${1:-20000} FAULTS_KILLS=${2:-25} FAULTS_ACKS=${3:-1000} FAULTS_DOWN=${4:-180}
bash "$H/install-packages.sh" >/dev/null
if [ -z "${FAULTS_BIN:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buzon/target}
  cargo build --release --locked --quiet
  FAULTS_BIN=$CARGO_TARGET_DIR/release/buzon
fi
export FAULTS_BIN
work=$(harness_mktemp buzon-faults)
mail_dir="" pg_dir=""
cleanup() {
  local rc=$?
  set +e
  # Whatever happened: the small filesystem unmounted, the servers stopped, and (on
  # failure) the daemons' logs shown.
  mountpoint -q "$work/small-disk" && umount -l "$work/small-disk"
  if [ "$rc" != 0 ]; then for f in "$work"/*.log; do show_log "$f" 15; done; fi
  [ -n "$mail_dir" ] && bash "$H/mail-stop.sh" "$mail_dir" >/dev/null 2>&1
  [ -n "$pg_dir" ] && bash "$H/pg-stop.sh" "$pg_dir" >/dev/null 2>&1
  if [ "${FAULTS_KEEP:-0}" = 1 ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One mailbox per fault, and the customer's, where the acknowledgements land.
users="customer fkss fksm fkps fkpm fko frp frd fpf fdf"
eval "$(MAILTEST_SMTP=postfix MAILTEST_USERS=$users bash "$H/mail-start.sh" "$work/mail")"
mail_dir=$MAILTEST_DIR
eval "$(BUZON_PG_DURABLE=1 bash "$H/pg-start.sh")"
pg_dir=$BUZON_TEST_PG_DIR
echo "settings: $(nproc) cores; SQLite synchronous=FULL, PostgreSQL fsync and synchronous_commit on; Postfix on loopback; [outbox] lease 5s (10m for the delivery fault: a restart takes back its own claims at once), retry every 2s"
FAULTS_WORK=$work python3 benches/faults.py
