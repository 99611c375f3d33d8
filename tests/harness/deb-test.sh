#!/usr/bin/env bash
# The Debian package as an admin meets it (root; run by tests/package.rs):
# build it (deb-build.sh, mode $1, default `test`), `apt-get install` it,
# check files, user and permissions, `buzon check` on the installed example
# (0) and on a broken one (78, every problem listed), run the installed
# binary as the `buzon` user with the unit's command line until it tells
# systemd READY and serves /healthz, check the unit (systemd-analyze), then
# `apt-get purge` it and check that nothing is left.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$(pwd)
[ "$(id -u)" = 0 ] || { echo "deb-test.sh: needs root (apt-get install)" >&2; exit 1; }

# One package test at a time on this machine: they install the same package.
exec 9>/run/lock/buzon-deb-test.lock
flock 9

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "==> $*" >&2; }
perm() { stat -c '%a %U:%G' "$1"; }
expect_perm() { [ "$(perm "$1")" = "$2" ] || fail "$1 is $(perm "$1"), expected $2"; }

work=$(mktemp -d)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null
  [ -f "$work/buzon.toml.orig" ] && cp -p "$work/buzon.toml.orig" /etc/buzon/buzon.toml 2>/dev/null
  dpkg -s buzon >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq buzon >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

step "build (deb-build.sh ${1:-test})"
deb=$(bash tests/harness/deb-build.sh "${1:-test}" "$work/out")
[ -f "$deb" ] || fail "no .deb built"

if dpkg -s buzon >/dev/null 2>&1; then
  step "purging a buzon installed before"
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq buzon >/dev/null
fi

step "apt-get install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$deb" >/dev/null

step "files, user, permissions"
expect_perm /usr/bin/buzon "755 root:root"
expect_perm /etc/buzon "750 root:buzon"
expect_perm /etc/buzon/buzon.toml "640 root:buzon"
expect_perm /etc/buzon/rules/00-vocabulario.toml "644 root:root"
expect_perm /etc/buzon/templates/acknowledgement.txt "644 root:root"
expect_perm /var/lib/buzon "750 buzon:buzon"
getent passwd buzon | grep -q ':/var/lib/buzon:' || fail "user buzon: $(getent passwd buzon)"
case $(getent passwd buzon | cut -d: -f7) in */nologin | */false) ;; *) fail "user buzon has a login shell" ;; esac
[ "$(getent passwd buzon | cut -d: -f3)" -lt 1000 ] || fail "user buzon is not a system user"
unit=/usr/lib/systemd/system/buzon.service
# systemd tests RestartPreventExitStatus= against the main process only: a
# check in ExecStartPre exiting 78 would be restarted forever.
! grep -q '^ExecStartPre=' "$unit" || fail "unit: an ExecStartPre's exit 78 is restarted (RestartPreventExitStatus= sees the main process only)"
grep -qx 'RestartPreventExitStatus=78' "$unit" || fail "unit: no RestartPreventExitStatus=78"
grep -qx 'Restart=on-failure' "$unit" || fail "unit: no Restart=on-failure"
grep -q '^ExecStart=/usr/bin/buzon ' "$unit" || fail "unit: ExecStart is not /usr/bin/buzon"
[ -f /usr/lib/sysusers.d/buzon.conf ] || fail "no sysusers.d/buzon.conf"
for f in /usr/share/man/man1/buzon.1.gz /usr/share/man/man1/buzon-check.1.gz \
  /usr/share/bash-completion/completions/buzon /usr/share/zsh/vendor-completions/_buzon \
  /usr/share/fish/vendor_completions.d/buzon.fish; do
  [ -s "$f" ] || fail "missing $f"
done
zgrep -q 'log in to each IMAP account' /usr/share/man/man1/buzon-check.1.gz || fail "the man page of check lacks --connect"
for team in genera-factoring mesa-de-ayuda pvi tupatrimonio tuprocurador; do
  [ -f "/usr/share/doc/buzon/examples/$team/buzon.toml" ] || fail "no example for $team"
  ls "/usr/share/doc/buzon/examples/$team/rules/"*.toml >/dev/null || fail "no rules for $team"
done
for f in /etc/buzon/buzon.toml /etc/buzon/rules/00-vocabulario.toml /etc/buzon/templates/acknowledgement.txt; do
  grep -qx "$f" /var/lib/dpkg/info/buzon.conffiles || fail "$f is not a conffile"
done

step "buzon check on the installed example (root, then the buzon user)"
buzon check || fail "buzon check: exit $?"
runuser -u buzon -- /usr/bin/buzon --config /etc/buzon/buzon.toml check >/dev/null || fail "check as buzon: exit $?"
buzon rules test >/dev/null || fail "buzon rules test"

step "a broken configuration: exit 78, every problem listed"
cp -p /etc/buzon/buzon.toml "$work/buzon.toml.orig"
sed -i 's|^url = "sqlite:/var/lib/buzon/buzon.db"|url = "mysql://buzon"|; s|^listen = "127.0.0.1:9187"|listen = "127.0.0.1:99999"|; s|^address = "soporte@example.cl"|address = "soporte"|; s|^priority = "media"|priority = "altisima"|' /etc/buzon/buzon.toml
set +e
runuser -u buzon -- /usr/bin/buzon --config /etc/buzon/buzon.toml check 2>"$work/check.err"
status=$?
set -e
[ "$status" = 78 ] || fail "broken config: exit $status, expected 78: $(cat "$work/check.err")"
for key in database.url daemon.listen mailboxes.soporte.address mailboxes.soporte.priority; do
  grep -q "^  $key: " "$work/check.err" || fail "problem of $key not listed: $(cat "$work/check.err")"
done
[ "$(grep -c '^  ' "$work/check.err")" = 4 ] || fail "expected 4 problems: $(cat "$work/check.err")"
# The unit's main process exits 78 itself (what RestartPreventExitStatus=78 sees).
cmd=$(sed -n 's/^ExecStart=//p' "$unit")
set +e
# shellcheck disable=SC2086 # the unit's words
runuser -u buzon -- $cmd 2>"$work/run78.err"
status=$?
set -e
[ "$status" = 78 ] || fail "run on a broken config: exit $status, expected 78: $(cat "$work/run78.err")"
grep -q "database.url" "$work/run78.err" || fail "run does not name the problem: $(cat "$work/run78.err")"
cp -p "$work/buzon.toml.orig" /etc/buzon/buzon.toml
rm "$work/buzon.toml.orig"

step "a broken template: run exits 78 naming file:line, before opening the database"
cp -p /etc/buzon/templates/acknowledgement.txt "$work/ack.orig"
printf '\n{{ ticket \n' >>/etc/buzon/templates/acknowledgement.txt
set +e
# shellcheck disable=SC2086 # the unit's words
runuser -u buzon -- $cmd 2>"$work/run78.err"
status=$?
set -e
[ "$status" = 78 ] || fail "run on a broken template: exit $status, expected 78: $(cat "$work/run78.err")"
grep -q "acknowledgement.txt:[0-9]" "$work/run78.err" || fail "run does not name file:line: $(cat "$work/run78.err")"
[ ! -e /var/lib/buzon/buzon.db ] || fail "run created the database before refusing the template"
cp -p "$work/ack.orig" /etc/buzon/templates/acknowledgement.txt

step "the installed binary as the buzon user, the unit's command line, until READY"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sock=$work/notify.sock
chmod 755 "$work"
python3 - "$sock" >"$work/notify.out" <<'PY' &
import socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777)
s.settimeout(60)
while True:
    msg = s.recv(4096).decode()
    print(msg, flush=True)
    if "READY=1" in msg.split("\n"):
        break
PY
listener=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
umask_=$(sed -n 's/^UMask=//p' "$unit")
# shellcheck disable=SC2086 # the unit's words
(umask "$umask_" && exec setpriv --reuid buzon --regid buzon --init-groups \
  env NOTIFY_SOCKET="$sock" BUZON_LOG=info BUZON_DAEMON__LISTEN="127.0.0.1:$port" \
  $cmd 2>"$work/run.err") &
daemon_pid=$!
wait "$listener" || fail "no READY=1 within 60 s: $(cat "$work/run.err")"
curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || fail "/healthz did not answer: $(cat "$work/run.err")"
expect_perm /var/lib/buzon/buzon.db "600 buzon:buzon"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "buzon run exited $? on SIGTERM: $(cat "$work/run.err")"
daemon_pid=""

if command -v systemd-analyze >/dev/null; then
  step "systemd-analyze verify and security on the installed unit"
  systemd-analyze verify "$unit" 2>&1 | grep -v -e 'Failed to .*journal' -e 'not running' | tee "$work/verify" >&2 || true
  [ ! -s "$work/verify" ] || fail "systemd-analyze verify: $(cat "$work/verify")"
  exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for buzon.service: \([0-9.]*\).*/\1/p')
  echo "    exposure $exposure" >&2
  awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 1.5) }' || fail "systemd-analyze security: $exposure > 1.5"
fi

step "apt-get purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq buzon >/dev/null
for path in /usr/bin/buzon /etc/buzon /var/lib/buzon "$unit" /usr/lib/sysusers.d/buzon.conf /usr/share/doc/buzon; do
  [ ! -e "$path" ] || fail "$path is left after purge"
done
dpkg -s buzon >/dev/null 2>&1 && fail "buzon still known to dpkg after purge"
echo "deb-test.sh: ok" >&2
