//! `buzon ingest` end to end through the CLI, on SQLite and on a real
//! PostgreSQL: fixtures with real mail shapes, dedupe across mailboxes,
//! quarantine and retry, acknowledgements written to the outbox directory.

mod common;

use std::collections::HashMap;

use common::{Backend, Deployment, fixture, ticket_numbers};

/// One row of tests/fixtures/ingest/EXPECTED.tsv.
struct Expected {
    file: String,
    outcome: String,
    subject: String,
    from: String,
    body_contains: String,
    attachments: Vec<String>,
    automatic: String,
}

fn expectations() -> Vec<Expected> {
    let text = std::fs::read_to_string(fixture("ingest/EXPECTED.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 7, "bad EXPECTED.tsv line: {line}");
            Expected {
                file: f[0].into(),
                outcome: f[1].into(),
                subject: f[2].into(),
                from: f[3].into(),
                body_contains: f[4].into(),
                attachments: f[5]
                    .split('|')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                automatic: f[6].into(),
            }
        })
        .collect()
}

fn fixtures_become_tickets_or_quarantine(backend: Backend) {
    let d = Deployment::new(backend);
    let mut quarantined = 0;
    for e in expectations() {
        let out = d.ingest("soporte", &fixture(&format!("ingest/{}", e.file)));
        if e.outcome == "quarantine" {
            assert!(out.contains("quarantined as Q"), "{}: {out}", e.file);
            quarantined += 1;
            continue;
        }
        let numbers = ticket_numbers(&out);
        assert_eq!(numbers.len(), 1, "{}: {out}", e.file);
        let shown = d.show_json(&numbers[0]);
        let ticket = &shown["ticket"];
        assert_eq!(ticket["subject"], e.subject.as_str(), "{}", e.file);
        assert_eq!(ticket["requester"], e.from.as_str(), "{}", e.file);
        let message = &shown["messages"][0];
        let body = message["body_text"].as_str().unwrap();
        assert!(
            body.contains(&e.body_contains),
            "{}: body lacks {:?}:\n{body}",
            e.file,
            e.body_contains
        );
        let names: Vec<&str> = message["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        for want in &e.attachments {
            assert!(
                names.contains(&want.as_str()),
                "{}: attachments {names:?}",
                e.file
            );
        }
        let automatic = message["automatic"].as_str().unwrap_or("none");
        assert_eq!(automatic, e.automatic, "{}", e.file);
        // Only people are acknowledged; robots never are.
        let acked = out.contains("acknowledgement queued");
        assert_eq!(acked, e.automatic == "none", "{}: {out}", e.file);
    }
    let q = d.ok(&["quarantine", "list", "--format", "json"]);
    let q: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert_eq!(q["quarantine"].as_array().unwrap().len(), quarantined);
}

fn same_mail_twice_and_in_two_mailboxes_is_one_ticket(backend: Backend) {
    let d = Deployment::new(backend);
    let mail = fixture("ingest/utf8-qp.eml");
    let first = ticket_numbers(&d.ingest("servicioalcliente", &mail));
    let again = d.ingest("servicioalcliente", &mail);
    let other = d.ingest("finanzas", &mail);
    assert_eq!(ticket_numbers(&again), first);
    assert_eq!(ticket_numbers(&other), first);
    assert!(again.contains("already stored"), "{again}");
    assert!(other.contains("also arrived in finanzas"), "{other}");
    assert_eq!(d.tickets_json().len(), 1);
    let shown = d.show_json(&first[0]);
    let messages: Vec<&serde_json::Value> = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .collect();
    assert_eq!(messages.len(), 1);
    let boxes: Vec<&str> = messages[0]["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(boxes, ["servicioalcliente", "finanzas"]);
    // One acknowledgement, not three.
    assert_eq!(d.outbox_files().len(), 1);
    // The duplicates' tickets were taken back; on SQLite their numbers too.
    let next = ticket_numbers(&d.ingest("soporte", &fixture("ingest/attachments.eml")));
    if backend == Backend::Sqlite {
        assert_eq!(next, ["T-2"]);
    }
}

fn mail_without_message_id_dedupes_by_content(backend: Backend) {
    let d = Deployment::new(backend);
    let mail = fixture("ingest/no-message-id.eml");
    let a = ticket_numbers(&d.ingest("finanzas", &mail));
    let b = ticket_numbers(&d.ingest("finanzas", &mail));
    assert_eq!(a, b);
    assert_eq!(d.tickets_json().len(), 1);
}

fn acknowledgement_is_threaded_and_numbered(backend: Backend) {
    let d = Deployment::new(backend);
    let out = d.ingest("soporte", &fixture("ingest/reply-with-order.eml"));
    let number = &ticket_numbers(&out)[0];
    let files = d.outbox_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read(&files[0]).unwrap();
    let ack = buzon::parse::parse(&raw, 1 << 20).unwrap();
    let original = buzon::parse::parse(
        &std::fs::read(fixture("ingest/reply-with-order.eml")).unwrap(),
        1 << 20,
    )
    .unwrap();
    assert_eq!(ack.in_reply_to, vec![original.message_id.clone().unwrap()]);
    assert!(
        ack.subject.contains(&format!("[#{number}]")),
        "{}",
        ack.subject
    );
    assert!(ack.text.contains(number.as_str()));
    assert_eq!(ack.header("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(ack.to[0].address, original.from.unwrap().address);
    assert_eq!(ack.from.unwrap().address, "soporte@tupatrimonio.example");
    // The outbox row is recorded as sent, with our Message-ID.
    let list = d.ok(&["outbox", "list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let rows = list["outbox"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "sent");
    assert_eq!(rows[0]["message_id"], ack.message_id.unwrap().as_str());
    // Its bytes are stored once, as the ticket's outgoing message: the
    // outbox row's are empty and what was sent is read from there.
    let outbox_raw: Vec<u8> = d.scalar("SELECT raw FROM outbox");
    assert!(outbox_raw.is_empty());
    let stored: Vec<u8> = d.scalar("SELECT raw FROM messages WHERE direction = 'out'");
    assert_eq!(stored, raw);
    // And the view for whoever reads the database by hand gives them too.
    let viewed: Vec<u8> = d.scalar("SELECT raw FROM outbox_mail");
    assert_eq!(viewed, raw);
    // And the history says so.
    let shown = d.show_json(number);
    let kinds: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"created"), "{kinds:?}");
    assert!(kinds.contains(&"routed"), "{kinds:?}");
    assert!(kinds.contains(&"mail_queued"), "{kinds:?}");
}

fn automatic_mail_is_stored_but_never_answered(backend: Backend) {
    let d = Deployment::new(backend);
    for f in [
        "autoreply-ooo.eml",
        "bounce-dsn.eml",
        "list-post.eml",
        "noreply-sender.eml",
    ] {
        let out = d.ingest("soporte", &fixture(&format!("ingest/{f}")));
        let number = &ticket_numbers(&out)[0];
        let shown = d.show_json(number);
        let withheld = shown["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "ack_withheld");
        assert!(withheld, "{f}: {shown:#}");
    }
    assert!(d.outbox_files().is_empty());
}

fn oversize_mail_is_quarantined_then_released_by_retry(backend: Backend) {
    let d = Deployment::new(backend);
    let out = d
        .cmd()
        .env("BUZON_LIMITS__MAX_MESSAGE_BYTES", "1024")
        .args(["ingest", "--mailbox", "soporte"])
        .arg(fixture("ingest/attachments.eml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("quarantined as Q1"), "{text}");
    assert!(text.contains("exceeds the limit"), "{text}");
    assert!(d.tickets_json().is_empty());
    let retry = d.ok(&["quarantine", "retry", "1"]);
    assert!(retry.contains("released into T-"), "{retry}");
    assert_eq!(d.tickets_json().len(), 1);
    let q: serde_json::Value =
        serde_json::from_str(&d.ok(&["quarantine", "list", "--format", "json"])).unwrap();
    assert_eq!(q["quarantine"][0]["status"], "released");
}

fn garbage_stays_quarantined_on_retry(backend: Backend) {
    let d = Deployment::new(backend);
    let out = d.ingest("soporte", &fixture("ingest/not-an-email.eml"));
    assert!(out.contains("quarantined as Q1: not an email"), "{out}");
    let retry = d.run(&["quarantine", "retry", "1"]);
    assert!(!retry.status.success());
    assert!(String::from_utf8_lossy(&retry.stdout).contains("still cannot be ticketed"));
    // The same bytes again do not make a second quarantine row.
    d.ingest("soporte", &fixture("ingest/not-an-email.eml"));
    let q: serde_json::Value =
        serde_json::from_str(&d.ok(&["quarantine", "list", "--format", "json"])).unwrap();
    assert_eq!(q["quarantine"].as_array().unwrap().len(), 1);
}

fn stdin_ingest_and_list_filters(backend: Backend) {
    let d = Deployment::new(backend);
    let raw = std::fs::read(fixture("ingest/latin1-8bit.eml")).unwrap();
    let out = d
        .cmd()
        .args(["ingest", "--mailbox", "finanzas"])
        .write_stdin(raw)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("-: T-"));
    d.ingest("soporte", &fixture("ingest/utf8-qp.eml"));
    let all = d.tickets_json();
    assert_eq!(all.len(), 2);
    // Mailbox defaults applied: finanzas → Finanzas / alonso / high.
    let fin: Vec<_> = all.iter().filter(|t| t["pipeline"] == "Finanzas").collect();
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0]["owner"], "alonso");
    assert_eq!(fin[0]["priority"], "high");
    assert_eq!(fin[0]["state"], "new");
    // The customer's mail and our acknowledgement.
    assert_eq!(fin[0]["message_count"], 2);
    for field in [
        "number",
        "subject",
        "state",
        "pipeline",
        "owner",
        "priority",
        "type",
        "category",
        "area",
        "tags",
        "keys",
        "requester",
        "due_at",
        "created_at",
        "message_count",
    ] {
        assert!(fin[0].get(field).is_some(), "JSON lacks {field}");
    }
    let only = d.ok(&[
        "tickets",
        "list",
        "--pipeline",
        "Soporte",
        "--format",
        "json",
    ]);
    let only: serde_json::Value = serde_json::from_str(&only).unwrap();
    assert_eq!(only["tickets"].as_array().unwrap().len(), 1);
    let none = d.ok(&["tickets", "list", "--state", "done", "--format", "json"]);
    assert!(none.contains("\"tickets\": []"), "{none}");
    let table = d.ok(&["tickets", "list"]);
    assert!(table.starts_with("TICKET"), "{table}");
    assert_eq!(table.lines().count(), 3);
}

fn csv_export_round_trips(backend: Backend) {
    let d = Deployment::new(backend);
    d.ingest("soporte", &fixture("ingest/windows1252.eml"));
    let csv = d.ok(&["tickets", "list", "--format", "csv"]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "number");
    let row = lines.next().unwrap();
    assert!(
        row.contains("Factura N° F001-2231 – Licencia anual"),
        "{row}"
    );
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for (h, v) in header.iter().zip(row.split(',')) {
        fields.insert(h, v);
    }
    assert_eq!(fields["number"], "T-1");
    assert_eq!(fields["state"], "new");
}

/// A database a newer buzon migrated is refused, saying so, rather than
/// misread: from migration 0018 an outbox row's bytes live in its outgoing
/// message, and an older buzon would send that row empty.
fn a_database_from_a_newer_buzon_is_refused(backend: Backend) {
    let d = Deployment::new(backend);
    d.ok(&["migrate"]);
    let blob = if d.database_url.starts_with("sqlite:") {
        "X'00'"
    } else {
        "'\\x00'::bytea"
    };
    let version: i64 = d.scalar(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'de un buzon más nuevo', TRUE, {blob}, 0) RETURNING version"
    ));
    assert_eq!(version, 9999);
    // A configuration problem (78): systemd does not restart it in a loop.
    for args in [&["tickets", "list"][..], &["run", "--once"][..]] {
        let out = d.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {err}");
        assert!(
            err.contains("migrated by a newer buzon (migration 9999 is unknown to this one)"),
            "{args:?}: {err}"
        );
    }
}

on_both_backends!(
    a_database_from_a_newer_buzon_is_refused,
    fixtures_become_tickets_or_quarantine,
    same_mail_twice_and_in_two_mailboxes_is_one_ticket,
    mail_without_message_id_dedupes_by_content,
    acknowledgement_is_threaded_and_numbered,
    automatic_mail_is_stored_but_never_answered,
    oversize_mail_is_quarantined_then_released_by_retry,
    garbage_stays_quarantined_on_retry,
    stdin_ingest_and_list_filters,
    csv_export_round_trips,
    broken_templates_defer_the_mail_instead_of_bouncing_it,
);

/// An MTA pipes mail into `buzon ingest`: when the templates (or rules, or
/// configuration) are broken the mail must stay in the MTA's queue (exit
/// 75, EX_TEMPFAIL), not bounce; once fixed, the retry stores it.
fn broken_templates_defer_the_mail_instead_of_bouncing_it(backend: Backend) {
    let d = Deployment::new(backend);
    let templates = d.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("acknowledgement.txt"),
        "Subject: {{ tag }} Recibido\n\nSu número es {{ tikcet }}.\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        format!("{text}\n[templates]\ndir = \"{}\"\n", templates.display()),
    )
    .unwrap();
    let mail = fixture("ingest/utf8-qp.eml");
    let out = d.run(&["ingest", "--mailbox", "soporte", mail.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(75), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("acknowledgement.txt:3"),
        "{out:?}"
    );
    assert!(d.tickets_json().is_empty(), "nothing was stored");
    std::fs::write(
        templates.join("acknowledgement.txt"),
        "Subject: {{ tag }} Recibido\n\nSu número es {{ ticket }}.\n",
    )
    .unwrap();
    assert_eq!(ticket_numbers(&d.ingest("soporte", &mail)).len(), 1);
}

#[test]
fn unknown_mailbox_is_refused_naming_the_configured_ones() {
    let d = Deployment::new(Backend::Sqlite);
    let out = d.run(&[
        "ingest",
        "--mailbox",
        "ventas",
        fixture("ingest/utf8-qp.eml").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown mailbox 'ventas'"), "{err}");
    assert!(err.contains("finanzas"), "{err}");
}

#[test]
fn config_problems_are_reported_together() {
    let d = Deployment::with_extra(
        Backend::Sqlite,
        "[limitz]\nx = 1\n\n[deadlines]\nfirst_response_met_by = [\"replied\"]\n\n\
         [smtp]\nhost = \"localhost\"\ntls = \"startls\"\n",
    );
    let out = d
        .cmd()
        .env("BUZON_DEPLOYMENT__TIME_ZONE", "Mars/Olympus")
        .args(["tickets", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limitz"), "{err}");
    assert!(err.contains("deployment.time_zone"), "{err}");
    // A misspelt value names what may be written, not a Rust type.
    assert!(
        err.contains("unknown value 'replied': write one of \"reply\", \"update\""),
        "{err}"
    );
    assert!(
        err.contains("unknown value 'startls': write one of \"implicit\", \"starttls\""),
        "{err}"
    );
    assert!(!err.contains("enum"), "{err}");
}

#[test]
fn database_url_shorthand_overrides_the_file() {
    let d = Deployment::new(Backend::Sqlite);
    let other = d.dir.path().join("other.db");
    let out = d
        .cmd()
        .env("BUZON_DATABASE_URL", format!("sqlite:{}", other.display()))
        .env("BUZON_OUTBOX_DIR", d.dir.path().join("elsewhere"))
        .args(["ingest", "--mailbox", "soporte"])
        .arg(fixture("ingest/utf8-qp.eml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(other.exists());
    assert!(
        d.tickets_json().is_empty(),
        "the file's database must be untouched"
    );
    assert_eq!(
        std::fs::read_dir(d.dir.path().join("elsewhere"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn demo_runs_every_team_on_its_own_rules() {
    let dir = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("buzon")
        .unwrap()
        .env_remove("BUZON_CONFIG")
        .env(
            "BUZON_DATABASE_URL",
            "postgres://must-be-ignored@127.0.0.1:1/x",
        )
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for team in [
        "genera-factoring",
        "mesa-de-ayuda",
        "pvi",
        "tupatrimonio",
        "tuprocurador",
    ] {
        assert!(
            text.contains(&format!("(examples/{team})")),
            "{team}: {text}"
        );
        let acks = std::fs::read_dir(dir.path().join(team).join("outbox"))
            .unwrap()
            .count();
        assert!(acks >= 2, "{team}: {acks} mails written\n{text}");
    }
    // The same mail in two of Genera's mailboxes is one ticket.
    assert!(
        text.contains("GF-3 same message, recorded as one more arrival"),
        "{text}"
    );
    // A new mail about order 75321_2 from the same customer joins TP-1.
    assert!(text.contains("TP-1 follow-up of an earlier mail"), "{text}");
    // Genera's rules: a rescue goes to Alonso with high priority, shown
    // in the team's words ("Alta", state "To Do").
    let rescue = text.lines().find(|l| l.starts_with("GF-2 ")).unwrap();
    assert!(
        rescue.contains("alonso") && rescue.contains("Alta") && rescue.contains("To Do"),
        "{rescue}"
    );
}

fn demo_cmd(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"));
    cmd.env_remove("BUZON_CONFIG")
        .env_remove("BUZON_DATABASE_URL")
        .args(["demo", "--dir"])
        .arg(dir);
    cmd
}

/// `demo` uses the example teams' configurations: a `--config` given to it,
/// before or after the command, is refused rather than ignored.
#[test]
fn demo_refuses_a_config_it_would_ignore() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["demo", "--config", "/etc/buzon/buzon.toml", "--dir"][..],
        &["--config", "/etc/buzon/buzon.toml", "demo", "--dir"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
            .env_remove("BUZON_CONFIG")
            .args(args)
            .arg(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("takes no --config"), "{stderr}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    // The environment's BUZON_CONFIG (a server's) is no mistake.
    let out = demo_cmd(dir.path())
        .env("BUZON_CONFIG", "/etc/buzon/buzon.toml")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `buzon demo | head -1`: the reader is gone before the demo prints its
/// first line. Every print sees a closed pipe; the demo ends quietly with
/// status 0, where `println!` used to panic (exit 101).
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = demo_cmd(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // It still did all its work.
    assert!(dir.path().join("tuprocurador/buzon.db").exists());
}

/// `demo --dir D` on a directory that already holds something (an earlier
/// demo, or a real deployment's database) refuses and touches nothing;
/// `--force` replaces an earlier demo.
#[test]
fn demo_refuses_a_directory_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pvi/buzon.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"a real deployment's data").unwrap();
    let out = demo_cmd(dir.path()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not empty") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), b"a real deployment's data");

    let out = demo_cmd(dir.path()).arg("--force").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(std::fs::read(&db).unwrap(), b"a real deployment's data");
}

/// A failing command prints each cause once: the error messages carry their
/// cause and do not also hand it on as `source()` (which anyhow's `{e:#}`
/// printed again, three times for a database that cannot be opened).
#[test]
fn a_failing_command_prints_its_cause_once() {
    let d = Deployment::new(Backend::Sqlite);
    // A database "inside" a regular file: not creatable, even for root.
    let blocker = d.dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"").unwrap();
    let url = format!("sqlite:{}/buzon.db", blocker.display());
    let out = d
        .cmd()
        .env("BUZON_DATABASE_URL", &url)
        .args(["tickets", "list"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot open database"), "{stderr}");
    assert_eq!(
        stderr.matches("unable to open database file").count(),
        1,
        "{stderr}"
    );
}

/// A batch writes its new tickets together, after looking which of its
/// mails are stored already. Another writer (a second instance on
/// PostgreSQL) may store the same mail between that look and the write:
/// then the batch's ticket is given back, the mail is one more arrival of
/// the other's message, and nothing of the ticket given back stays (its
/// history line would break the commit: its ticket is gone).
#[test]
fn a_mail_stored_by_another_writer_while_a_batch_runs_is_one_more_arrival_postgres() {
    let url = common::fresh_postgres_database();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(another_writer_mid_batch(&url));
}

async fn another_writer_mid_batch(url: &str) {
    use buzon::store::{NewTicket, Store};
    use buzon::ticket::{EventKind, NewEvent};
    let store = Store::open(url, 4).await.unwrap();
    let config = common::library_config(
        std::path::Path::new("unused.db"),
        "soporte",
        "soporte@example.test",
    );
    let route = buzon::route::Decision::default().complete("soporte", &config.mailboxes["soporte"]);
    let raw: &[u8] = b"From: Ana <ana@cliente.example>\r\nTo: soporte@example.test\r\n\
        Subject: Pedido 75321\r\nMessage-ID: <race-1@cliente.example>\r\n\r\nHola\r\n";
    let mail = buzon::parse::parse(raw, 1 << 20).unwrap();
    let no_mail = |_: i64| Vec::new();
    let new = NewTicket {
        mailbox: "soporte",
        channel: Default::default(),
        raw,
        mail: &mail,
        automatic: None,
        route: &route,
        participants: Vec::new(),
        needs_review: false,
        linked_ticket: None,
        deadlines: Default::default(),
        now: 1,
        events: vec![NewEvent::system(EventKind::Routed, "por la prueba".into())],
        outgoing: &no_mail,
    };
    let mut batch = store.begin().await.unwrap();
    batch.batch_new_tickets(&[mail.dedupe_key()]).await.unwrap();
    let waiting = batch.create_ticket(&new).await.unwrap().unwrap();

    let mut other = store.begin().await.unwrap();
    let holder = other.create_ticket(&new).await.unwrap().unwrap();
    other.commit().await.unwrap();
    assert_ne!(waiting, holder);

    let committed = batch.commit_batch().await.unwrap();
    assert_eq!(committed.replaced.get(&waiting), Some(&holder));
    assert!(store.ticket_state(waiting).await.unwrap().is_none());
    let stored = store
        .find_message(&mail.dedupe_key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.ticket, holder);
    let detail = store.ticket(holder).await.unwrap();
    assert_eq!(detail.messages.len(), 1);
    let routed = detail
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Routed)
        .count();
    assert_eq!(
        routed, 1,
        "the history line of the ticket given back stays out"
    );
}
