//! Acknowledgements and notifications over real SMTP: the `buzon` binary
//! submits to the private Postfix that `tests/run.sh` starts, Postfix
//! delivers into Dovecot, and the test reads the result back over IMAP as
//! the customer. Also: SMTP down and back, concurrent senders, robots,
//! the per-recipient limit and an autoresponder that answers everything.
//!
//! Each test uses its own plus addresses (`customer+TAG@example.test`), so
//! tests share the stack without seeing each other's mail.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use buzon::parse::{ParsedMail, parse};
use common::inbox::{Relay, Stack, tag};
use common::{Backend, Deployment, SUPERVISOR, ticket_numbers};

const WAIT: Duration = Duration::from_secs(15);
/// Long enough for a doubled mail to have arrived behind the first.
const QUIET: Duration = Duration::from_millis(700);

fn plain_smtp(port: u16) -> String {
    format!("[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n")
}

/// A deployment whose shared mailbox is `soporte+TAG@example.test`, sending
/// through `smtp` (no `outbox.dir`), retrying after 1 s.
fn deployment(backend: Backend, t: &str, smtp: &str, extra: &str) -> Deployment {
    let d = Deployment::new(backend);
    let text = format!(
        "[deployment]\nname = \"Soporte Tu Patrimonio\"\ntime_zone = \"America/Santiago\"\n\
         our_domains = [\"tupatrimonio.example\"]\n\n\
         [database]\nurl = \"{}\"\n\n\
         [outbox]\nretry_schedule = [\"1s\"]\nmax_age = \"1h\"\n\n\
         {smtp}\n\
         [mailboxes.soporte]\naddress = \"soporte+{t}@example.test\"\n\
         display_name = \"Soporte Tu Patrimonio\"\npipeline = \"Soporte\"\n{extra}\n\n{SUPERVISOR}",
        d.database_url
    );
    std::fs::write(&d.config, text).unwrap();
    d
}

fn customer(t: &str) -> String {
    format!("customer+{t}@example.test")
}

/// A customer's mail number `i` to the test's mailbox.
fn customer_mail(d: &Deployment, t: &str, i: usize, extra_headers: &str) -> PathBuf {
    let text = format!(
        "From: Ana Pérez <{}>\r\nTo: soporte+{t}@example.test\r\n\
         Subject: Documento observado por Notaría - Pedido N° {}\r\n\
         Message-ID: <{t}-{i}@cliente.example>\r\nDate: Mon, 2 Nov 2026 10:00:00 -0300\r\n\
         {extra_headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         Hola, quiero continuar con el documento tal como está.\r\n",
        customer(t),
        75320 + i
    );
    let path = d.dir.path().join(format!("mail-{i}.eml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn parsed(raw: &[u8]) -> ParsedMail {
    parse(raw, 1 << 22).unwrap()
}

fn outbox(d: &Deployment, status: Option<&str>) -> Vec<serde_json::Value> {
    let mut args = vec!["outbox", "list", "--format", "json"];
    if let Some(s) = status {
        args.extend(["--status", s]);
    }
    let v: serde_json::Value = serde_json::from_str(&d.ok(&args)).unwrap();
    v["outbox"].as_array().unwrap().clone()
}

fn events(d: &Deployment, number: &str) -> Vec<(String, String)> {
    d.events(number, "detail")
}

fn acknowledgement_arrives_once_threaded_with_loop_headers(backend: Backend) {
    let stack = Stack::from_env();
    let t = tag("ack");
    let d = deployment(backend, &t, &plain_smtp(stack.smtp_port), "");
    let mail = customer_mail(&d, &t, 1, "");
    let start = Instant::now();
    let out = d.ingest("soporte", &mail);
    let got = stack.wait_for("customer", &customer(&t), 1, WAIT);
    let elapsed = start.elapsed();
    eprintln!(
        "{backend:?}: `buzon ingest` started → acknowledgement readable over IMAP in {elapsed:?}"
    );
    assert!(out.contains("acknowledgement queued"), "{out}");
    let number = ticket_numbers(&out)[0].clone();
    assert_eq!(got.len(), 1, "no acknowledgement arrived within {WAIT:?}");
    let ack = parsed(&got[0]);
    assert!(
        ack.subject.contains(&format!("[#{number}]")),
        "{}",
        ack.subject
    );
    assert!(
        ack.subject.contains("Documento observado"),
        "{}",
        ack.subject
    );
    assert!(ack.text.contains(&number), "{}", ack.text);
    assert!(ack.text.contains("Ana Pérez"), "{}", ack.text);
    assert_eq!(ack.in_reply_to, vec![format!("{t}-1@cliente.example")]);
    assert_eq!(ack.references, vec![format!("{t}-1@cliente.example")]);
    assert_eq!(ack.header("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(ack.header("X-Auto-Response-Suppress"), Some("All"));
    assert_eq!(ack.header("Precedence"), Some("auto_reply"));
    let mailbox = format!("soporte+{t}@example.test");
    assert_eq!(ack.from.as_ref().unwrap().address, mailbox);
    assert_eq!(ack.reply_to.as_ref().unwrap().address, mailbox);
    // Our Message-ID is the one recorded on the ticket.
    let shown = d.show_json(&number);
    let ours: Vec<&str> = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ours, vec![ack.message_id.as_deref().unwrap()]);
    let sent = outbox(&d, Some("sent"));
    assert_eq!(sent.len(), 1);
    assert_eq!(stack.settled("customer", &customer(&t), QUIET).len(), 1);
}

fn smtp_down_then_back_every_acknowledgement_arrives_once(backend: Backend) {
    let stack = Stack::from_env();
    let t = tag("down");
    let mut relay = Relay::down(stack.smtp_port);
    let d = deployment(backend, &t, &plain_smtp(relay.port), "");
    // Ten mails from one customer: above the default limit of 5 per hour.
    let config = std::fs::read_to_string(&d.config).unwrap().replace(
        "max_age = \"1h\"",
        "max_age = \"1h\"\nauto_reply_limit_per_hour = 10",
    );
    std::fs::write(&d.config, config).unwrap();
    let files: Vec<PathBuf> = (1..=10).map(|i| customer_mail(&d, &t, i, "")).collect();
    let mut args = vec!["ingest", "--mailbox", "soporte"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = d.run(&args);
    assert!(
        out.status.success(),
        "the mail is stored even with SMTP down"
    );
    let queued = outbox(&d, Some("queued"));
    assert_eq!(queued.len(), 10);
    for row in &queued {
        let error = row["last_error"].as_str().unwrap_or("");
        assert!(error.contains("onnection refused"), "{row}");
        assert_eq!(row["attempts"], 1);
    }
    let early = d.ok(&["outbox", "flush"]);
    assert!(early.contains("0 sent"), "not due yet: {early}");
    assert!(stack.fetch("customer", &customer(&t)).is_empty());

    relay.up();
    std::thread::sleep(Duration::from_millis(1100)); // the 1 s retry step
    // Several instances flushing at once: each row is claimed by one.
    let reports: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| d.ok(&["outbox", "flush"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let sent: usize = reports
        .iter()
        .map(|r| {
            r.split(" sent")
                .next()
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(sent, 10, "{reports:?}");
    let got = stack.wait_for("customer", &customer(&t), 10, WAIT);
    assert_eq!(got.len(), 10);
    let got = stack.settled("customer", &customer(&t), QUIET);
    assert_eq!(got.len(), 10, "an acknowledgement was sent twice");
    let mut ids: Vec<String> = got.iter().map(|r| parsed(r).message_id.unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    assert_eq!(outbox(&d, Some("sent")).len(), 10);
}

fn robots_get_no_answer(backend: Backend) {
    let stack = Stack::from_env();
    let t = tag("robots");
    let d = deployment(backend, &t, &plain_smtp(stack.smtp_port), "");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auto");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    assert!(names.len() >= 19);
    let mut files = Vec::new();
    for f in &names {
        // Every fixture answers to the test's own customer address (and
        // writes to its mailbox), so a wrong answer would land in its INBOX.
        let text = std::fs::read_to_string(f)
            .unwrap()
            .replace("customer@example.test", &customer(&t))
            .replace("soporte@example.test", &format!("soporte+{t}@example.test"))
            .replace("@cliente.example>", &format!(".{t}@cliente.example>"));
        let out = d.dir.path().join(f.file_name().unwrap());
        std::fs::write(&out, text).unwrap();
        files.push(out);
    }
    let mut args = vec!["ingest", "--mailbox", "soporte"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = d.ok(&args);
    let numbers = ticket_numbers(&out);
    assert_eq!(numbers.len(), files.len(), "{out}");
    assert!(!out.contains("acknowledgement queued"), "{out}");
    for (number, file) in numbers.iter().zip(&names) {
        let withheld: Vec<String> = events(&d, number)
            .into_iter()
            .filter(|(k, _)| k == "ack_withheld")
            .map(|(_, d)| d)
            .collect();
        assert_eq!(withheld.len(), 1, "{}: {withheld:?}", file.display());
    }
    assert!(outbox(&d, None).is_empty());
    // The control: a person's mail through the same deployment is answered,
    // so the silence above is the classification, not a broken channel.
    let person = customer_mail(&d, &t, 99, "");
    d.ingest("soporte", &person);
    let got = stack.wait_for("customer", &customer(&t), 1, WAIT);
    assert_eq!(got.len(), 1);
    assert_eq!(stack.settled("customer", &customer(&t), QUIET).len(), 1);
}

fn twenty_mails_in_a_minute_get_at_most_the_limit(backend: Backend) {
    let stack = Stack::from_env();
    let t = tag("limit");
    let d = deployment(backend, &t, &plain_smtp(stack.smtp_port), "");
    let files: Vec<PathBuf> = (1..=20).map(|i| customer_mail(&d, &t, i, "")).collect();
    let mut args = vec!["ingest", "--mailbox", "soporte"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = d.ok(&args);
    let numbers = ticket_numbers(&out);
    assert_eq!(numbers.len(), 20, "{out}");
    assert_eq!(out.matches("acknowledgement queued").count(), 5, "{out}");
    let got = stack.wait_for("customer", &customer(&t), 5, WAIT);
    assert_eq!(got.len(), 5);
    assert_eq!(stack.settled("customer", &customer(&t), QUIET).len(), 5);
    let sixth = events(&d, &numbers[5]);
    assert!(
        sixth.iter().any(|(k, detail)| k == "ack_withheld"
            && detail.contains("el límite es 5")
            && detail.contains(&customer(&t))),
        "{sixth:?}"
    );
    // The mail itself is stored like any other.
    assert_eq!(d.tickets_json().len(), 20);
}

/// Seed 002: a case update and a document request reach the client (and
/// the additional recipients on the ticket) over real SMTP/IMAP; the
/// requested items form a checklist that an agent ticks off; an internal
/// ticket mails nobody.
fn updates_and_document_requests_reach_the_client(backend: Backend) {
    let stack = Stack::from_env();
    let t = tag("upd");
    let paula = "[people.paula]\nname = \"Paula Contreras\"\nrole = \"admin\"\n";
    let d = deployment(backend, &t, &plain_smtp(stack.smtp_port), paula);
    let cc = format!("finanzas+{t}@example.test");
    let mail = customer_mail(&d, &t, 1, &format!("Cc: Socio <{cc}>\r\n"));
    let number = ticket_numbers(&d.ingest("soporte", &mail))[0].clone();
    stack.wait_for("customer", &customer(&t), 1, WAIT); // the acknowledgement
    let novedad = "Se fijó audiencia preparatoria para el 3 de diciembre.\n";
    let out = d.agent_mail_ok("update", &number, novedad, "paula");
    assert!(out.contains("novedad al cliente en cola"), "{out}");
    let out = d.ok(&[
        "tickets",
        "request",
        &number,
        "--item",
        "poder notarial",
        "--item",
        "copia de carnet",
        "--as",
        "paula",
    ]);
    assert!(out.contains("2 documento(s) pedido(s)"), "{out}");
    let got = stack.wait_for("customer", &customer(&t), 3, WAIT);
    assert_eq!(got.len(), 3, "acknowledgement, update and request");
    let update = got
        .iter()
        .map(|r| parsed(r))
        .find(|m| m.subject.starts_with("Novedad"))
        .unwrap();
    assert!(
        update.text.contains("audiencia preparatoria"),
        "{}",
        update.text
    );
    assert!(
        update.subject.contains(&format!("[#{number}]")),
        "{}",
        update.subject
    );
    assert_eq!(update.in_reply_to, vec![format!("{t}-1@cliente.example")]);
    assert!(
        update.cc.iter().any(|a| a.address == cc),
        "additional recipient in Cc"
    );
    let request = got
        .iter()
        .map(|r| parsed(r))
        .find(|m| m.subject.starts_with("Solicitud de documentos"))
        .unwrap();
    assert!(request.text.contains("poder notarial") && request.text.contains("copia de carnet"));
    // The additional recipient is in the envelope of both (not of the
    // acknowledgement, which answers the requester alone).
    let with_cc = outbox(&d, Some("sent"))
        .iter()
        .filter(|r| {
            r["rcpt_to"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == cc.as_str())
        })
        .count();
    assert_eq!(with_cc, 2);
    let shown = d.show_json(&number);
    assert_eq!(shown["ticket"]["state"], "waiting_on_contact");
    assert_eq!(shown["requests"].as_array().unwrap().len(), 2);
    d.ok(&[
        "tickets",
        "received",
        &number,
        "poder notarial",
        "--as",
        "paula",
    ]);
    let text = d.ok(&["tickets", "show", &number]);
    assert!(text.contains("[x] poder notarial"), "{text}");
    assert!(text.contains("[ ] copia de carnet"), "{text}");
    assert!(
        !d.run(&["tickets", "received", &number, "pasaporte"])
            .status
            .success()
    );
    // Internal: no mail to the client, the agent is told why.
    d.ok(&["tickets", "internal", &number, "--on"]);
    let refused = d.agent_mail("update", &number, novedad, "paula");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("internal"));
    assert_eq!(stack.settled("customer", &customer(&t), QUIET).len(), 3);
}

/// Lines of the shared Postfix's log (`$MAILTEST_DIR/log/postfix.log`).
fn postfix_log() -> String {
    let dir = std::env::var("MAILTEST_DIR").expect("MAILTEST_DIR: run the tests with tests/run.sh");
    std::fs::read_to_string(Path::new(&dir).join("log/postfix.log")).unwrap_or_default()
}

/// A backlog (SMTP down while the mail came in and the agents answered) is
/// delivered over several sessions at once once the server is back: each
/// mail arrives once; a ticket's acknowledgement is accepted before the
/// agent's reply on it (the order Postfix logged them in); a recipient the
/// server refuses fails alone, the others get their mail.
fn a_backlog_is_delivered_concurrently_once_and_in_order_per_ticket(backend: Backend) {
    let stack = Stack::from_env();
    let t = tag("backlog");
    let mut relay = Relay::down(stack.smtp_port);
    let smtp = format!("{}pool_size = 4\n", plain_smtp(relay.port));
    let d = deployment(backend, &t, &smtp, "");
    const N: usize = 12;
    let mut files = Vec::new();
    for i in 0..N {
        // Ticket 0's customer does not exist: Postfix refuses it (5xx).
        let from = if i == 0 {
            format!("nadie+{t}@example.test")
        } else {
            format!("customer+{t}-{i}@example.test")
        };
        let text = format!(
            "From: Cliente {i} <{from}>\r\nTo: soporte+{t}@example.test\r\n\
             Subject: Consulta {i} sobre el pedido {}\r\nMessage-ID: <{t}-b{i}@cliente.example>\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nHola, consulta {i}.\r\n",
            75400 + i
        );
        let path = d.dir.path().join(format!("backlog-{i}.eml"));
        std::fs::write(&path, text).unwrap();
        files.push(path);
    }
    let mut args = vec!["ingest", "--mailbox", "soporte"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let numbers = ticket_numbers(&d.ok(&args));
    assert_eq!(numbers.len(), N);
    for n in &numbers {
        d.agent_mail_ok("reply", n, "Le respondemos su consulta.\n", "supervisora");
    }
    assert_eq!(outbox(&d, Some("queued")).len(), 2 * N);

    relay.up();
    std::thread::sleep(Duration::from_millis(1100)); // the 1 s retry step
    let out = d.ok(&["outbox", "flush"]);
    assert!(out.contains(&format!("{} sent", 2 * (N - 1))), "{out}");
    assert!(out.contains("2 failed"), "{out}");

    let to = format!("customer+{t}-");
    stack.wait_for("customer", &to, 2 * (N - 1), WAIT);
    let got = stack.settled("customer", &to, QUIET);
    let mut ids: Vec<String> = got.iter().map(|r| parsed(r).message_id.unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (got.len(), ids.len()),
        (2 * (N - 1), 2 * (N - 1)),
        "each mail once"
    );

    // Per ticket: the acknowledgement was accepted before the reply.
    let rows = outbox(&d, None);
    let start = Instant::now();
    loop {
        let log = postfix_log();
        let position = |id: &str| log.find(&format!("message-id=<{id}>"));
        let mut pending = 0;
        for n in 2..=N {
            let of_ticket = |kind: &str| {
                rows.iter()
                    .find(|r| r["ticket"] == n && r["kind"] == kind)
                    .unwrap_or_else(|| panic!("no {kind} for ticket {n}: {rows:?}"))["message_id"]
                    .as_str()
                    .unwrap()
                    .trim_matches(['<', '>'])
                    .to_string()
            };
            match (
                position(&of_ticket("acknowledgement")),
                position(&of_ticket("reply")),
            ) {
                (Some(ack), Some(reply)) => {
                    assert!(ack < reply, "ticket {n}: the reply went first")
                }
                _ => pending += 1,
            }
        }
        if pending == 0 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "{pending} tickets not in the Postfix log"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The refused customer's two mails failed, with Postfix's answer.
    let failed = outbox(&d, Some("failed"));
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|r| r["ticket"] == 1), "{failed:?}");
}

on_both_backends!(
    a_backlog_is_delivered_concurrently_once_and_in_order_per_ticket,
    acknowledgement_arrives_once_threaded_with_loop_headers,
    smtp_down_then_back_every_acknowledgement_arrives_once,
    robots_get_no_answer,
    twenty_mails_in_a_minute_get_at_most_the_limit,
    updates_and_document_requests_reach_the_client,
);

/// A peer on the shared stack that answers every mail in its mailbox.
struct Autoresponder<'a> {
    stack: &'a Stack,
    address: String,
    /// Mails already answered.
    seen: usize,
    /// Whether it marks its answers as RFC 3834 auto-replies and threads
    /// them; a broken one does neither, and writes a fresh subject.
    rfc3834: bool,
}

impl Autoresponder<'_> {
    /// Answers what arrived since the last call (waiting up to `wait` for
    /// something new); returns how many it answered.
    fn answer_new(&mut self, to: &str, wait: Duration) -> usize {
        let got = self
            .stack
            .wait_for("autoresponder", &self.address, self.seen + 1, wait);
        let new = &got[self.seen.min(got.len())..];
        for (i, raw) in new.iter().enumerate() {
            let incoming = parsed(raw);
            let n = self.seen + i;
            let (subject, extra) = if self.rfc3834 {
                (
                    format!("Respuesta automática: {}", incoming.subject),
                    format!(
                        "Auto-Submitted: auto-replied\r\nIn-Reply-To: <{}>\r\n",
                        incoming.message_id.clone().unwrap_or_default()
                    ),
                )
            } else {
                (format!("Gracias por su mensaje número {n}"), String::new())
            };
            let reply = format!(
                "From: Oficina de partes <{}>\r\nTo: {to}\r\nSubject: {subject}\r\n\
                 Message-ID: <peer-{n}.{}>\r\n{extra}MIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n\
                 Recibimos su correo. Le contestaremos a la brevedad.\r\n",
                self.address, self.address
            );
            self.stack.send(&self.address, to, reply.as_bytes());
        }
        self.seen += new.len();
        new.len()
    }
}

/// Plays the exchange: the peer writes first, then buzon ingests whatever
/// arrives in its mailbox and the peer answers whatever it gets. Returns
/// (acknowledgements the peer received, rounds played).
fn ping_pong(rfc3834: bool) -> (usize, usize, Deployment, String) {
    let stack = Stack::from_env();
    let t = tag("peer");
    let d = deployment(Backend::Sqlite, &t, &plain_smtp(stack.smtp_port), "");
    let mailbox = format!("soporte+{t}@example.test");
    let mut peer = Autoresponder {
        stack: &stack,
        address: format!("autoresponder+{t}@example.test"),
        seen: 0,
        rfc3834,
    };
    let first = format!(
        "From: Oficina de partes <{}>\r\nTo: {mailbox}\r\nSubject: Solicitud de copia de escritura\r\n\
         Message-ID: <first.{t}@peer.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nSolicito una copia.\r\n",
        peer.address
    );
    stack.send(&peer.address, &mailbox, first.as_bytes());
    let mut ingested = 0;
    let mut rounds = 0;
    // Bounded in rounds and time: a loop the limit failed to stop ends the
    // test with a failure instead of running forever.
    let deadline = Instant::now() + Duration::from_secs(120);
    while rounds < 15 && Instant::now() < deadline {
        let inbox = stack.wait_for("soporte", &mailbox, ingested + 1, WAIT);
        for (i, raw) in inbox[ingested..].iter().enumerate() {
            let f = d.dir.path().join(format!("in-{}.eml", ingested + i));
            std::fs::write(&f, raw).unwrap();
            d.ingest("soporte", &f);
        }
        ingested = inbox.len();
        rounds += 1;
        if peer.answer_new(&mailbox, Duration::from_secs(3)) == 0 {
            break;
        }
    }
    let acks = stack.settled("autoresponder", &peer.address, QUIET).len();
    (acks, rounds, d, t)
}

#[test]
fn an_autoresponder_that_ignores_rfc3834_is_stopped_by_the_limit() {
    let (acks, rounds, d, t) = ping_pong(false);
    assert_eq!(acks, 5, "the exchange must stop at the limit");
    assert!(rounds <= 7, "{rounds} rounds");
    let tickets = d.tickets_json();
    assert_eq!(tickets.len(), 6, "every mail is stored");
    let last = tickets.last().unwrap()["number"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        events(&d, &last).iter().any(
            |(k, detail)| k == "ack_withheld" && detail.contains(&format!("autoresponder+{t}"))
        ),
        "the history says why"
    );
}

#[test]
fn an_rfc3834_autoresponder_gets_one_acknowledgement() {
    let (acks, rounds, d, _) = ping_pong(true);
    assert_eq!(acks, 1);
    assert!(rounds <= 2, "{rounds} rounds");
    let tickets = d.tickets_json();
    assert_eq!(tickets.len(), 1, "its auto-reply joins the ticket");
    assert_eq!(tickets[0]["message_count"], 3);
}

#[test]
fn a_permanent_failure_fails_at_once_and_retry_requeues_it() {
    let stack = Stack::from_env();
    let t = tag("perm");
    let d = deployment(Backend::Sqlite, &t, &plain_smtp(stack.smtp_port), "");
    // nobody@example.test does not exist: Postfix answers 550 5.1.1.
    let text = std::fs::read_to_string(customer_mail(&d, &t, 1, ""))
        .unwrap()
        .replace(&customer(&t), &format!("nobody+{t}@example.test"));
    let f = d.dir.path().join("unknown.eml");
    std::fs::write(&f, text).unwrap();
    d.ingest("soporte", &f);
    let failed = outbox(&d, Some("failed"));
    assert_eq!(failed.len(), 1, "{:?}", outbox(&d, None));
    assert_eq!(failed[0]["attempts"], 1);
    let error = failed[0]["last_error"].as_str().unwrap();
    assert!(error.contains("550"), "{error}");
    let id = failed[0]["id"].to_string();
    let out = d.ok(&["outbox", "retry", &id]);
    assert!(
        out.contains("queued again") && out.contains("was failed"),
        "{out}"
    );
    assert!(out.contains("1 failed"), "tried again at once: {out}");
    assert_eq!(outbox(&d, Some("failed"))[0]["attempts"], 1);

    // A sent mail is not sent again, and an unknown id is an error.
    d.ingest("soporte", &customer_mail(&d, &t, 2, ""));
    let sent = outbox(&d, Some("sent"));
    assert_eq!(sent.len(), 1);
    let again = d.run(&["outbox", "retry", &sent[0]["id"].to_string()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already sent"));
    let unknown = d.run(&["outbox", "retry", "999"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no outgoing mail 999"));
    let bad = d.run(&["outbox", "list", "--status", "enviado"]);
    assert!(!bad.status.success());
}

#[test]
fn past_the_maximum_age_a_mail_fails_with_its_last_error() {
    let stack = Stack::from_env();
    let t = tag("age");
    let relay = Relay::down(stack.smtp_port);
    let d = deployment(Backend::Sqlite, &t, &plain_smtp(relay.port), "");
    let config = std::fs::read_to_string(&d.config)
        .unwrap()
        .replace("max_age = \"1h\"", "max_age = \"2s\"");
    std::fs::write(&d.config, config).unwrap();
    d.ingest("soporte", &customer_mail(&d, &t, 1, ""));
    assert_eq!(
        outbox(&d, Some("queued")).len(),
        1,
        "first failure: retried"
    );
    std::thread::sleep(Duration::from_millis(1100));
    let out = d.ok(&["outbox", "flush"]);
    assert!(out.contains("1 failed"), "{out}");
    let failed = outbox(&d, Some("failed"));
    assert!(
        failed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("onnection refused"),
        "{failed:?}"
    );
}

#[test]
fn starttls_and_implicit_tls_with_auth() {
    let stack = Stack::from_env();
    let t = tag("tls");
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "support-pass\n").unwrap();
    let submission = format!(
        "[smtp]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\n\
         username = \"support@example.test\"\npassword_file = \"{}\"\nca_file = \"{}\"\n",
        stack.submission_port,
        secret.path().display(),
        stack.ca_file
    );
    let d = deployment(Backend::Sqlite, &t, &submission, "");
    d.ingest("soporte", &customer_mail(&d, &t, 1, ""));
    assert_eq!(stack.wait_for("customer", &customer(&t), 1, WAIT).len(), 1);

    let smtps = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\n\
         username = \"support@example.test\"\npassword_env = \"BUZON_TEST_SMTP_SECRET\"\nca_file = \"{}\"\n",
        stack.smtps_port, stack.ca_file
    );
    let d = deployment(Backend::Sqlite, &t, &smtps, "");
    let out = d
        .cmd()
        .env("BUZON_TEST_SMTP_SECRET", "support-pass")
        .args(["ingest", "--mailbox", "soporte"])
        .arg(customer_mail(&d, &t, 2, ""))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(stack.wait_for("customer", &customer(&t), 2, WAIT).len(), 2);

    // A wrong password is a setup problem: the mail waits for the fix, and
    // the password shows up nowhere.
    let out = d
        .cmd()
        .env("BUZON_TEST_SMTP_SECRET", "clave-equivocada")
        .env("BUZON_LOG", "trace")
        .args(["ingest", "--mailbox", "soporte"])
        .arg(customer_mail(&d, &t, 3, ""))
        .output()
        .unwrap();
    assert!(out.status.success());
    let queued = outbox(&d, Some("queued"));
    assert_eq!(queued.len(), 1);
    let error = queued[0]["last_error"].as_str().unwrap();
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("clave-equivocada"));
    // Not even at trace level, where the SMTP library would log the AUTH
    // exchange (PLAIN or LOGIN, base64).
    let logged = String::from_utf8_lossy(&out.stderr);
    for leak in [
        "clave-equivocada",
        "Y2xhdmUtZXF1aXZvY2FkYQ",
        "AHN1cHBvcnRAZXhhbXBsZS50ZXN0AGNsYXZl",
    ] {
        assert!(!logged.contains(leak), "{leak} in the log:\n{logged}");
    }
    let out = d
        .cmd()
        .env("BUZON_TEST_SMTP_SECRET", "support-pass")
        .args(["outbox", "retry", &queued[0]["id"].to_string()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 sent"));
    assert_eq!(stack.wait_for("customer", &customer(&t), 3, WAIT).len(), 3);
}

#[test]
fn owners_are_told_about_new_assigned_and_answered_tickets() {
    let stack = Stack::from_env();
    let t = tag("owner");
    let camila = format!("support+{t}-camila@example.test");
    let alonso = format!("support+{t}-alonso@example.test");
    let people = format!(
        "owner = \"camila\"\n\n[people.camila]\naddress = \"{camila}\"\nname = \"Camila Rojas\"\n\n\
         [people.alonso]\naddress = \"{alonso}\"\n\n[people.milagros]\nname = \"Milagros\"\n"
    );
    let d = deployment(Backend::Sqlite, &t, &plain_smtp(stack.smtp_port), &people);
    let out = d.ingest("soporte", &customer_mail(&d, &t, 1, ""));
    let number = ticket_numbers(&out)[0].clone();
    let new = stack.wait_for("support", &camila, 1, WAIT);
    assert_eq!(new.len(), 1);
    let new = parsed(&new[0]);
    assert!(
        new.subject
            .starts_with(&format!("[#{number}] Nuevo ticket")),
        "{}",
        new.subject
    );
    assert!(
        new.text.contains("Camila Rojas") && new.text.contains("tal como está"),
        "{}",
        new.text
    );
    assert_eq!(new.header("Auto-Submitted"), Some("auto-generated"));
    let ack = parsed(&stack.wait_for("customer", &customer(&t), 1, WAIT)[0]);

    // The customer answers the acknowledgement: the owner hears of it.
    let answer = customer_mail(
        &d,
        &t,
        2,
        &format!("In-Reply-To: <{}>\r\n", ack.message_id.unwrap()),
    );
    let out = d.ingest("soporte", &answer);
    assert!(out.contains("follow-up appended"), "{out}");
    let mails = stack.wait_for("support", &camila, 2, WAIT);
    let reply = parsed(&mails[1]);
    assert!(
        reply.subject.contains("El cliente respondió"),
        "{}",
        reply.subject
    );

    d.ok(&["tickets", "assign", &number, "alonso", "--as", "camila"]);
    let assigned = stack.wait_for("support", &alonso, 1, WAIT);
    assert_eq!(assigned.len(), 1);
    assert!(parsed(&assigned[0]).subject.contains("Le asignaron"));
    // Seed 001's notifications: someone else acting on Alonso's ticket
    // tells him; Alonso acting on it himself does not.
    d.ok(&[
        "tickets",
        "comment",
        &number,
        "Llamé a la clienta",
        "--as",
        "camila",
    ]);
    let told = stack.wait_for("support", &alonso, 2, WAIT);
    assert_eq!(told.len(), 2);
    let told = parsed(&told[1]);
    assert!(
        told.subject.contains("Camila Rojas agregó un comentario"),
        "{}",
        told.subject
    );
    assert!(told.text.contains("Llamé a la clienta"), "{}", told.text);
    d.ok(&["tickets", "comment", &number, "Revisado", "--as", "alonso"]);
    assert_eq!(stack.settled("support", &alonso, QUIET).len(), 2);
    // Someone without an address: the history says why nobody was told.
    d.ok(&["tickets", "assign", &number, "milagros", "--as", "alonso"]);
    assert!(
        events(&d, &number)
            .iter()
            .any(|(k, detail)| k == "mail_withheld"
                && detail.contains("milagros no tiene dirección"))
    );

    d.ok(&[
        "tickets",
        "close",
        &number,
        "--outcome",
        "success",
        "--note",
        "Documento enviado a la notaría.",
    ]);
    let mails = stack.wait_for("customer", &customer(&t), 2, WAIT);
    let closing = parsed(&mails[1]);
    assert!(
        closing.subject.contains("finalizada con éxito"),
        "{}",
        closing.subject
    );
    assert!(closing.text.contains("Documento enviado a la notaría."));
    assert_eq!(closing.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(stack.settled("support", &camila, QUIET).len(), 2);
}

#[test]
fn template_files_replace_the_builtin_words_and_are_checked_at_load() {
    let stack = Stack::from_env();
    let t = tag("tpl");
    let d = deployment(
        Backend::Sqlite,
        &t,
        &format!(
            "{}\n[templates]\ndir = \"plantillas\"\n",
            plain_smtp(stack.smtp_port)
        ),
        "",
    );
    let dir = d.dir.path().join("plantillas");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("acknowledgement.txt"),
        "Subject: {{ tag }} Su solicitud quedó registrada\n\n\
         Estimada/o {{ name }}: su número de ticket es {{ ticket }}.\n{{ team }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("acknowledgement.html"),
        "<p>Estimada/o {{ name }}: su número de ticket es <b>{{ ticket }}</b>.</p>\n",
    )
    .unwrap();
    let out = d.ingest("soporte", &customer_mail(&d, &t, 1, ""));
    let number = ticket_numbers(&out)[0].clone();
    let ack = parsed(&stack.wait_for("customer", &customer(&t), 1, WAIT)[0]);
    assert_eq!(
        ack.subject,
        format!("[#{number}] Su solicitud quedó registrada")
    );
    assert!(
        ack.text.contains(&format!(
            "Estimada/o Ana Pérez: su número de ticket es {number}"
        )),
        "{}",
        ack.text
    );
    assert!(
        ack.part_types.iter().any(|p| p == "text/html"),
        "{:?}",
        ack.part_types
    );

    std::fs::write(
        dir.join("acknowledgement.txt"),
        "Subject: {{ tag }} Recibido\n\nHola {{ nombre }}\n",
    )
    .unwrap();
    let out = d.run(&[
        "ingest",
        "--mailbox",
        "soporte",
        customer_mail(&d, &t, 2, "").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("acknowledgement.txt:3: unknown variable `nombre`"),
        "{err}"
    );
}

/// The shared corpus's automatic mail (`corpus/auto/`, 831 real bounces,
/// complaints, auto-replies, lists and bulk mail), plus our fixtures:
/// none of it may be acknowledged. Runs the library pipeline directly (no
/// server needed to decide; the SMTP tests above prove the channel).
#[test]
fn corpus_automatic_mail_is_never_acknowledged() {
    use buzon::pipeline::{Outcome, Pipeline};
    use buzon::store::Store;

    let mut files: Vec<PathBuf> = Vec::new();
    let corpus = std::env::var("BUZON_SHARED_DIR")
        .map(|d| PathBuf::from(d).join("corpus/auto"))
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/auto")])
        .find(|d| d.is_dir());
    match &corpus {
        Some(dir) => {
            let traits = std::fs::read_to_string(dir.join("TRAITS.tsv")).unwrap();
            for line in traits.lines().skip(1) {
                if let Some(path) = line.split('\t').next().filter(|p| !p.is_empty()) {
                    files.push(dir.join(path));
                }
            }
            assert!(
                files.len() > 800,
                "corpus/auto/TRAITS.tsv lists {} mails",
                files.len()
            );
        }
        None => eprintln!("note: no shared corpus beside the checkout; our fixtures only"),
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/auto");
    for e in std::fs::read_dir(fixtures).unwrap().flatten() {
        files.push(e.path());
    }
    let dir = tempfile::tempdir().unwrap();
    let config = common::library_config(
        &dir.path().join("auto.db"),
        "soporte",
        "soporte@example.test",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&config.database.url, 4).await.unwrap();
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        let mut answered = Vec::new();
        for f in &files {
            let raw = std::fs::read(f).unwrap();
            if let Ok(Outcome::Created {
                acknowledged: true, ..
            }) = pipeline.ingest(&raw, "soporte").await
            {
                answered.push(f.display().to_string());
            }
        }
        assert!(
            answered.is_empty(),
            "acknowledged {} automatic mails:\n{}",
            answered.len(),
            answered.join("\n")
        );
        // The corpus's negative controls are ordinary mail: they are
        // answered, so the silence above is not over-eager classification.
        if let Some(dir) = &corpus {
            for control in [
                "sisimai/not/is-not-bounce-01.eml",
                "sisimai/not/is-not-bounce-02.eml",
            ] {
                let raw = std::fs::read(dir.join("..").join(control)).unwrap();
                let outcome = pipeline.ingest(&raw, "soporte").await.unwrap();
                assert!(
                    matches!(
                        outcome,
                        Outcome::Created {
                            acknowledged: true,
                            ..
                        }
                    ),
                    "{control}: {outcome:?}"
                );
            }
        }
        store.close().await;
    });
}
