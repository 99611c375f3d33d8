#!/usr/bin/env python3
"""Web tray benchmark helper (benches/web_tray.sh): writes a realistic support
history straight into a database `buzon migrate` created, and times pages.

  web_tray.py sqlite DB TICKETS MESSAGES     insert the rows with python's sqlite3
  web_tray.py pgcopy DIR TICKETS MESSAGES    write one COPY file per table into DIR
                                             (loaded by the script with psql \\copy)
  web_tray.py times LABEL FILE               p50/p95/max of curl's `%{http_code} %{time_total}`
                                             lines; fails on anything but 200

The rows have the shape the pipeline writes (checked against `buzon ingest`
of a mail with a `pedido` key): a ticket, its incoming mail and the
acknowledgement (an outgoing message), the customer's follow-ups and the
agents' replies (3 messages a ticket on average), `ticket_keys` (pedido=N, as
the bench's rule `pedido` extracts it), participants, `message_mailboxes` for
every incoming mail, history lines (`events`: created, routed, mail_queued,
message, reply, state, closed) and alerts for missed deadlines. Not written:
the outbox and the hourly limit's log (the tray reads neither). The same
seed gives both backends the same rows.

Tickets are spread over a year: old ones are mostly done, the last month's
mostly in progress, as a team that keeps up; mailboxes, owners, states,
priorities and customers (40% of them with more than one ticket) vary.
"""
import hashlib
import os
import random
import sys
import time

MAILBOXES = [  # name, address, pipeline, weight
    ("soporte", "soporte@tupatrimonio.example", "Atención a usuarios", 50),
    ("notarias", "notarias@tupatrimonio.example", "Notarías", 25),
    ("ventas", "ventas@tupatrimonio.example", "Ventas", 15),
    ("finanzas", "finanzas@tupatrimonio.example", "Finanzas", 10),
]
PEOPLE = ["catalina", "milagros", "alonso", "javiera", "rodrigo", "ignacio", "fernanda", "gerente"]
FIRST = ["Felipe", "María José", "Camila", "Jorge", "Valentina", "Cristóbal", "Paula", "Matías",
         "Francisca", "Sebastián", "Constanza", "Tomás", "Daniela", "Nicolás", "Javiera", "Benjamín",
         "Catalina", "Vicente", "Antonia", "Diego", "Isidora", "Joaquín", "Fernanda", "Ignacio"]
LAST = ["Araya", "González", "Muñoz", "Rojas", "Díaz", "Pérez", "Soto", "Contreras", "Silva",
        "Martínez", "Sepúlveda", "Morales", "Rodríguez", "López", "Fuentes", "Hernández",
        "Torres", "Valenzuela", "Castillo", "Espinoza", "Cortés", "Núñez", "Reyes", "Vergara"]
DOMAINS = ["gmail.example", "hotmail.example", "outlook.example", "yahoo.example",
           "notariaperez.example", "inmobiliaria-sur.example", "estudiojuridico.example"]
STREETS = ["Av. Providencia", "Los Leones", "Av. Apoquindo", "Pedro de Valdivia", "Irarrázaval",
           "Av. Matta", "Gran Avenida", "Av. Grecia", "Manuel Montt", "Av. Vicuña Mackenna"]
COMUNAS = ["Providencia", "Las Condes", "Ñuñoa", "Santiago", "La Florida", "Maipú", "Viña del Mar",
           "Concepción", "Temuco", "Puerto Montt"]
SUBJECTS = [
    "Documento observado por Notaría - Pedido N° {n}",
    "RE: Documento observado por Tu Patrimonio - Pedido N° {n}",
    "Consulta por estado del pedido {n}",
    "Rechazo de firma electrónica pedido {n}",
    "Fecha futura en contrato de arriendo, pedido {n}_2",
    "Cambio de dirección: {addr}",
    "Solicitud de copia autorizada pedido N° {n}_1",
    "No me llegó el documento firmado (pedido {n})",
    "Factura del pedido {n} con RUT equivocado",
    "Consulta protocolización escritura - {addr}",
]
BODIES = [
    "Hola, buenos días:\n\nLes escribo por el pedido {n}. El documento fue observado por la "
    "notaría y quisiera saber si puedo continuar tal como está o si debo anularlo y volver a "
    "subirlo. Adjunto el detalle de los firmantes y quedo atento a sus indicaciones.\n\n"
    "La dirección de la propiedad es {addr}.\n\nSaludos cordiales,\n{name}\n",
    "Estimados:\n\nMe llegó un correo de que la notaría observó el documento por fecha futura "
    "(pedido {n}). El contrato tiene fecha del próximo mes porque ese día empieza el arriendo. "
    "Prefiero esperar a esa fecha, no quiero corregir el documento. ¿Me confirman que lo envían "
    "a la notaría ese día?\n\nGracias\n{name}\n\nEnviado desde mi iPhone\n",
    "Buenas tardes,\n\nNecesito cambiar la dirección de entrega a {addr}. El pedido N° {n} "
    "todavía aparece en revisión. ¿Cuánto se demora la firma del notario?\n\n{name}\n",
    "Hola,\n\nEl firmante rechazó la firma electrónica porque su RUT no coincide. ¿Cómo lo "
    "corrijo sin perder lo que ya pagué? Pedido {n}.\n\nAtte.\n{name}\n",
]
FOLLOWUPS = [
    "Gracias por la respuesta. Adjunto el documento corregido, quedo atento.\n\n{name}\n",
    "Hola, ¿hay novedades? Ya pasaron varios días y el pedido {n} sigue igual.\n\n{name}\n",
    "Perfecto, muchas gracias por la ayuda.\n\n{name}\n",
]
REPLIES = [
    "Estimado/a {name}:\n\nRevisamos su pedido {n}: la notaría pidió corregir la cláusula "
    "tercera. Puede editar el documento desde su cuenta sin volver a pagar.\n\nSaludos,\n"
    "Equipo de Atención a usuarios\n",
    "Hola {name}:\n\nSu documento ya fue enviado a la notaría; le avisaremos cuando esté "
    "firmado.\n\nSaludos,\nEquipo de Atención a usuarios\n",
]
DAY = 86_400_000

COLUMNS = {
    "tickets": ["id", "subject", "state", "outcome", "pipeline", "owner", "priority", "tags",
                "requester", "requester_name", "mailbox", "channel", "needs_review", "due_at",
                "created_at", "updated_at", "closed_at", "fields", "internal", "due_business",
                "first_response_due_at", "first_response_business", "first_response_at"],
    "ticket_keys": ["ticket_id", "name", "value"],
    "messages": ["id", "ticket_id", "direction", "dedupe_key", "message_id", "in_reply_to",
                 "refs", "from_addr", "from_name", "to_addrs", "subject", "body_text",
                 "raw", "raw_sha256", "size", "created_at"],
    "message_mailboxes": ["message_id", "mailbox", "arrived_at"],
    "participants": ["ticket_id", "address", "name", "role"],
    "events": ["ticket_id", "at", "actor", "kind", "detail"],
    "alerts": ["ticket_id", "target", "due_at", "breached_at", "cleared_at", "cleared_by"],
}


def raw_mail(frm, to, subject, mid, irt, at, body):
    date = time.strftime("%a, %d %b %Y %H:%M:%S -0300", time.gmtime(at / 1000 - 3 * 3600))
    head = (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{mid}>\r\n"
            f"Date: {date}\r\nMIME-Version: 1.0\r\n")
    if irt:
        head += f"In-Reply-To: <{irt}>\r\nReferences: <{irt}>\r\n"
    head += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    return (head + body.replace("\n", "\r\n")).encode("utf-8")


def generate(tickets, messages, now, seed=12):
    """Yields (table, row) in an order the foreign keys accept table by table."""
    rnd = random.Random(seed)
    # Customers: about 0.6 a ticket, so many write more than once.
    customers = []
    for c in range(max(1, tickets * 6 // 10)):
        first, last, last2 = rnd.choice(FIRST), rnd.choice(LAST), rnd.choice(LAST)
        user = f"{first.split()[0]}.{last}.{last2[0]}{c}".lower()
        user = user.translate(str.maketrans("áéíóúñ", "aeioun"))
        customers.append((f"{user}@{rnd.choice(DOMAINS)}", f"{first} {last} {last2}"))
    customers[0] = ("felipe.araya.c@gmail.example", "Felipe Araya Cortés")
    # Messages a ticket: the mail and its acknowledgement, then the rest spread at random.
    base = min(2, messages // max(tickets, 1))
    per = [base] * tickets
    for _ in range(max(0, messages - base * tickets)):
        per[rnd.randrange(tickets)] += 1
    orders = rnd.sample(range(10000, 999999), tickets)
    special = max(1, tickets - 40)  # a recent ticket in progress: the bench's search finds it
    orders[special - 1] = 75321
    weights = [m[3] for m in MAILBOXES]
    msg_id = 0
    year = 365 * DAY
    for t in range(1, tickets + 1):
        mailbox, mb_addr, pipeline, _ = rnd.choices(MAILBOXES, weights)[0]
        felipe = t % 997 == 0 or (tickets - t < 500 and t % 50 == 7)  # a regular
        cust = customers[0] if felipe else rnd.choice(customers)
        addr, name = cust
        order = orders[t - 1]
        street = f"{rnd.choice(STREETS)} {rnd.randrange(100, 9999)}, {rnd.choice(COMUNAS)}"
        subject = (SUBJECTS[0] if t == special else rnd.choice(SUBJECTS)).format(n=order, addr=street)
        created = now - year + (t * year) // (tickets + 1) + rnd.randrange(0, 3_600_000)
        age = now - created
        done_share = 0.97 if age > 30 * DAY else 0.35 + 0.6 * age / (30 * DAY)
        if rnd.random() < done_share:
            state = "done"
        else:
            state = rnd.choices(["new", "open", "waiting_on_us", "waiting_on_contact"],
                                [15, 35, 25, 25])[0]
        if t == special:
            state = "open"
        owner = None if rnd.random() < 0.08 and state == "new" else rnd.choice(PEOPLE)
        priority = rnd.choices(["low", "medium", "high", "urgent"], [15, 60, 20, 5])[0]
        fr_due = created + 8 * 3_600_000
        due = created + 5 * DAY
        n_msgs = per[t - 1]
        step = max(1, (min(age, 20 * DAY)) // (n_msgs + 1))
        updated = min(now, created + step * n_msgs)
        closed = updated if state == "done" else None
        outcome = ("success" if rnd.random() < 0.85 else "failure") if state == "done" else None
        agent_reply_at = created + step * 3 if n_msgs > 3 else closed
        fields = '{"medio_ingreso":"correo"}'
        yield "tickets", (t, subject, state, outcome, pipeline, owner, priority, "[]", addr, name,
                          mailbox, "email", 0, due, created, updated, closed, fields, 0, 1,
                          fr_due, 1, agent_reply_at)
        if subject.startswith("Cambio de dirección") or subject.startswith("Consulta protocolización"):
            pass  # no order number in the mail
        else:
            yield "ticket_keys", (t, "pedido", str(order))
        yield "participants", (t, addr, name, "requester")
        if owner:
            yield "participants", (t, f"{owner}@tupatrimonio.example", owner.capitalize(), "agent")
        yield "events", (t, created, f"customer:{addr}", "created", f"from mail in mailbox {mailbox}")
        yield "events", (t, created, "system", "routed",
                         f"pipeline={pipeline} priority={priority} owner={owner or '-'} "
                         f"(keys.pedido by rule:10-claves.toml/pedido, pipeline by mailbox:{mailbox})")
        first_mid = None
        at = created
        for k in range(n_msgs):
            msg_id += 1
            if k == 0 or (k >= 2 and k % 2 == 0):  # the customer's mail, then follow-ups
                mid = f"{hashlib.md5(f'{t}.{k}'.encode()).hexdigest().upper()}@{addr.split('@')[1]}"
                subj = subject if k == 0 else f"RE: {subject}"
                body = (rnd.choice(BODIES) if k == 0 else rnd.choice(FOLLOWUPS)).format(
                    n=order, addr=street, name=name)
                raw = raw_mail(f"{name} <{addr}>", mb_addr, subj, mid, first_mid, at, body)
                yield "messages", (msg_id, t, "in", f"mid:{mid}", mid, first_mid or "",
                                   first_mid or "", addr, name, mb_addr, subj, body, raw,
                                   hashlib.sha256(raw).hexdigest(), len(raw), at)
                yield "message_mailboxes", (msg_id, mailbox, at)
                if k > 0:
                    yield "events", (t, at, f"customer:{addr}", "message", f"from mail in mailbox {mailbox}")
                first_mid = first_mid or mid
            else:  # the acknowledgement, then agents' replies
                mid = f"buzon.{hashlib.md5(f'o{t}.{k}'.encode()).hexdigest()}@tupatrimonio.example"
                if k == 1:
                    subj = f"[#TP-{t}] Recibimos su solicitud: {subject}"
                    body = (f"Hola {name}:\n\nRecibimos su solicitud «{subject}» y la registramos "
                            f"con el número TP-{t}.\n\nSaludos cordiales,\nTu Patrimonio\n")
                    kind, actor = "mail_queued", "system"
                    detail = f"acknowledgement to {addr} queued (Message-ID <{mid}>)"
                else:
                    subj = f"RE: [#TP-{t}] {subject}"
                    body = rnd.choice(REPLIES).format(n=order, name=name)
                    kind, actor = "reply", f"agent:{owner or 'catalina'}"
                    detail = f"to {addr} (Message-ID <{mid}>)"
                raw = raw_mail(f"Tu Patrimonio <{mb_addr}>", addr, subj, mid, first_mid, at, body)
                yield "messages", (msg_id, t, "out", f"mid:{mid}", mid, first_mid or "",
                                   first_mid or "", mb_addr, None, addr, subj, body, raw,
                                   hashlib.sha256(raw).hexdigest(), len(raw), at)
                yield "events", (t, at, actor, kind, detail)
            at += step
        if state != "new":
            yield "events", (t, updated, f"agent:{owner or 'catalina'}", "state", f"new -> {state}")
        if state == "done":
            yield "events", (t, updated, f"agent:{owner or 'catalina'}", "closed", outcome)
        # Missed deadlines: open while the ticket is in progress, cleared once done.
        # (as the daemon's deadline watch records them, so it finds nothing new to do).
        if due < now and (state != "done" or rnd.random() < 0.1):
            cleared = (closed, "done") if state == "done" else (None, None)
            yield "alerts", (t, "resolution", due, due + 60_000, *cleared)
        if fr_due < now and state != "done" and agent_reply_at is None:
            yield "alerts", (t, "first_response", fr_due, fr_due + 60_000, None, None)


def copy_field(v):
    if v is None:
        return "\\N"
    if isinstance(v, bytes):
        return "\\\\x" + v.hex()
    if isinstance(v, int):
        return str(v)
    return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def pgcopy(out, tickets, messages):
    files = {t: open(os.path.join(out, f"{t}.copy"), "w", encoding="utf-8") for t in COLUMNS}
    for table, row in generate(tickets, messages, int(time.time() * 1000)):
        files[table].write("\t".join(map(copy_field, row)) + "\n")
    for f in files.values():
        f.close()
    for t, cols in COLUMNS.items():  # the tables in foreign-key order, for the script
        print(f"{t} {','.join(cols)}")


def sqlite(path, tickets, messages):
    import sqlite3
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")  # the load only; buzon opens it with FULL
    buf = {t: [] for t in COLUMNS}

    def flush(t):
        cols = COLUMNS[t]
        db.executemany(f"INSERT INTO {t} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", buf[t])
        buf[t].clear()

    order = list(COLUMNS)
    for table, row in generate(tickets, messages, int(time.time() * 1000)):
        buf[table].append(row)
        if table == "tickets" and len(buf["tickets"]) >= 2000:
            for t in order:  # parents first
                flush(t)
    for t in order:
        flush(t)
    db.commit()
    db.close()


def times(label, path):
    rows = [line.split() for line in open(path) if line.strip()]
    bad = [r for r in rows if r[0] != "200"]
    if bad:
        sys.exit(f"{label}: {len(bad)} of {len(rows)} requests failed: {bad[:3]}")
    ms = sorted(float(r[1]) * 1000 for r in rows)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
    print(f"{label:<58} p50 {p(0.50):7.1f} ms   p95 {p(0.95):7.1f} ms   max {ms[-1]:7.1f} ms   ({len(ms)} requests)")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sqlite":
        sqlite(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "pgcopy":
        pgcopy(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "times":
        times(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
