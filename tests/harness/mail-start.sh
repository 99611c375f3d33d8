#!/usr/bin/env bash
# Start a private, throw-away mail stack on 127.0.0.1, entirely inside one temp dir:
#   Dovecot : IMAP (STARTTLS offered), IMAPS (implicit TLS), LMTP (delivery into the maildirs)
#   SMTP    : Postfix (default as root) or the small aiosmtpd bridge smtp-bridge.py (default
#             for a normal user: Postfix only runs as root). Three listeners:
#             SMTP (like 25: plain, STARTTLS/AUTH optional, 127.0.0.0/8 may send without AUTH),
#             SUBMISSION (like 587: STARTTLS + AUTH required), SMTPS (like 465: implicit TLS +
#             AUTH required). Accepted mail goes over LMTP into the same Dovecot.
# Only @example.test users exist; mail to any other domain is refused, so nothing ever
# leaves the machine. Plus addressing works: support+anything@example.test -> support's INBOX.
#
# Usage:   eval "$(bash tests/harness/mail-start.sh [DIR])"
#          bash tests/harness/mail-stop.sh "$MAILTEST_DIR"
# DIR:     directory to use (default: a new temp dir, see lib.sh). The MAILTEST_DIR variable
#          is NOT read: after an eval it names a running stack, and a second start in the
#          same environment (a test starting its own stack) must not reuse it.
# Env in:  MAILTEST_SMTP  postfix | aiosmtpd | none   (default: postfix if root, else aiosmtpd)
#          MAILTEST_USERS local parts in @example.test (default below); the password of
#                         each user is "<localpart>-pass"
#          MAILTEST_OAUTH2=1  also offer AUTHENTICATE XOAUTH2 / OAUTHBEARER, checked by an
#                         oauth2 passdb that validates JWTs locally (HS256, no HTTP server).
#                         Sign tokens with the base64 key in OAUTH2_KEY_FILE; claims needed:
#                         sub, exp, email = the login name (lower case). Passwords still work.
# Prints:  export MAILTEST_DIR= IMAP_PORT= IMAPS_PORT= LMTP_PORT= SMTP_PORT= SUBMISSION_PORT=
#          SMTPS_PORT= MAILTEST_CA= DOVECOT_CONF=   (SMTP ports are empty with MAILTEST_SMTP=none)
#          OAUTH2_KEY_FILE=   (only with MAILTEST_OAUTH2=1)
# TLS: a self-signed cert for localhost / 127.0.0.1 / ::1; trust MAILTEST_CA (only). Connect to
# 127.0.0.1 and use "localhost" (or the IP) as the TLS server name.
# On failure: prints the logs to stderr, stops what it started, keeps the dir.
#
# Adapted from a tested recipe; the pitfalls it fixes are noted where they are handled.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/harness/lib.sh
. "$here/lib.sh"
log() { echo "mail-start: $*" >&2; }

USERS=${MAILTEST_USERS:-support finanzas customer soporte servicioalcliente sac clientes autoresponder}
OAUTH2=${MAILTEST_OAUTH2:-0}
if harness_is_root; then ROOT=1; SMTP=${MAILTEST_SMTP:-postfix}; else ROOT=0; SMTP=${MAILTEST_SMTP:-aiosmtpd}; fi
[ $ROOT = 1 ] || [ "$SMTP" != postfix ] || { log "Postfix needs root; use MAILTEST_SMTP=aiosmtpd"; exit 1; }
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin ;; esac   # dovecot, postfix
for c in dovecot openssl python3; do
  command -v "$c" >/dev/null || { log "$c not found; run tests/harness/install-packages.sh"; exit 1; }
done
[ "$SMTP" != postfix ] || command -v postfix >/dev/null ||
  { log "postfix not found; run tests/harness/install-packages.sh"; exit 1; }
if [ -n "${1:-}" ]; then
  D=$1; mkdir -p "$D"; D=$(cd "$D" && pwd -P)
  [ $ROOT = 0 ] || chmod 711 "$D"
  for f in "$D/run/master.pid" "$D/postfix/spool/pid/master.pid" "$D/run/smtp-bridge.pid"; do
    [ -s "$f" ] && alive "$(head -1 "$f" | tr -dc 0-9)" &&
      { log "a mail stack already runs in $D (stop it first)"; exit 1; }
  done
else
  D=$(harness_mktemp buzon-mail)
fi

# On any failure: show the logs, stop what this script started, keep the directory.
started=0
on_exit() {
  local rc=$?
  [ $rc = 0 ] && return
  for f in "$D"/log/*; do show_log "$f" 20; done
  [ $started = 1 ] && MAILTEST_KEEP=1 bash "$here/mail-stop.sh" "$D"
  log "failed; logs in $D/log"
}
trap on_exit EXIT

# Wait until a TCP port on 127.0.0.1 sends a greeting starting with $2 (bash /dev/tcp only).
# The braces matter: a bare `exec 3<>/dev/tcp/... 2>/dev/null` would redirect the script's
# stderr for good.
wait_banner() {
  local port=$1 want=$2 line
  for _ in $(seq 100); do
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      line=; IFS= read -r -t 2 line <&3 || true
      exec 3>&- 3<&-
      [[ $line == "$want"* ]] && return 0
    fi
    sleep 0.05
  done
  log "no '$want' greeting on port $port"; return 1
}

mkdir -p "$D"/{run,state,log,tls,mail}
# CA:FALSE matters: rustls rejects openssl's default self-signed cert (CA:TRUE) with
# "CaUsedAsEndEntity"; OpenSSL-based clients accept either.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' \
  -addext 'basicConstraints=critical,CA:FALSE' -addext 'extendedKeyUsage=serverAuth' \
  -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" 2>"$D/log/openssl.err"

# Dovecot passwd-file: user:{scheme}password:uid:gid:gecos:home:shell:extra
: > "$D/users"
for u in $USERS; do echo "$u@example.test:{PLAIN}$u-pass::::::" >> "$D/users"; done

if [ $ROOT = 1 ]; then
  # Dovecot refuses to access mail as root ("Mail access not allowed for root"): mail belongs
  # to 'nobody'; nobody and postfix traverse the 0711 dir (harness_mktemp made it so).
  chown nobody:nogroup "$D/mail"
  PRIV="mail_uid = nobody
mail_gid = nogroup"
else
  # Rootless: every Dovecot process runs as the calling user, no chroots (ports are > 1024).
  PRIV="default_internal_user = $(id -un)
default_internal_group = $(id -gn)
default_login_user = $(id -un)
service anvil {
  chroot =
}
service imap-login {
  chroot =
}"
fi

# Optional XOAUTH2/OAUTHBEARER: an oauth2 passdb with introspection_mode = local checks the
# JWT itself (signature, exp/nbf/iat, email = login name). The key dict is fs:posix: the
# lookup key "shared/<azp|default>/<alg>/<kid|default>" becomes the file
# keys/default/HS256/default (tokens without azp and kid), holding the base64 HMAC key.
# It is tried first and only for those mechanisms; a bad token fails there
# (result_failure = return-fail), never falls through to the passwd-file.
AUTH_MECHS="plain login"
OAUTH2_PASSDB=
if [ "$OAUTH2" = 1 ]; then
  mkdir -p "$D/oauth2/keys/default/HS256"
  openssl rand -base64 32 > "$D/oauth2/keys/default/HS256/default"
  chmod -R a+rX "$D/oauth2"            # read by the auth process (user dovecot as root)
  cat > "$D/oauth2/dovecot-oauth2.conf.ext" <<CONF
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$D/oauth2/keys/
username_attribute = email
CONF
  AUTH_MECHS="plain login xoauth2 oauthbearer"
  # auth_verbose: the reason of each failed token ("Token has expired", "Incorrect JWT
  # signature", "Username ... did not match ...") goes to log/dovecot.log.
  OAUTH2_PASSDB="auth_verbose = yes
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $D/oauth2/dovecot-oauth2.conf.ext
  result_failure = return-fail
}"
fi

write_dovecot_conf() {
  cat > "$D/dovecot.conf" <<CONF
# Private Dovecot instance, generated by tests/harness/mail-start.sh. Everything lives under $D.
instance_name = $(basename "$D")
base_dir = $D/run
state_dir = $D/state
log_path = $D/log/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp
ssl = yes
ssl_cert = <$D/tls/cert.pem
ssl_key = <$D/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = $AUTH_MECHS
auth_failure_delay = 0
# tests never need crash safety: no fsync per saved message (APPEND/LMTP ~75/s -> thousands/s)
mail_fsync = never
mail_location = maildir:~/Maildir
$PRIV
$OAUTH2_PASSDB
passdb {
  driver = passwd-file
  args = scheme=PLAIN $D/users
}
userdb {
  driver = passwd-file
  args = $D/users
  default_fields = home=$D/mail/%d/%n
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}
protocol imap {
  # default 10: parallel tests logging in as one user from 127.0.0.1 would hit
  # "Maximum number of connections from user+IP exceeded"
  mail_max_userip_connections = 1000
}
service imap-login {
  inet_listener imap {
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = $IMAPS_PORT
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    port = $LMTP_PORT
  }
}
service anvil {
  # mode 0 = the auth process cannot connect = no auth penalty: otherwise, after one failed
  # login, the next login from 127.0.0.1 is delayed by 2-15 s.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service auth {
  # SASL socket for Postfix's smtpd (AUTH PLAIN/LOGIN checked against the same users file)
  unix_listener auth-smtp {
    mode = 0666
  }
}
CONF
}

# Start Dovecot. The master binds every listener before it daemonizes, so once `dovecot`
# returns 0 the ports accept connections. Retry with new ports if one was taken meanwhile.
for attempt in 1 2 3; do
  read -r IMAP_PORT IMAPS_PORT LMTP_PORT SMTP_PORT SUBMISSION_PORT SMTPS_PORT <<<"$(free_ports 6)"
  write_dovecot_conf
  if dovecot -c "$D/dovecot.conf" 2>>"$D/log/dovecot.start.err"; then started=1; break; fi
  log "dovecot failed to start (attempt $attempt): $(tail -1 "$D/log/dovecot.start.err")"
  [ $attempt = 3 ] && exit 1
done
wait_banner "$IMAP_PORT" "* OK"

case $SMTP in
postfix)
  P=$D/postfix; mkdir -p "$P/etc" "$P/spool" "$P/data"
  chown postfix:postfix "$P/data"      # master.lock lives here and is created as 'postfix'
  : > "$P/etc/vmailbox"
  for u in $USERS; do echo "$u@example.test OK" >> "$P/etc/vmailbox"; done
  cat > "$P/etc/main.cf" <<CONF
# Private Postfix instance, generated by tests/harness/mail-start.sh (postfix -c $P/etc ...)
compatibility_level = 3.6
queue_directory = $P/spool
data_directory = $P/data
mail_owner = postfix
setgid_group = postdrop
# Postfix logs only to syslog until this is in effect; the default maillog_file_prefixes
# (/var, /dev/stdout) would refuse our path.
maillog_file = $D/log/postfix.log
maillog_file_prefixes = $D/log
myhostname = mail.example.test
mydomain = example.test
myorigin = \$mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no
# user+detail@example.test is delivered to user (Dovecot's LMTP strips "+detail" too)
recipient_delimiter = +
# every test mailbox is "virtual" and delivered over LMTP into the private Dovecot
virtual_mailbox_domains = example.test
virtual_mailbox_maps = texthash:$P/etc/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
# nothing ever leaves the machine: any other domain is refused / bounced
default_transport = error:only example.test is deliverable in tests
relay_transport = error:only example.test is deliverable in tests
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_sasl_type = dovecot
smtpd_sasl_path = $D/run/auth-smtp
smtpd_sasl_auth_enable = yes
smtpd_tls_cert_file = $D/tls/cert.pem
smtpd_tls_key_file = $D/tls/key.pem
smtpd_tls_security_level = may
CONF
  # Every service runs unchrooted ('n' in column 5).
  cat > "$P/etc/master.cf" <<CONF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
127.0.0.1:$SUBMISSION_PORT inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
127.0.0.1:$SMTPS_PORT inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CONF
  # Postfix re-reads a config/map file every 300 ms until it is >= 2 s old ("hot file"
  # guard): back-date them, or the start and every new smtpd/lmtp process wait ~2 s.
  touch -d '-1 min' "$P/etc/main.cf" "$P/etc/master.cf" "$P/etc/vmailbox"
  # A broken main.cf fails silently (no syslog here): debug with
  #   script -qec "postfix -c $P/etc check" /dev/null
  if ! postfix -c "$P/etc" start >>"$D/log/postfix.start.err" 2>&1; then
    log "postfix failed to start"; exit 1
  fi
  wait_banner "$SMTP_PORT" 220
  ;;
aiosmtpd)
  python3 "$here/smtp-bridge.py" --dir "$D" --lmtp-port "$LMTP_PORT" --smtp-port "$SMTP_PORT" \
    --submission-port "$SUBMISSION_PORT" --smtps-port "$SMTPS_PORT" \
    </dev/null >>"$D/log/smtp-bridge.log" 2>&1 &
  echo $! > "$D/run/smtp-bridge.pid"
  wait_banner "$SMTP_PORT" 220
  ;;
none) SMTP_PORT=; SUBMISSION_PORT=; SMTPS_PORT= ;;
*) log "unknown MAILTEST_SMTP=$SMTP"; exit 1 ;;
esac

printf 'export MAILTEST_DIR=%q\n' "$D"
echo "export IMAP_PORT=$IMAP_PORT IMAPS_PORT=$IMAPS_PORT LMTP_PORT=$LMTP_PORT"
echo "export SMTP_PORT=$SMTP_PORT SUBMISSION_PORT=$SUBMISSION_PORT SMTPS_PORT=$SMTPS_PORT"
printf 'export MAILTEST_CA=%q DOVECOT_CONF=%q\n' "$D/tls/cert.pem" "$D/dovecot.conf"
[ "$OAUTH2" != 1 ] || printf 'export OAUTH2_KEY_FILE=%q\n' "$D/oauth2/keys/default/HS256/default"
