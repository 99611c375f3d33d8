#!/usr/bin/env bash
# Install the Debian 12 packages that the test servers need, and only those that are missing.
# Idempotent and cheap: when everything is there it only runs one dpkg-query (~0.05 s).
#
#   bash tests/harness/install-packages.sh
#
# Needs root to install. As a normal user it installs nothing: it checks, and if something
# is missing it fails with the list of Debian packages to install (sudo apt-get install ...).
#
# Packages: postgresql (initdb/pg_ctl under /usr/lib/postgresql/*/bin), dovecot-imapd,
# dovecot-lmtpd, postfix, openssl, python3, ca-certificates, tzdata, strace, and for the web
# workspace's browser tests chromium, chromium-driver and fonts-dejavu-core. Rootless runs use the
# aiosmtpd bridge instead of Postfix (Postfix only runs as root), so for a normal user
# python3-aiosmtpd replaces postfix in the list (MAILTEST_SMTP=none needs neither).
#
# Nothing is started by this script. On a host where packages may start services
# (systemd, no policy-rc.d), installing them starts the stock PostgreSQL (5432) and Dovecot
# (143/993); the tests never use them (they run private instances on random ports).
set -euo pipefail
log() { echo "install-packages: $*" >&2; }
t0=$(date +%s.%N)

if [ "$(id -u)" = 0 ]; then root=1; else root=0; fi
smtp=${MAILTEST_SMTP:-$([ $root = 1 ] && echo postfix || echo aiosmtpd)}

# Packages checked with dpkg (one dpkg-query call for all of them).
# strace: the durability test checks that the database is synced before the mailbox is touched.
dpkg_pkgs=(dovecot-imapd dovecot-lmtpd ca-certificates tzdata strace chromium chromium-driver fonts-dejavu-core)
[ "$smtp" = postfix ] && dpkg_pkgs+=(postfix)

missing=()
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${dpkg_pkgs[@]}" 2>/dev/null || true)
for p in "${dpkg_pkgs[@]}"; do
  grep -q "^$p ii" <<<"$installed" || missing+=("$p")
done
# Any PostgreSQL server version will do (pg-start.sh takes the newest one it finds).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v openssl >/dev/null || missing+=(openssl)
if ! command -v python3 >/dev/null; then
  missing+=(python3)
  [ "$smtp" = aiosmtpd ] && missing+=(python3-aiosmtpd)
elif [ "$smtp" = aiosmtpd ] && ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  missing+=(python3-aiosmtpd)
fi

if [ ${#missing[@]} = 0 ]; then
  exit 0
fi

if [ $root = 0 ]; then
  log "missing Debian packages: ${missing[*]}"
  log "install them as root:  sudo apt-get install --no-install-recommends ${missing[*]}"
  [[ " ${missing[*]} " == *" python3-aiosmtpd "* ]] &&
    log "(python3-aiosmtpd: or 'pip install aiosmtpd' for the python3 on your PATH)"
  exit 1
fi

log "installing: ${missing[*]}"
# Without this Postfix's debconf default ("Internet Site") writes /etc/postfix/main.cf and
# sets up a system MTA; our Postfix runs with its own private config only.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null
}
apt-get update -q </dev/null >&2
# One retry: a dpkg run has been seen to fail once ("cannot access archive", its temp dir
# vanished mid-install) and to succeed when simply run again.
if ! apt_install >&2; then
  log "apt-get install failed; retrying once"
  dpkg --configure -a >&2 || true
  apt_install >&2
fi
log "installed in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
