#!/usr/bin/env python3
"""IMAP drain benchmark helper: fill a Dovecot maildir fast, and measure the
raw IMAP fetch rate of a folder (the physical limit of the intake stage).

  imap_drain.py fill  MAILDIR COUNT [FROM]  write COUNT realistic mails into MAILDIR/cur;
                                        FROM: sender pattern, {i} the mail's number
                                        (default cliente{i}@cliente.example)
  imap_drain.py fetch PORT USER PASS    fetch every BODY.PEEK[] of INBOX, print mails/s
"""
import imaplib
import os
import sys
import time

SUBJECTS = [
    "Documento observado por Notaría - Pedido N° {n}",
    "RE: Documento observado por Tu Patrimonio - Pedido N° {n}",
    "Solicitud de estado de cuenta - inversión {n}",
    "Factura Electrónica F001-{n} - proveedor",
    "Consulta SIGPER carga masiva {n}",
]


def mail(i, sender="cliente{i}@cliente.example", stamp=None, follows=None):
    """Mail i; with `follows` (an earlier mail's number), a follow-up of it:
    the same customer and order number, and when `follows` is even, a
    References header to it too."""
    stamp = stamp or int(time.time())
    refs = ""
    n = i
    if follows is not None:
        n = follows
        if follows % 2 == 0:
            refs = f"In-Reply-To: <bench-{follows}-{stamp}@cliente.example>\r\nReferences: <bench-{follows}-{stamp}@cliente.example>\r\n"
    subject = SUBJECTS[n % len(SUBJECTS)].format(n=70000 + n)
    if follows is not None:
        subject = "RE: " + subject
    body = (
        "Hola, buenos días:\r\n\r\n"
        f"Les escribo por el pedido {70000 + n}. El documento fue observado y quisiera\r\n"
        "saber si puedo continuar tal como está o si debo anularlo y volver a subirlo.\r\n"
        "Adjunto el detalle de los firmantes y quedo atento a sus indicaciones.\r\n\r\n"
        "Saludos cordiales,\r\nCliente de prueba\r\n"
    )
    return (
        f"From: Cliente {n} <{sender.format(i=n)}>\r\n"
        "To: soporte@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <bench-{i}-{stamp}@cliente.example>\r\n" + refs +
        "Date: Mon, 2 Nov 2026 10:00:00 -0300\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    ).encode("utf-8")


def with_attachment(data, i):
    """The mail as multipart/mixed with a signed-document-sized PDF of
    BENCH_ATTACH_KB kilobytes (default 300) after its text."""
    import base64
    import hashlib
    kb = int(os.environ.get("BENCH_ATTACH_KB", "300"))
    seed = hashlib.sha256(str(i).encode()).digest()
    pdf = (b"%PDF-1.7\n" + seed * (kb * 1024 // len(seed)))[: kb * 1024]
    b64 = base64.b64encode(pdf).decode()
    lines = "\r\n".join(b64[k:k + 76] for k in range(0, len(b64), 76))
    head, body = data.split(b"\r\n\r\n", 1)
    head = head.replace(
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit",
        b'Content-Type: multipart/mixed; boundary="b1"',
    )
    return (
        head + b"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body +
        f"\r\n--b1\r\nContent-Type: application/pdf; name=\"escritura-{i}.pdf\"\r\n"
        f"Content-Disposition: attachment; filename=\"escritura-{i}.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n".encode() + lines.encode() +
        b"\r\n--b1--\r\n"
    )


def fill(maildir, count, sender="cliente{i}@cliente.example"):
    """BENCH_MIX=followups: every fifth mail follows up the one before it;
    BENCH_MIX=attachments: every mail carries a PDF (`with_attachment`)."""
    followups = os.environ.get("BENCH_MIX") == "followups"
    attachments = os.environ.get("BENCH_MIX") == "attachments"
    cur = os.path.join(maildir, "cur")
    os.makedirs(cur, exist_ok=True)
    os.makedirs(os.path.join(maildir, "new"), exist_ok=True)
    os.makedirs(os.path.join(maildir, "tmp"), exist_ok=True)
    stamp = int(time.time())
    for i in range(count):
        follows = i - 1 if followups and i % 5 == 4 else None
        data = mail(i, sender, stamp, follows)
        if attachments:
            data = with_attachment(data, i)
        name = f"{stamp}.M{i}P{os.getpid()}.bench,S={len(data)}:2,"
        with open(os.path.join(cur, name), "wb") as f:
            f.write(data)


def fetch(port, user, password):
    m = imaplib.IMAP4("127.0.0.1", int(port))
    m.login(user, password)
    typ, data = m.select("INBOX", readonly=True)
    total = int(data[0])
    start = time.time()
    got = 0
    step = 500
    for first in range(1, total + 1, step):
        last = min(total, first + step - 1)
        typ, data = m.fetch(f"{first}:{last}", "(UID BODY.PEEK[])")
        got += sum(1 for d in data if isinstance(d, tuple))
    took = time.time() - start
    m.logout()
    print(f"raw IMAP fetch: {got} mails in {took:.2f} s = {got / took:.0f} mails/s")


if __name__ == "__main__":
    if sys.argv[1] == "fill":
        fill(sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
    elif sys.argv[1] == "fetch":
        fetch(sys.argv[2], sys.argv[3], sys.argv[4])
