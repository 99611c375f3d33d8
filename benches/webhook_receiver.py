#!/usr/bin/env python3
"""Webhook receiver for benches/webhooks.sh: answers 200 to every POST after
checking its signature (the README's check), and counts what it got.

  webhook_receiver.py PORT_FILE SECRET   listen on a free loopback port, write it
                                         to PORT_FILE; GET /count -> "N BAD"
"""
import hashlib
import hmac
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = sys.argv[2].encode()
lock = threading.Lock()
count = {"ok": 0, "bad": 0, "ids": set()}


def verified(header, body):
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(SECRET, fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        good = verified(self.headers.get("X-Buzon-Signature", "t=0,v1="), body)
        with lock:
            count["ok" if good else "bad"] += 1
            count["ids"].add(self.headers.get("X-Buzon-Delivery"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            text = f"{count['ok']} {count['bad']} {len(count['ids'])}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
