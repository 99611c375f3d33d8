#!/usr/bin/env python3
"""Rootless SMTP front end for the private Dovecot (started by mail-start.sh).

aiosmtpd (pip install aiosmtpd) accepts mail on three loopback ports and hands every
message to Dovecot's LMTP listener, so it lands in the same maildirs the tests read over IMAP.
  --smtp-port        plain SMTP, STARTTLS and AUTH offered but optional (like port 25)
  --submission-port  STARTTLS + AUTH required (like 587)
  --smtps-port       implicit TLS, AUTH required (like 465)
Users/passwords come from DIR/users (Dovecot passwd-file, {PLAIN} scheme); TLS from DIR/tls.
Only recipients listed in DIR/users are accepted (user+detail@ counts as user@, like the
Postfix setup): nothing is ever relayed anywhere else.
"""
import argparse, asyncio, signal, smtplib, ssl, threading, warnings
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

warnings.simplefilter("ignore")  # aiosmtpd's own "AUTH without TLS" / login_data warnings
ap = argparse.ArgumentParser()
ap.add_argument("--dir", required=True)
for name in ("lmtp", "smtp", "submission", "smtps"):
    ap.add_argument(f"--{name}-port", type=int, required=True)
args = ap.parse_args()

users = {}
with open(f"{args.dir}/users") as f:
    for line in f:
        if line.strip():
            name, pw = line.split(":")[:2]
            users[name.lower()] = pw.removeprefix("{PLAIN}")

tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
tls.load_cert_chain(f"{args.dir}/tls/cert.pem", f"{args.dir}/tls/key.pem")


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and users.get(auth_data.login.decode().lower()) == auth_data.password.decode())
    # handled=False: let aiosmtpd send "535"; with the default (True) it sends nothing on
    # failure and the client hangs.
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


class ToLmtp:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local, _, domain = address.lower().rpartition("@")
        if f"{local.split('+', 1)[0]}@{domain}" not in users:
            return "550 5.1.1 unknown recipient (only the test users exist)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        def deliver():
            with smtplib.LMTP("127.0.0.1", args.lmtp_port) as lmtp:
                lmtp.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        try:
            await asyncio.get_running_loop().run_in_executor(None, deliver)
        except smtplib.SMTPRecipientsRefused as e:
            return "550 5.1.1 LMTP refused: %r" % (e.recipients,)
        except (smtplib.SMTPException, OSError) as e:
            return "451 4.3.0 LMTP delivery failed: %s" % (e,)
        return "250 2.0.0 delivered"


common = dict(hostname="127.0.0.1", server_hostname="mail.example.test", authenticator=authenticator)
servers = [
    Controller(ToLmtp(), port=args.smtp_port, tls_context=tls, auth_require_tls=False, **common),
    Controller(ToLmtp(), port=args.submission_port, tls_context=tls, require_starttls=True,
               auth_required=True, **common),
    Controller(ToLmtp(), port=args.smtps_port, ssl_context=tls, auth_required=True,
               auth_require_tls=False, **common),
]
for s in servers:
    s.start()           # returns once the port answers
print("smtp-bridge ready", flush=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
signal.signal(signal.SIGINT, lambda *_: done.set())
done.wait()
for s in servers:
    s.stop()
