#!/usr/bin/env python3
"""Search benchmark helper (benches/search.sh): the web tray bench's support
history (benches/web_tray.py, same shapes, same seed) with what a search
needs on top, written straight into a database `buzon migrate` created, so
the search index's triggers index every row as it is loaded:

  search.py sqlite DB TICKETS MESSAGES QUERIES    insert with python's sqlite3
  search.py pgcopy DIR TICKETS MESSAGES QUERIES   one COPY file per table into DIR

On top of web_tray.py's rows:
  - each customer's mail carries one or two more sentences of a varied
    vocabulary (banks, notaries, comunas, documents, RUTs, phone numbers),
    so that words are not all in every mail;
  - the agents' replies get their outbox row (kind reply), as buzon writes
    them, so they are indexed (the acknowledgements' rows are left out:
    they are not indexed anyway);
  - one ticket in four gets an internal comment.
QUERIES receives 200 mixed searches, `kind<TAB>query`: 50 order numbers,
50 words, 50 phrases, 50 addresses, all taken from the rows written (so
each should find its tickets), in a shuffled order.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import web_tray  # noqa: E402

BANKS = ["Banco de Chile", "Banco Santander", "BancoEstado", "Scotiabank", "Banco BICE",
         "Banco Itaú", "Banco Falabella", "Coopeuch"]
NOTARIES = ["Notaría Pérez Cuadra", "Notaría Larraín", "Notaría Valdés Toro", "Notaría Gómez",
            "Notaría Iturra", "Notaría Bustos", "Notaría Ruiz-Tagle", "Notaría Ossa"]
DOCUMENTS = ["poder simple", "promesa de compraventa", "contrato de arriendo", "finiquito",
             "declaración jurada", "mandato especial", "escritura de constitución",
             "certificado de dominio vigente", "autorización de viaje", "carta de renuncia",
             "contrato de trabajo", "pagaré", "comodato", "cesión de derechos"]
PROBLEMS = ["el timbre salió ilegible", "falta la firma del aval", "el RUT del comprador está mal",
            "la fecha quedó en el pasado", "el notario pidió la cédula vigente",
            "no aparece el anexo", "el pago quedó duplicado", "la dirección del inmueble no coincide",
            "el segundo firmante no recibió el enlace", "el archivo PDF viene en blanco",
            "la tasación no llegó", "el banco rechazó la transferencia"]
EXTRAS = [
    "Les cuento que en la {notary} me dijeron que {problem}.",
    "El {document} lo necesito para el {bank}, que me lo pide antes del viernes.",
    "Mi RUT es {rut} y mi teléfono +56 9 {phone}, por si necesitan llamarme.",
    "Vivo en {comuna}; ¿puedo retirar el {document} en la oficina?",
    "Es urgente: {problem} y el {bank} no acepta el {document} así.",
    "Ya hablé con la {notary} y con el {bank}, pero nadie me responde por el {document}.",
]
COMMENTS = [
    "Cliente llamó por teléfono, se le explicó el plazo de la {notary}.",
    "Revisar con legal: {problem}.",
    "Se reenvió el {document} corregido a la {notary}.",
    "Ojo: el {bank} exige original; coordinar retiro en {comuna}.",
]
PHRASES = ["copia autorizada", "fecha futura", "documento corregido", "cláusula tercera",
           "firma electrónica", "RUT equivocado", "dirección de entrega", "volver a pagar"]


def fill(template, rnd):
    return template.format(
        notary=rnd.choice(NOTARIES), problem=rnd.choice(PROBLEMS), document=rnd.choice(DOCUMENTS),
        bank=rnd.choice(BANKS), comuna=rnd.choice(web_tray.COMUNAS),
        rut=f"{rnd.randrange(5, 26)}.{rnd.randrange(100, 999)}.{rnd.randrange(100, 999)}-{rnd.choice('0123456789K')}",
        phone=f"{rnd.randrange(1000, 9999)} {rnd.randrange(1000, 9999)}")


COLUMNS = dict(web_tray.COLUMNS)
COLUMNS["outbox"] = ["ticket_id", "kind", "message_id", "mail_from", "rcpt_to", "raw", "status",
                     "attempts", "next_attempt_at", "created_at", "sent_at"]
# Parents first; an outgoing message's outbox row before it (its trigger reads it).
ORDER = ["tickets", "ticket_keys", "participants", "outbox", "messages", "message_mailboxes",
         "events", "alerts"]


def generate(tickets, messages, queries_path):
    rnd = random.Random(14)
    picks = {"order": [], "word": [], "phrase": [], "address": []}
    now = int(time.time() * 1000)
    share = min(1.0, 150 / tickets)  # of the orders and addresses, to pick 50 from
    for table, row in web_tray.generate(tickets, messages, now):
        if table == "messages":
            row = list(row)
            if row[2] == "in":
                extra = " ".join(fill(rnd.choice(EXTRAS), rnd) for _ in range(rnd.randrange(1, 3)))
                row[11] = row[11] + "\n" + extra + "\n"
                if rnd.random() < share and len(picks["word"]) < 400:
                    picks["word"].append(rnd.choice(extra.replace(",", " ").replace(".", " ").split()))
            elif row[10].startswith("RE: [#"):  # an agent's reply (the acknowledgement: "[#")
                yield "outbox", (row[1], "reply", row[4], row[7], row[9], b"", "sent", 1,
                                 row[15], row[15], row[15])
            row = tuple(row)
        elif table == "ticket_keys" and rnd.random() < share:
            picks["order"].append(row[2])
        elif table == "participants" and row[3] == "requester" and rnd.random() < share:
            picks["address"].append(row[1])
        elif table == "events" and row[3] == "created" and rnd.random() < 0.25:
            yield table, row
            yield "events", (row[0], row[1] + 60_000, "agent:catalina", "comment",
                             fill(rnd.choice(COMMENTS), rnd))
            continue
        yield table, row
    words = [w for w in picks["word"] if len(w) > 3 and w.isalpha()]
    words += [w.split()[-1] for w in NOTARIES] + [c.split()[-1] for c in web_tray.COMUNAS]
    qs = ([("order", o) for o in rnd.sample(picks["order"], min(50, len(picks["order"])))]
          + [("word", w) for w in rnd.sample(words, min(50, len(words)))]
          + [("phrase", f'"{p}"') for p in (PHRASES + [d for d in DOCUMENTS if " " in d]) * 5][:50]
          + [("address", a) for a in rnd.sample(picks["address"], min(50, len(picks["address"])))])
    rnd.shuffle(qs)
    with open(queries_path, "w", encoding="utf-8") as f:
        for kind, q in qs:
            f.write(f"{kind}\t{q}\n")


def sqlite(path, tickets, messages, queries):
    import sqlite3
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")  # the load only; buzon opens it with FULL
    buf = {t: [] for t in COLUMNS}

    def flush(t):
        cols = COLUMNS[t]
        db.executemany(f"INSERT INTO {t} ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})", buf[t])
        buf[t].clear()

    for table, row in generate(tickets, messages, queries):
        buf[table].append(row)
        if table == "tickets" and len(buf["tickets"]) >= 2000:
            for t in ORDER:
                flush(t)
    for t in ORDER:
        flush(t)
    db.commit()
    db.close()


def pgcopy(out, tickets, messages, queries):
    files = {t: open(os.path.join(out, f"{t}.copy"), "w", encoding="utf-8") for t in COLUMNS}
    for table, row in generate(tickets, messages, queries):
        files[table].write("\t".join(map(web_tray.copy_field, row)) + "\n")
    for f in files.values():
        f.close()
    for t in ORDER:
        print(f"{t} {','.join(COLUMNS[t])}")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "sqlite":
        sqlite(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif cmd == "pgcopy":
        pgcopy(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit(__doc__)
