#!/usr/bin/env python3
"""The fault campaign's driver: benches/faults.sh starts the servers and runs it.

Each fault prints one line, then a summary of the counts. The counts never ask buzon:
the mails put in the mailbox are compared by Message-ID with the rows of the database,
the mailbox's flags and folders are read over IMAP, and the acknowledgements are counted
where they land, in the customer's Dovecot mailbox, by ticket number.

Environment (faults.sh sets it): FAULTS_BIN FAULTS_WORK FAULTS_MAILS FAULTS_KILLS
FAULTS_ACKS FAULTS_DOWN FAULTS_ONLY (space-separated fault names, empty: all), the
harness's MAILTEST_DIR IMAP_PORT SMTP_PORT DOVECOT_CONF, BUZON_TEST_POSTGRES_URL
BUZON_TEST_PG_DIR, FAULTS_SEED (random kill moments; printed, so a run can be repeated).
"""
import errno
import imaplib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time

E = os.environ
BIN = E["FAULTS_BIN"]
WORK = E["FAULTS_WORK"]
MAILS = int(E.get("FAULTS_MAILS", "20000"))
KILLS = int(E.get("FAULTS_KILLS", "25"))
ACKS = int(E.get("FAULTS_ACKS", "1000"))
DOWN = float(E.get("FAULTS_DOWN", "180"))
ONLY = E.get("FAULTS_ONLY", "").split()
SEED = int(E.get("FAULTS_SEED") or time.time_ns() % 1_000_000)
MAILDIRS = os.path.join(E["MAILTEST_DIR"], "mail", "example.test")
PG_URL = E["BUZON_TEST_POSTGRES_URL"]
PG_DIR = E["BUZON_TEST_PG_DIR"]
rng = random.Random(SEED)
results = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --- the mail put in, and where it is afterwards ------------------------------------------

def mail(tag, i):
    return (
        f"From: Cliente {i} <customer+{tag}{i}@example.test>\r\n"
        "To: soporte@example.test\r\n"
        f"Subject: Pedido {70000 + i}: documento observado\r\n"
        f"Message-ID: <fault-{tag}-{i}@cliente.example>\r\n"
        "Date: Mon, 2 Nov 2026 10:00:00 -0300\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"Hola, buenos días:\r\n\r\nLes escribo por el pedido {70000 + i}; el documento fue\r\n"
        "observado y quisiera saber cómo continuar.\r\n\r\nSaludos,\r\nCliente de prueba\r\n"
    ).encode()


def expected(tag, n):
    return {f"fault-{tag}-{i}@cliente.example" for i in range(n)}


def imap(user):
    m = imaplib.IMAP4("127.0.0.1", int(E["IMAP_PORT"]))
    m.login(f"{user}@example.test", f"{user}-pass")
    return m


def fill(user, tag, n):
    """n mails in the user's INBOX, written into the maildir (fast, as Dovecot's LMTP would)."""
    m = imap(user)  # the first login creates the maildir with Dovecot's owner
    m.create("Procesados")
    m.logout()
    maildir = os.path.join(MAILDIRS, user, "Maildir")
    stamp = int(time.time())
    for i in range(n):
        name = f"{stamp}.F{tag}{i}.faults:2,"
        with open(os.path.join(maildir, "cur", name), "wb") as f:
            f.write(mail(tag, i))
    st = os.stat(maildir)
    for root, dirs, files in os.walk(maildir):
        for x in dirs + files:
            os.chown(os.path.join(root, x), st.st_uid, st.st_gid)


def folder(user, name):
    """(Message-IDs, seen count) of a folder, read over IMAP."""
    m = imap(user)
    typ, data = m.select(name, readonly=True)
    ids, seen = [], 0
    if typ == "OK" and int(data[0]) > 0:
        typ, rows = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        for row in rows:
            if not isinstance(row, tuple):
                continue
            if b"\\Seen" in row[0]:
                seen += 1
            found = re.search(rb"<([^>]+)>", row[1])
            ids.append(found.group(1).decode() if found else "")
    m.logout()
    return ids, seen


def acks_received(tag):
    """Acknowledgements in the customer's mailbox answering this fault's mails: {ticket: count}."""
    out = {}
    maildir = os.path.join(MAILDIRS, "customer", "Maildir")
    for sub in ("new", "cur"):
        d = os.path.join(maildir, sub)
        for name in os.listdir(d) if os.path.isdir(d) else []:
            with open(os.path.join(d, name), "rb") as f:
                head = f.read(8192).split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            if f"<fault-{tag}-".encode() not in head:
                continue
            subject = re.search(rb"(?im)^Subject:.*?\[#\s*([A-Za-z]*-?\s*\d+)\s*\]", head)
            key = subject.group(1).decode() if subject else "?"
            out[key] = out.get(key, 0) + 1
    return out


# --- the database, read directly --------------------------------------------------------

def query(url, sql):
    if url.startswith("sqlite:"):
        db = sqlite3.connect(f"file:{url[7:]}?mode=ro", uri=True, timeout=30)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()
    out = subprocess.run(["psql", url, "-AtF", "\t", "-c", sql], capture_output=True, text=True, check=True)
    return [tuple(line.split("\t")) for line in out.stdout.splitlines() if line]


def stored_ids(url):
    try:
        return [r[0] for r in query(url, "SELECT message_id FROM messages WHERE direction = 'in'")]
    except (sqlite3.Error, subprocess.CalledProcessError):
        return None  # not created yet, or the server is away


def counts(url, tag, n):
    """What the database holds of this fault's mails: lost, duplicated, and the tickets."""
    want = expected(tag, n)
    ids = [i.strip("<>") for i in stored_ids(url) or []]
    mine = [i for i in ids if i in want]
    tickets = int(query(url, "SELECT count(*) FROM tickets")[0][0])
    acks = query(url, "SELECT ticket_id, count(*) FROM outbox WHERE kind = 'acknowledgement' GROUP BY ticket_id")
    return {
        "lost": len(want - set(mine)),
        "duplicate_messages": len(mine) - len(set(mine)),
        "duplicate_tickets": max(0, tickets - len(want)),
        "duplicate_acks_queued": sum(int(c) - 1 for _, c in acks if int(c) > 1),
        "acks_queued": len(acks),
    }


def pg_database(name):
    subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    return PG_URL.rsplit("/", 1)[0] + "/" + name


# --- buzon ---------------------------------------------------------------------------------

def config(name, url, user, disposition="seen", smtp=False, lease="5s"):
    path = os.path.join(WORK, f"{name}.toml")
    move = ', move_to = "Procesados"' if disposition == "move" else ""
    text = f"""[deployment]
name = "Campaña de fallos"
our_domains = ["bench.example"]
[database]
url = "{url}"
[daemon]
listen = ""
[outbox]
auto_reply_limit_per_hour = 1000
# Another instance's claimed rows are sent after this (the default is 2 minutes); a
# daemon started again takes back its own at once.
lease = "{lease}"
retry_schedule = ["2s"]
[mailboxes.soporte]
address = "soporte@example.test"
[accounts.soporte]
host = "127.0.0.1"
port = {E["IMAP_PORT"]}
tls = "none"
username = "{user}@example.test"
password_env = "FAULTS_PASS"
batch_size = 50
batch_bytes = {os.environ.get("FAULTS_BATCH_BYTES", "1048576")}
folders = [{{ folder = "INBOX", mailbox = "soporte", disposition = "{disposition}"{move} }}]
"""
    if smtp:
        text += f'[smtp]\nhost = "127.0.0.1"\nport = {E["SMTP_PORT"]}\ntls = "none"\n'
    with open(path, "w") as f:
        f.write(text)
    return path


class Daemon:
    """`buzon run` (or `run --once`), its log in the work dir."""
    n = 0

    def __init__(self, cfg, user, once=False):
        Daemon.n += 1
        self.log = os.path.join(WORK, f"{os.path.basename(cfg)}.{Daemon.n}.log")
        env = dict(E, FAULTS_PASS=f"{user}-pass", BUZON_LOG="info")
        args = [BIN, "--config", cfg, "run"] + (["--once"] if once else [])
        self.p = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))

    def kill(self):
        self.p.kill()
        self.p.wait()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()


def wait_for(what, check, limit, daemon=None):
    start = time.time()
    while True:
        got = check()
        if got:
            return time.time() - start
        if time.time() - start > limit:
            raise TimeoutError(f"{what}: not after {limit} s")
        if daemon and daemon.p.poll() is not None:
            raise RuntimeError(f"{what}: buzon exited with {daemon.p.returncode}: {daemon.text()[-600:]}")
        time.sleep(0.2)


def drained(url, user, tag, n, disposition):
    """Every mail stored and disposed of on the server."""
    def check():
        ids = stored_ids(url)
        if ids is None or len(set(ids) & expected(tag, n)) < n:
            return False
        if disposition == "move":
            return len(folder(user, "INBOX")[0]) == 0
        return folder(user, "INBOX")[1] >= n
    return check


def mailbox_counts(user, tag, n, disposition):
    """Lost or doubled on the server side: mails gone from both folders, or in twice."""
    inbox, seen = folder(user, "INBOX")
    moved, _ = folder(user, "Procesados")
    every = inbox + moved
    want = expected(tag, n)
    out = {
        "lost_on_server": len(want - set(every)),
        "doubled_on_server": len(every) - len(set(every)),
    }
    out["not_disposed"] = (len(inbox) if disposition == "move" else len(inbox) - seen)
    return out


def record(name, ok, figures, note=""):
    line = f"fault {name:<34} {'ok  ' if ok else 'FAIL'} " + " ".join(f"{k}={v}" for k, v in figures.items())
    print(line + (f"  ({note})" if note else ""), flush=True)
    results.append((name, ok, figures))


def clean(figures, keys):
    return all(figures.get(k, 0) == 0 for k in keys)


LOSS_KEYS = ["lost", "duplicate_messages", "duplicate_tickets", "duplicate_acks_queued",
             "lost_on_server", "doubled_on_server", "not_disposed"]


# --- the faults ------------------------------------------------------------------------------

def kill_during_drain(backend, disposition):
    """SIGKILL at random moments of a drain, started again each time (as systemd does)."""
    tag = f"k{backend[0]}{disposition[0]}"
    user = f"f{tag}"
    url = f"sqlite:{WORK}/{tag}.db" if backend == "sqlite" else pg_database(f"faults_{tag}")
    fill(user, tag, MAILS)
    cfg = config(tag, url, user, disposition)
    kills, idle_runs = 0, 0
    start = time.time()
    while kills < KILLS:
        before = len(stored_ids(url) or [])
        d = Daemon(cfg, user)
        time.sleep(rng.uniform(0.15, 0.6))
        now = stored_ids(url) or []
        if len(set(now) & expected(tag, MAILS)) >= MAILS:
            d.stop()
            break
        d.kill()
        kills += 1
        # A restart that waited for its own lease would store nothing before its kill.
        idle_runs += len(now) <= before
    d = Daemon(cfg, user)
    took = wait_for(f"{tag} drained", drained(url, user, tag, MAILS, disposition), 600, d)
    d.stop()
    figures = {"mails": MAILS, "kills": kills}
    figures.update(counts(url, tag, MAILS))
    figures.update(mailbox_counts(user, tag, MAILS, disposition))
    figures["runs_without_progress"] = idle_runs
    ok = clean(figures, LOSS_KEYS) and figures["acks_queued"] == MAILS
    record(f"sigkill-drain-{backend}-{disposition}", ok, figures,
           f"{time.time() - start:.0f} s, the last run {took:.1f} s")


def sent_count(url):
    return int(query(url, "SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0])


def acks_delivered(tag, n, limit):
    """Waits until every ticket's acknowledgement reached the customer's mailbox."""
    try:
        wait_for(f"{tag} acknowledgements", lambda: len(acks_received(tag)) >= n, limit)
    except TimeoutError:
        pass
    got = acks_received(tag)
    return {
        "acks_missing": n - len(got),
        "acks_repeated": sum(c - 1 for c in got.values()),
        "tickets_with_a_repeat": sum(1 for c in got.values() if c > 1),
    }


def kill_during_delivery():
    """SIGKILL while the outbox is delivered to Postfix; the customer's mailbox counts."""
    tag, user = "ko", "fko"
    url = f"sqlite:{WORK}/{tag}.db"
    fill(user, tag, ACKS)
    Daemon(config(tag + "-queue", url, user), user, once=True).p.wait()
    # A lease far longer than the campaign waits: a restarted daemon must take back
    # what its killed process had claimed at once, not when the lease ends.
    cfg = config(tag, url, user, smtp=True, lease="10m")
    kills = 0
    while kills < KILLS:
        d = Daemon(cfg, user)
        time.sleep(rng.uniform(0.2, 0.8))
        if sent_count(url) >= ACKS:
            d.stop()
            break
        d.kill()
        kills += 1
    d = Daemon(cfg, user)
    took = wait_for(f"{tag} outbox sent (the lease is 10 minutes)", lambda: sent_count(url) >= ACKS, 300, d)
    d.stop()
    figures = {"acks": ACKS, "kills": kills, "sent_after_last_restart_s": round(took, 1)}
    figures.update(counts(url, tag, ACKS))
    figures.update(acks_delivered(tag, ACKS, 120))
    # Each kill may repeat what was sent and not yet marked: never more than once a ticket
    # per kill, and never a loss.
    ok = (clean(figures, ["lost", "duplicate_messages", "duplicate_tickets", "duplicate_acks_queued", "acks_missing"])
          and max(acks_received(tag).values(), default=1) <= 1 + kills)
    record("sigkill-outbox-delivery-postfix", ok, figures)


def pg_ctl(*args):
    bindir = open(os.path.join(PG_DIR, "bindir")).read().strip()
    cmd = [os.path.join(bindir, "pg_ctl"), "-D", os.path.join(PG_DIR, "data")] + list(args)
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=True, capture_output=True, cwd="/")


def restart_mid_drain(name, backend, stop, start, pause):
    tag = {"postgresql": "rp", "dovecot": "rd"}[name]
    user = f"f{tag}"
    n = MAILS
    url = f"sqlite:{WORK}/{tag}.db" if backend == "sqlite" else pg_database(f"faults_{tag}")
    fill(user, tag, n)
    cfg = config(tag, url, user)
    d = Daemon(cfg, user)
    wait_for(f"{tag} started", lambda: len(stored_ids(url) or []) >= max(1, n // 5), 300, d)
    at = len(stored_ids(url) or [])
    stop()
    time.sleep(pause)
    start()
    took = wait_for(f"{tag} drained", drained(url, user, tag, n, "seen"), 600, d)
    d.stop()
    figures = {"mails": n, "stored_before": at}
    figures.update(counts(url, tag, n))
    figures.update(mailbox_counts(user, tag, n, "seen"))
    record(f"{name}-restart-mid-drain", clean(figures, LOSS_KEYS), figures,
           f"down {pause:.0f} s, drained {took:.1f} s after")


def dovecot_stop():
    pid = int(open(os.path.join(E["MAILTEST_DIR"], "run", "master.pid")).read().strip())
    os.kill(pid, signal.SIGTERM)
    for _ in range(200):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not stop")


def dovecot_start():
    for _ in range(50):
        if subprocess.run(["dovecot", "-c", E["DOVECOT_CONF"]]).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError("dovecot did not start again")


def postfix(action):
    subprocess.run(["postfix", "-c", os.path.join(E["MAILTEST_DIR"], "postfix", "etc"), action],
                   check=True, capture_output=True)


def postfix_stopped():
    """Postfix away with the acknowledgements queued; all delivered when it returns, none twice."""
    tag, user = "pf", "fpf"
    url = f"sqlite:{WORK}/{tag}.db"
    fill(user, tag, ACKS)
    postfix("stop")
    try:
        d = Daemon(config(tag, url, user, smtp=True), user)
        wait_for(f"{tag} stored", drained(url, user, tag, ACKS, "seen"), 600, d)
        time.sleep(DOWN)
        queued = int(query(url, "SELECT count(*) FROM outbox WHERE status = 'queued'")[0][0])
        tried = int(query(url, "SELECT count(*) FROM outbox WHERE attempts > 0")[0][0])
    finally:
        postfix("start")
    took = wait_for(f"{tag} outbox sent", lambda: sent_count(url) >= ACKS, 600, d)
    d.stop()
    figures = {"acks": ACKS, "queued_while_down": queued, "attempts_while_down": tried}
    figures.update(counts(url, tag, ACKS))
    figures.update(acks_delivered(tag, ACKS, 120))
    ok = clean(figures, ["lost", "duplicate_messages", "duplicate_tickets", "duplicate_acks_queued",
                         "acks_missing", "acks_repeated"]) and queued == ACKS
    record("postfix-stopped-with-acks-queued", ok, figures, f"down {DOWN:.0f} s, all sent {took:.1f} s after")


def disk_full():
    """The SQLite database's filesystem fills up mid-drain, then space returns."""
    tag, user = "df", "fdf"
    n = MAILS
    mnt = os.path.join(WORK, "small-disk")
    os.makedirs(mnt, exist_ok=True)
    # Room for the whole drain once the ballast is gone (about 4 KB a mail
    # with its ticket, history and acknowledgement), twice over.
    size_mb = max(64, 16 + n * 8 // 1024)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", mnt], check=True)
    try:
        url = f"sqlite:{mnt}/buzon.db"
        fill(user, tag, n)
        # Ballast leaves a little room: the drain starts, then the disk fills.
        ballast = os.path.join(mnt, "ballast")
        with open(ballast, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
        os.truncate(ballast, os.path.getsize(ballast) - (1 << 20))
        d = Daemon(config(tag, url, user), user)
        # The drain stops: wait until it has said why and stored nothing more for a while.
        wait_for(f"{tag} disk full logged", lambda: "disk is full" in d.text(), 120, d)
        last, still = -1, 0
        while still < 3:
            got = len(stored_ids(url) or [])
            still = still + 1 if got == last else 0
            last = got
            time.sleep(1)
        stopped_at = len(set(stored_ids(url) or []) & expected(tag, n))
        inbox, seen = folder(user, "INBOX")
        stored = set(i.strip("<>") for i in stored_ids(url) or [])
        m = imap(user)
        m.select("INBOX", readonly=True)
        typ, rows = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        m.logout()
        marked_not_stored = 0
        for row in rows:
            if isinstance(row, tuple) and b"\\Seen" in row[0]:
                found = re.search(rb"<([^>]+)>", row[1])
                if not found or found.group(1).decode() not in stored:
                    marked_not_stored += 1
        # Long enough for several retries of the folder and passes of the outbox.
        time.sleep(max(8, min(DOWN, 30)))
        os.unlink(ballast)
        took = wait_for(f"{tag} drained", drained(url, user, tag, n, "seen"), 60 + n / 100, d)
        d.stop()
        figures = {"mails": n, "stored_when_full": stopped_at, "seen_when_full": seen,
                   "marked_not_stored": marked_not_stored}
        figures.update(counts(url, tag, n))
        figures.update(mailbox_counts(user, tag, n, "seen"))
        lines = d.text().splitlines()
        logged = next((line for line in lines if "disk is full" in line), "")
        # Said when it starts (once a worker: the folder, the outbox, the webhooks) and
        # when it ends, not at every retry.
        figures["disk_full_log_lines"] = sum(1 for line in lines if "disk is full" in line)
        figures["works_again_lines"] = sum(1 for line in lines if "works again" in line)
        ok = (clean(figures, LOSS_KEYS + ["marked_not_stored"]) and stopped_at < n and bool(logged)
              and figures["disk_full_log_lines"] <= 3 and figures["works_again_lines"] >= 1)
        record("sqlite-disk-full", ok, figures, f"resumed by itself, drained {took:.1f} s after space returned")
        log("    logged: " + re.sub(r"\s+", " ", logged)[:300])
    finally:
        subprocess.run(["umount", "-l", mnt])


FAULTS = {
    "sigkill-drain-sqlite-seen": lambda: kill_during_drain("sqlite", "seen"),
    "sigkill-drain-sqlite-move": lambda: kill_during_drain("sqlite", "move"),
    "sigkill-drain-postgres-seen": lambda: kill_during_drain("postgres", "seen"),
    "sigkill-drain-postgres-move": lambda: kill_during_drain("postgres", "move"),
    "sigkill-outbox-delivery-postfix": kill_during_delivery,
    "postgresql-restart-mid-drain": lambda: restart_mid_drain(
        "postgresql", "postgres", lambda: pg_ctl("stop", "-m", "fast", "-w"),
        lambda: pg_ctl("start", "-w", "-l", os.path.join(PG_DIR, "postgres.log")), min(DOWN, 5)),
    "dovecot-restart-mid-drain": lambda: restart_mid_drain(
        "dovecot", "sqlite", dovecot_stop, dovecot_start, min(DOWN, 5)),
    "postfix-stopped-with-acks-queued": postfix_stopped,
    "sqlite-disk-full": disk_full,
}


def main():
    log(f"campaign: {MAILS} mails a drain, {KILLS} kills, {ACKS} acknowledgements, servers down {DOWN:.0f} s; seed {SEED}")
    for name, run in FAULTS.items():
        if ONLY and name not in ONLY:
            continue
        try:
            run()
        except Exception as e:  # one fault's failure is reported, the others still run
            record(name, False, {}, f"{type(e).__name__}: {e}")
    bad = [n for n, ok, _ in results if not ok]
    total = lambda k: sum(f.get(k, 0) for _, _, f in results)
    print(f"summary: {len(results)} faults, {len(results) - len(bad)} ok, {len(bad)} failed; "
          f"kills={total('kills')} lost={total('lost') + total('lost_on_server')} "
          f"duplicate_messages={total('duplicate_messages')} duplicate_tickets={total('duplicate_tickets')} "
          f"duplicate_acks_queued={total('duplicate_acks_queued')} marked_not_stored={total('marked_not_stored')} "
          f"acks_missing={total('acks_missing')} acks_repeated={total('acks_repeated')} seed={SEED}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
