//! `buzon run` against a real Dovecot: backlog drains, IDLE, server
//! restarts, SIGKILL at random moments, UIDVALIDITY resets, dispositions,
//! TLS with a private CA, and two instances sharing one PostgreSQL.
//! Every mail must end up stored exactly once.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::mailstack::{MailStack, customer_mail};
use common::{Backend, Deployment, http_get};

/// An account section for the test deployment; `folders` is TOML.
fn account(
    stack: &MailStack,
    d: &Deployment,
    name: &str,
    user: &str,
    tls: &str,
    folders: &str,
) -> String {
    let secret = d.dir.path().join(format!("{user}.pass"));
    std::fs::write(&secret, format!("{user}-pass\n")).unwrap();
    let (host, port) = match tls {
        "implicit" => ("localhost", stack.port("IMAPS_PORT")),
        "starttls" => ("localhost", stack.port("IMAP_PORT")),
        _ => ("127.0.0.1", stack.port("IMAP_PORT")),
    };
    format!(
        "[accounts.{name}]\nhost = \"{host}\"\nport = {port}\ntls = \"{tls}\"\n\
         username = \"{user}@example.test\"\npassword_file = \"{}\"\nca_file = \"{}\"\n\
         poll_seconds = 1\nbatch_size = 50\nfolders = {folders}\n\n",
        secret.display(),
        stack.ca()
    )
}

/// The account of `soporte` (and `finanzas`) watching its INBOX, in plain
/// text on loopback, into the buzon mailbox of the same name.
const SOPORTE_INBOX: (&str, &str, &str, &str) = (
    "soporte",
    "soporte",
    "none",
    "[{ folder = \"INBOX\", mailbox = \"soporte\" }]",
);
const FINANZAS_INBOX: (&str, &str, &str, &str) = (
    "finanzas",
    "finanzas",
    "none",
    "[{ folder = \"INBOX\", mailbox = \"finanzas\" }]",
);

fn deployment(
    backend: Backend,
    stack: &MailStack,
    accounts: &[(&str, &str, &str, &str)],
) -> Deployment {
    // Write the account sections after the deployment exists (they need its dir).
    let d = Deployment::new(backend);
    let mut extra = String::from("[daemon]\nlisten = \"\"\nlease_seconds = 3\n\n");
    // A killed instance's claimed outbox rows come back after this lease.
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replacen("[outbox]\n", "[outbox]\nlease = \"3s\"\n", 1),
    )
    .unwrap();
    for (name, user, tls, folders) in accounts {
        extra.push_str(&account(stack, &d, name, user, tls, folders));
    }
    let mut text = std::fs::read_to_string(&d.config).unwrap();
    text.push_str(&extra);
    std::fs::write(&d.config, text).unwrap();
    d
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn load(stack: &MailStack, user: &str, folder: &str, range: std::ops::Range<usize>, tag: &str) {
    rt().block_on(async {
        let mut imap = stack.session(user).await;
        imap.create(folder).await;
        for i in range {
            imap.append(folder, &customer_mail(i, tag)).await;
        }
        imap.logout().await;
    });
}

fn folder_list(stack: &MailStack, user: &str, folder: &str) -> Vec<(u32, Vec<String>)> {
    rt().block_on(async {
        let mut imap = stack.session(user).await;
        let l = imap.list(folder).await;
        imap.logout().await;
        l
    })
}

/// Counts of tickets and of inbound messages (each must be stored once).
fn counts(d: &Deployment) -> (usize, usize) {
    let tickets = d.tickets_json();
    let inbound: i64 = tickets
        .iter()
        .map(|t| t["message_count"].as_i64().unwrap())
        .sum::<i64>();
    // Each ticket here has one customer mail and one acknowledgement.
    (tickets.len(), usize::try_from(inbound).unwrap() / 2)
}

/// A running `buzon run`, killed on drop so a failing test leaks nothing.
struct Running(Child);

impl Running {
    fn id(&self) -> u32 {
        self.0.id()
    }
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
    fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.0.wait()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.kill();
        }
    }
}

/// Starts `buzon run`; its log goes to `run-N.log` in the deployment dir.
fn spawn_run(d: &Deployment, once: bool) -> Running {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let log = d
        .dir
        .path()
        .join(format!("run-{}.log", N.fetch_add(1, Ordering::SeqCst)));
    let log = std::fs::File::create(log).unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("buzon"));
    cmd.env_remove("BUZON_DATABASE_URL")
        .env_remove("BUZON_OUTBOX_DIR")
        .env("BUZON_LOG", "warn,buzon::source=debug,buzon::daemon=info")
        .env("RUST_BACKTRACE", "0")
        .arg("--config")
        .arg(&d.config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    if once {
        cmd.arg("--once");
    }
    Running(cmd.spawn().unwrap())
}

fn wait_for_tickets(d: &Deployment, n: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (tickets, _) = counts(d);
        if tickets >= n {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            for entry in std::fs::read_dir(d.dir.path()).unwrap().flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    for (i, line) in text
                        .lines()
                        .enumerate()
                        .filter(|(_, l)| l.contains("panicked"))
                    {
                        eprintln!("{} line {i}: {line}", p.display());
                        eprintln!("{}", text.lines().nth(i + 1).unwrap_or(""));
                    }
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!(
                        "--- {}\n{}",
                        p.display(),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
            panic!("only {tickets} of {n} tickets after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut child: Running) {
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

#[test]
fn backlog_in_two_folders_drains_once_and_only_once() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..300, "a");
    load(&stack, "finanzas", "INBOX", 300..500, "b");
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX, FINANZAS_INBOX]);
    let out = d.ok(&["run", "--once"]);
    assert!(out.contains("soporte/INBOX: 300 stored"), "{out}");
    assert!(out.contains("finanzas/INBOX: 200 stored"), "{out}");
    assert_eq!(counts(&d), (500, 500));
    assert_eq!(d.outbox_files().len(), 500, "one acknowledgement each");
    // Default disposition: \Seen after the commit.
    let listed = folder_list(&stack, "soporte", "INBOX");
    assert!(
        listed
            .iter()
            .all(|(_, f)| f.iter().any(|x| x.contains("Seen")))
    );
    let again = d.ok(&["run", "--once"]);
    assert!(again.contains("soporte/INBOX: 0 stored"), "{again}");
    assert_eq!(counts(&d), (500, 500));
}

/// Batches cut by `batch_bytes` inside a `batch_size` slice: every mail
/// stored and marked once, none skipped, whether a batch holds three mails
/// or only the one it always takes.
#[test]
fn batches_cut_by_their_bytes_store_every_mail_once() {
    let stack = MailStack::start();
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX]);
    let size = customer_mail(10, "c").len();
    let config = std::fs::read_to_string(&d.config).unwrap();
    for (round, budget) in [(0, 3 * size + 1), (1, 1)] {
        load(
            &stack,
            "soporte",
            "INBOX",
            23 * round..23 * (round + 1),
            "c",
        );
        let text = config.replacen(
            "batch_size = 50\n",
            &format!("batch_size = 50\nbatch_bytes = {budget}\n"),
            1,
        );
        assert_ne!(text, config);
        std::fs::write(&d.config, text).unwrap();
        let run = d
            .cmd()
            .env("BUZON_LOG", "buzon=info")
            .args(["run", "--once"])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&run.stdout);
        assert!(out.contains("soporte/INBOX: 23 stored"), "{out}");
        // Each batch's mails are logged inside its span, which names its
        // first UID: three mails a batch at most, then one.
        let logs = String::from_utf8_lossy(&run.stderr);
        let batches: std::collections::BTreeSet<&str> = logs
            .lines()
            .filter(|l| l.contains("Ticket created."))
            .filter_map(|l| l.split("first_uid=").nth(1)?.split(' ').next())
            .collect();
        match budget {
            1 => assert_eq!(batches.len(), 23, "{logs}"),
            _ => assert!((8..23).contains(&batches.len()), "{batches:?}"),
        }
        let total = 23 * (round + 1);
        assert_eq!(counts(&d), (total, total));
        let listed = folder_list(&stack, "soporte", "INBOX");
        assert_eq!(listed.len(), total);
        assert!(
            listed
                .iter()
                .all(|(_, f)| f.iter().any(|x| x.contains("Seen")))
        );
        let again = d.ok(&["run", "--once"]);
        assert!(again.contains("soporte/INBOX: 0 stored"), "{again}");
    }
}

#[test]
fn idle_turns_a_new_mail_into_a_ticket_quickly() {
    let stack = MailStack::start();
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX]);
    let child = spawn_run(&d, false);
    std::thread::sleep(Duration::from_millis(1500)); // connected and idling
    let start = Instant::now();
    load(&stack, "soporte", "INBOX", 0..1, "idle");
    let took = wait_for_tickets(&d, 1, Duration::from_secs(10));
    eprintln!(
        "IDLE: mail appended → ticket in {:?}",
        start.elapsed().min(took + Duration::from_millis(0))
    );
    stop(child);
    assert_eq!(counts(&d), (1, 1));
}

#[test]
fn dovecot_restart_mid_drain_loses_and_doubles_nothing() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..400, "r");
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX]);
    let child = spawn_run(&d, false);
    wait_for_tickets(&d, 20, Duration::from_secs(20));
    stack.stop_dovecot();
    std::thread::sleep(Duration::from_millis(1500));
    stack.start_dovecot();
    wait_for_tickets(&d, 400, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    stop(child);
    assert_eq!(counts(&d), (400, 400));
}

#[test]
fn sigkill_at_random_moments_then_restart_stores_every_mail_once() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..400, "k");
    let d = deployment(
        Backend::Sqlite,
        &stack,
        &[(
            "soporte",
            "soporte",
            "none",
            "[{ folder = \"INBOX\", mailbox = \"soporte\", disposition = \"leave\" }]",
        )],
    );
    // Pseudo-random kill delays, different each run but reproducible from the seed printed.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    eprintln!("kill seed {seed}");
    let mut x = seed | 1;
    for round in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = Duration::from_millis(100 + x % 600);
        let mut child = spawn_run(&d, true);
        std::thread::sleep(delay);
        child.kill(); // SIGKILL
        eprintln!(
            "round {round}: killed after {delay:?}, {} tickets",
            counts(&d).0
        );
    }
    let out = d.ok(&["run", "--once"]);
    assert!(out.contains("soporte/INBOX"), "{out}");
    assert_eq!(counts(&d), (400, 400));
}

/// A daemon killed mid-drain and started again (as systemd does) resumes
/// its folders at once: its default instance name is the same as before,
/// so it renews its own lease instead of waiting 30 s for it to expire.
#[test]
fn a_restarted_daemon_resumes_its_folders_at_once_not_after_the_lease() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..300, "l");
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX]);
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replace("lease_seconds = 3\n", "lease_seconds = 30\n"),
    )
    .unwrap();
    let mut first = spawn_run(&d, false);
    wait_for_tickets(&d, 20, Duration::from_secs(30));
    first.kill(); // SIGKILL: the lease stays in the database for 30 s
    let before = counts(&d).0;
    assert!(before < 300, "the drain was over before the kill");
    let start = Instant::now();
    let second = spawn_run(&d, false);
    let took = wait_for_tickets(&d, before + 1, Duration::from_secs(40));
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the restarted daemon waited {took:?} for its own lease"
    );
    wait_for_tickets(&d, 300, Duration::from_secs(60));
    stop(second);
    assert_eq!(counts(&d), (300, 300));
    let logs: String = (0..64)
        .filter_map(|n| std::fs::read_to_string(d.dir.path().join(format!("run-{n}.log"))).ok())
        .collect();
    assert!(!logs.contains("standing by"), "{logs}");
}

#[test]
fn uidvalidity_reset_resynchronises_without_duplicates() {
    let stack = MailStack::start();
    load(&stack, "soporte", "Pedidos", 0..30, "u");
    let d = deployment(
        Backend::Sqlite,
        &stack,
        &[(
            "soporte",
            "soporte",
            "none",
            "[{ folder = \"Pedidos\", mailbox = \"soporte\", disposition = \"leave\" }]",
        )],
    );
    d.ok(&["run", "--once"]);
    assert_eq!(counts(&d), (30, 30));
    // Recreate the folder with the same mail: new UIDVALIDITY, UIDs from 1.
    rt().block_on(async {
        let mut imap = stack.session("soporte").await;
        imap.session.select("INBOX").await.unwrap();
        imap.delete("Pedidos").await;
        imap.logout().await;
    });
    load(&stack, "soporte", "Pedidos", 0..35, "u");
    let out = d.ok(&["run", "--once"]);
    assert!(out.contains("5 stored, 30 already stored"), "{out}");
    assert_eq!(counts(&d), (35, 35));
}

#[test]
fn dispositions_seen_move_and_leave_and_quarantine_is_left_unread() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..5, "s");
    load(&stack, "soporte", "Mover", 5..10, "m");
    load(&stack, "soporte", "Dejar", 10..15, "l");
    rt().block_on(async {
        let mut imap = stack.session("soporte").await;
        imap.append("INBOX", b"\x00\x01 not a mail at all \xff")
            .await;
        imap.logout().await;
    });
    let d = deployment(
        Backend::Sqlite,
        &stack,
        &[(
            "soporte",
            "soporte",
            "none",
            "[{ folder = \"INBOX\", mailbox = \"soporte\", disposition = \"seen\" }, \
              { folder = \"Mover\", mailbox = \"soporte\", disposition = \"move\", move_to = \"Procesados\" }, \
              { folder = \"Dejar\", mailbox = \"soporte\", disposition = \"leave\" }]",
        )],
    );
    let out = d.ok(&["run", "--once"]);
    assert!(
        out.contains("soporte/INBOX: 5 stored, 0 already stored, 1 quarantined"),
        "{out}"
    );
    let inbox = folder_list(&stack, "soporte", "INBOX");
    let seen = inbox
        .iter()
        .filter(|(_, f)| f.iter().any(|x| x.contains("Seen")))
        .count();
    assert_eq!(
        (inbox.len(), seen),
        (6, 5),
        "quarantined mail stays unread: {inbox:?}"
    );
    assert!(folder_list(&stack, "soporte", "Mover").is_empty());
    assert_eq!(folder_list(&stack, "soporte", "Procesados").len(), 5);
    let left = folder_list(&stack, "soporte", "Dejar");
    assert_eq!(left.len(), 5);
    assert!(
        left.iter()
            .all(|(_, f)| !f.iter().any(|x| x.contains("Seen"))),
        "{left:?}"
    );
    assert_eq!(counts(&d).0, 15);
    let q = d.ok(&["quarantine", "list", "--format", "json"]);
    assert!(q.contains("not an email"), "{q}");
}

#[test]
fn tls_implicit_and_starttls_with_a_private_ca() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..3, "t");
    load(&stack, "finanzas", "INBOX", 3..6, "t");
    let d = deployment(
        Backend::Sqlite,
        &stack,
        &[
            (
                "soporte",
                "soporte",
                "implicit",
                "[{ folder = \"INBOX\", mailbox = \"soporte\" }]",
            ),
            (
                "finanzas",
                "finanzas",
                "starttls",
                "[{ folder = \"INBOX\", mailbox = \"finanzas\" }]",
            ),
        ],
    );
    let out = d.ok(&["run", "--once"]);
    assert!(out.contains("soporte/INBOX: 3 stored"), "{out}");
    assert!(out.contains("finanzas/INBOX: 3 stored"), "{out}");
    // Without the CA the certificate is refused: no silent "accept any".
    let text = std::fs::read_to_string(&d.config).unwrap();
    let no_ca: String = text
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&d.config, no_ca).unwrap();
    load(&stack, "soporte", "INBOX", 6..7, "t");
    let out = d.run(&["run", "--once"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TLS handshake") || err.contains("certificate"),
        "{err}"
    );
}

#[test]
fn two_instances_on_postgres_share_the_folders_exactly_once() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..250, "p");
    load(&stack, "finanzas", "INBOX", 250..400, "q");
    let d = deployment(Backend::Postgres, &stack, &[SOPORTE_INBOX, FINANZAS_INBOX]);
    let a = spawn_run(&d, false);
    let b = spawn_run(&d, false);
    wait_for_tickets(&d, 400, Duration::from_secs(60));
    // The first instance dies; the second takes its folders over.
    let mut a = a;
    a.kill();
    load(&stack, "soporte", "INBOX", 400..420, "p");
    wait_for_tickets(&d, 420, Duration::from_secs(30));
    // Let the outbox empty before stopping the survivor.
    let start = Instant::now();
    while d
        .ok(&["outbox", "list", "--status", "queued", "--format", "json"])
        .contains("\"id\"")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "outbox does not drain"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(b);
    assert_eq!(counts(&d), (420, 420));
    let sent = d.ok(&["outbox", "list", "--status", "sent", "--format", "json"]);
    let sent: serde_json::Value = serde_json::from_str(&sent).unwrap();
    let sent = sent["outbox"].as_array().unwrap();
    let tickets: std::collections::BTreeSet<i64> =
        sent.iter().map(|r| r["ticket"].as_i64().unwrap()).collect();
    assert_eq!(
        (sent.len(), tickets.len()),
        (420, 420),
        "one acknowledgement per ticket"
    );
}

/// The port the daemon logged for its health endpoint.
fn logged_health_port(d: &Deployment) -> u16 {
    for entry in std::fs::read_dir(d.dir.path()).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| l.contains("Health endpoint listening"))
        {
            if let Some(addr) = line.split("addr=").nth(1) {
                let addr = addr.split_whitespace().next().unwrap();
                return addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
    }
    panic!("the daemon did not log its health endpoint");
}

#[test]
fn health_and_metrics_report_folders_and_turn_503_when_one_fails() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..7, "h");
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX]);
    let mut text = std::fs::read_to_string(&d.config).unwrap();
    // Port 0: the daemon picks a free port and logs it (a port picked by
    // the test could be taken by another test's server meanwhile).
    text = text.replace(
        "[daemon]\nlisten = \"\"",
        "[daemon]\nlisten = \"127.0.0.1:0\"\nunhealthy_after_seconds = 1",
    );
    std::fs::write(&d.config, text).unwrap();
    let child = spawn_run(&d, false);
    wait_for_tickets(&d, 7, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    let port = logged_health_port(&d);
    let (code, body) = http_get(port, "/healthz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("soporte/INBOX"), "{body}");
    let (_, metrics) = http_get(port, "/metrics");
    assert!(
        metrics.contains("buzon_mails_ingested_total 7"),
        "{metrics}"
    );
    assert!(
        metrics.contains("buzon_folder_up{folder=\"soporte/INBOX\"} 1"),
        "{metrics}"
    );
    // The server goes away: the folder fails, and after the threshold 503.
    stack.stop_dovecot();
    let start = Instant::now();
    loop {
        let (code, body) = http_get(port, "/healthz");
        if code == 503 {
            assert!(body.contains("failing"), "{body}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still {code}: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stack.start_dovecot();
    stop(child);
}

#[test]
fn sigterm_mid_drain_exits_promptly_and_loses_nothing() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..300, "term");
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX]);
    let mut child = spawn_run(&d, false);
    wait_for_tickets(&d, 10, Duration::from_secs(20));
    let start = Instant::now();
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    let took = start.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let (stored, _) = counts(&d);
    eprintln!("SIGTERM: exited in {took:?} with {stored} of 300 stored");
    d.ok(&["run", "--once"]);
    assert_eq!(counts(&d), (300, 300));
}

#[test]
fn a_broken_rule_file_is_refused_and_the_daemon_keeps_the_old_rules() {
    let stack = MailStack::start();
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX]);
    let rules = d.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("10-pedidos.toml"),
        "[[rule]]\nname = \"pedidos\"\nwhen.subject.contains = \"pedido\"\npipeline = \"Pedidos\"\n",
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&d.config).unwrap();
    text.push_str(&format!("[rules]\ndir = \"{}\"\n", rules.display()));
    std::fs::write(&d.config, text).unwrap();
    let child = spawn_run(&d, false);
    load(&stack, "soporte", "INBOX", 0..1, "rl");
    wait_for_tickets(&d, 1, Duration::from_secs(20));
    // An admin saves a typo and a bad regex, then asks for a reload.
    std::fs::write(
        rules.join("10-pedidos.toml"),
        "[[rule]]\nname = \"pedidos\"\nwhen.subject.regex = \"pedido (\"\npipline = \"Otro\"\n",
    )
    .unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(2500));
    load(&stack, "soporte", "INBOX", 1..2, "rl");
    wait_for_tickets(&d, 2, Duration::from_secs(20));
    stop(child);
    let tickets = d.tickets_json();
    assert!(
        tickets.iter().all(|t| t["pipeline"] == "Pedidos"),
        "the old rules must stay active: {tickets:#?}"
    );
    let log = logs(&d);
    assert!(log.contains("New rules refused"), "{log}");
    assert!(log.contains("10-pedidos.toml:"), "{log}");
    assert!(
        log.contains("pipeline"),
        "the hint names the right field: {log}"
    );
}

/// Everything the deployment's daemons logged so far.
fn logs(d: &Deployment) -> String {
    std::fs::read_dir(d.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect()
}

/// Waits until the logs hold `text` `n` times.
fn wait_for_log(d: &Deployment, text: &str, n: usize) {
    let start = Instant::now();
    while logs(d).matches(text).count() < n {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no «{text}» in the log:\n{}",
            logs(d)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `.eml` files of the outbox, once there are `n`.
fn wait_for_mails(d: &Deployment, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let files = d.outbox_files();
        if files.len() >= n {
            return files
                .iter()
                .map(|f| std::fs::read_to_string(f).unwrap())
                .collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} of {n} mails",
            files.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_applies_new_templates_and_people_and_keeps_them_when_a_template_breaks() {
    let stack = MailStack::start();
    let d = deployment(Backend::Sqlite, &stack, &[SOPORTE_INBOX]);
    let templates = d.dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let ack = templates.join("acknowledgement.txt");
    let write_ack = |version: &str| {
        std::fs::write(
            &ack,
            format!("Subject: Recibido {{{{ tag }}}}\n\nVersion {version}.\nLa atiende {{{{ owner }}}}.\n"),
        )
        .unwrap()
    };
    write_ack("uno");
    let text = std::fs::read_to_string(&d.config).unwrap().replacen(
        "pipeline = \"Soporte\"\n",
        "pipeline = \"Soporte\"\nowner = \"camila\"\n",
        1,
    );
    let text = format!(
        "{text}\n[templates]\ndir = \"{}\"\n\n[people.camila]\nname = \"Camila Uno\"\nrole = \"agent\"\n",
        templates.display()
    );
    std::fs::write(&d.config, &text).unwrap();
    let child = spawn_run(&d, false);
    load(&stack, "soporte", "INBOX", 0..1, "hup");
    let mails = wait_for_mails(&d, 1);
    assert!(mails[0].contains("Version uno"), "{}", mails[0]);
    assert!(mails[0].contains("Camila Uno"), "{}", mails[0]);

    // The admin rewords the acknowledgement, renames the agent, reloads.
    write_ack("dos");
    std::fs::write(&d.config, text.replace("Camila Uno", "Camila Dos")).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    wait_for_log(&d, "Reloaded", 1);
    load(&stack, "soporte", "INBOX", 1..2, "hup");
    let mails = wait_for_mails(&d, 2);
    let new: Vec<&String> = mails.iter().filter(|m| m.contains("Version dos")).collect();
    assert_eq!(new.len(), 1, "{mails:#?}");
    assert!(new[0].contains("Camila Dos"), "{}", new[0]);

    // A broken template refuses the whole reload: the new name waits too.
    std::fs::write(&ack, "Subject: Recibido\n\nHola {{ owner }\n").unwrap();
    std::fs::write(&d.config, text.replace("Camila Uno", "Camila Tres")).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status();
    wait_for_log(&d, "Reload refused", 1);
    load(&stack, "soporte", "INBOX", 2..3, "hup");
    let mails = wait_for_mails(&d, 3);
    stop(child);
    let kept: Vec<&String> = mails.iter().filter(|m| m.contains("Version dos")).collect();
    assert_eq!(kept.len(), 2, "{mails:#?}");
    assert!(kept.iter().all(|m| m.contains("Camila Dos")), "{kept:#?}");
    let log = logs(&d);
    assert!(log.contains("acknowledgement.txt:3"), "{log}");
    assert!(!mails.iter().any(|m| m.contains("Camila Tres")));
}

/// A customer's answer to their own mail, sent before we acknowledged it.
fn follow_up_of(i: usize, tag: &str) -> Vec<u8> {
    format!(
        "From: Cliente {i} <cliente{i}@cliente.example>\r\n\
         To: soporte@example.test\r\n\
         Subject: RE: Consulta pedido N° {} ({tag})\r\n\
         Message-ID: <{tag}-{i}-again@cliente.example>\r\n\
         In-Reply-To: <{tag}-{i}@cliente.example>\r\n\
         References: <{tag}-{i}@cliente.example>\r\n\
         Date: Mon, 2 Nov 2026 10:05:00 -0300\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Olvidé decirles: es urgente.\r\n",
        70000 + i
    )
    .into_bytes()
}

/// The numbers of the tickets listed.
fn ticket_ids(d: &Deployment) -> Vec<i64> {
    d.tickets_json()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

/// The Message-IDs of a shown ticket's incoming messages, in order.
fn inbound_ids(shown: &serde_json::Value) -> Vec<&str> {
    shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .map(|m| m["message_id"].as_str().unwrap())
        .collect()
}

/// One IMAP batch holds a first mail and its follow-up: the follow-up sees
/// the ticket the batch's own (not yet committed) transaction opened, and
/// its sender among that ticket's participants (written only when asked
/// for). A second copy of the first mail in the same batch is one more
/// arrival of it, not a new mailbox.
fn follow_up_in_the_same_batch_joins_the_ticket_opened_before_it(backend: Backend) {
    let stack = MailStack::start();
    rt().block_on(async {
        let mut imap = stack.session("soporte").await;
        for i in 0..3 {
            imap.append("INBOX", &customer_mail(i, "f")).await;
        }
        imap.append("INBOX", &follow_up_of(1, "f")).await;
        imap.append("INBOX", &customer_mail(3, "f")).await;
        imap.append("INBOX", &customer_mail(0, "f")).await;
        imap.logout().await;
    });
    let d = deployment(backend, &stack, &[SOPORTE_INBOX]);
    let out = d.ok(&["run", "--once"]);
    assert!(
        out.contains("soporte/INBOX: 5 stored, 1 already stored, 0 quarantined"),
        "{out}"
    );
    let first = d.show_json("T-1");
    assert_eq!(
        first["messages"][0]["mailboxes"],
        serde_json::json!(["soporte"])
    );
    assert_eq!(ticket_ids(&d), [1, 2, 3, 4], "numbers stay dense");
    let second = d.show_json("T-2");
    assert_eq!(
        inbound_ids(&second),
        ["f-1@cliente.example", "f-1-again@cliente.example"],
        "{second:#}"
    );
    // One acknowledgement per ticket, none for the follow-up.
    assert_eq!(d.outbox_files().len(), 4);
}

#[test]
fn follow_up_in_the_same_batch_joins_the_ticket_opened_before_it_sqlite() {
    follow_up_in_the_same_batch_joins_the_ticket_opened_before_it(Backend::Sqlite);
}

#[test]
fn follow_up_in_the_same_batch_joins_the_ticket_opened_before_it_postgres() {
    follow_up_in_the_same_batch_joins_the_ticket_opened_before_it(Backend::Postgres);
}

/// One batch, the rules' keys and an owner group: the batch's new tickets
/// wait to be written together, so a later mail of the batch must still
/// find what they change. The third mail carries the first one's order
/// number (same customer, no References): it continues that ticket. The
/// group takes turns across the batch: the fourth ticket goes to whoever
/// the third (the second ticket) did not.
fn keys_and_turns_within_one_batch(backend: Backend) {
    let stack = MailStack::start();
    rt().block_on(async {
        let mut imap = stack.session("soporte").await;
        imap.append("INBOX", &customer_mail(0, "g")).await;
        imap.append("INBOX", &customer_mail(1, "g")).await;
        imap.append("INBOX", &customer_mail(0, "g-again")).await;
        imap.append("INBOX", &customer_mail(2, "g")).await;
        imap.logout().await;
    });
    let d = deployment(backend, &stack, &[SOPORTE_INBOX]);
    let rules = d.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("10-pedidos.toml"),
        "[groups.equipo]\nmembers = [\"ana\", \"beto\"]\nstrategy = \"round_robin\"\n\n\
         [[rule]]\nname = \"pedidos\"\n\
         when.subject_or_body.regex = 'pedido N° (?P<order>\\d+)'\n\
         pipeline = \"Pedidos\"\nowner_group = \"equipo\"\n",
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&d.config).unwrap();
    text.push_str(&format!(
        "[rules]\ndir = \"{}\"\n\n[people.ana]\nname = \"Ana\"\nrole = \"agent\"\n\n\
         [people.beto]\nname = \"Beto\"\nrole = \"agent\"\n",
        rules.display()
    ));
    std::fs::write(&d.config, text).unwrap();
    let out = d.ok(&["run", "--once"]);
    assert!(
        out.contains("soporte/INBOX: 4 stored, 0 already stored, 0 quarantined"),
        "{out}"
    );
    assert_eq!(ticket_ids(&d), [1, 2, 3]);
    let owner = |n: &str| {
        d.show_json(n)["ticket"]["owner"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(owner("T-1"), owner("T-2"));
    assert_eq!(owner("T-3"), owner("T-1"), "the group took turns");
    let first = d.show_json("T-1");
    assert_eq!(
        inbound_ids(&first),
        ["g-0@cliente.example", "g-again-0@cliente.example"],
        "{first:#}"
    );
    let keys = &first["ticket"]["keys"];
    assert_eq!(
        keys,
        &serde_json::json!([{ "name": "order", "value": "70000" }]),
        "{first:#}"
    );
}

#[test]
fn keys_and_turns_within_one_batch_sqlite() {
    keys_and_turns_within_one_batch(Backend::Sqlite);
}

#[test]
fn keys_and_turns_within_one_batch_postgres() {
    keys_and_turns_within_one_batch(Backend::Postgres);
}

/// PostgreSQL cannot hold a NUL character in text, which a mail's body may
/// carry once decoded (quoted-printable `=00`): the batch's transaction fails, the batch is stored again mail by
/// mail, that one mail is quarantined (and left unread) and every other
/// mail of its batch becomes a ticket.
#[test]
fn a_mail_the_database_refuses_is_quarantined_and_the_rest_of_its_batch_stored() {
    let stack = MailStack::start();
    let nul = b"From: Cliente 9 <cliente9@cliente.example>\r\n\
        To: soporte@example.test\r\n\
        Subject: Adjunto mal copiado\r\n\
        Message-ID: <nul-9@cliente.example>\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\n\
        Hola =00 les pego el texto.\r\n";
    rt().block_on(async {
        let mut imap = stack.session("soporte").await;
        for i in 0..3 {
            imap.append("INBOX", &customer_mail(i, "n")).await;
        }
        imap.append("INBOX", nul).await;
        for i in 3..6 {
            imap.append("INBOX", &customer_mail(i, "n")).await;
        }
        imap.logout().await;
    });
    let d = deployment(
        Backend::Postgres,
        &stack,
        &[(
            "soporte",
            "soporte",
            "none",
            "[{ folder = \"INBOX\", mailbox = \"soporte\", disposition = \"seen\" }]",
        )],
    );
    let out = d.ok(&["run", "--once"]);
    assert!(
        out.contains("soporte/INBOX: 6 stored, 0 already stored, 1 quarantined"),
        "{out}"
    );
    assert_eq!(counts(&d), (6, 6));
    let q = d.ok(&["quarantine", "list", "--format", "json"]);
    assert!(q.contains("cannot be stored"), "{q}");
    let unread: Vec<u32> = folder_list(&stack, "soporte", "INBOX")
        .into_iter()
        .filter(|(_, flags)| !flags.iter().any(|f| f.contains("Seen")))
        .map(|(uid, _)| uid)
        .collect();
    assert_eq!(unread, [4], "only the refused mail stays unread");
    // The checkpoint is past it: a second run stores nothing again.
    let again = d.ok(&["run", "--once"]);
    assert!(
        again.contains("soporte/INBOX: 0 stored, 0 already stored, 0 quarantined"),
        "{again}"
    );
}

/// Mints an HS256 JWT the way an identity provider would (claims `sub`,
/// `email`, `iat`, `exp` = now + LIFETIME seconds, negative = already
/// expired), prints it, and keeps a copy in OUT so the test can check that
/// no log or error ever holds it.
const MINT_TOKEN: &str = r#"import base64, hashlib, hmac, json, sys, time
key_file, email, lifetime, out = sys.argv[1:5]
key = base64.b64decode(open(key_file).read())
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"sub": email, "email": email, "iat": now - 5, "exp": now + int(lifetime)}).encode())
sig = b64(hmac.new(key, (head + "." + body).encode(), hashlib.sha256).digest())
token = head + "." + body + "." + sig
open(out, "w").write(token)
print(token)
"#;

/// XOAUTH2 against a Dovecot that checks the JWT itself (oauth2 passdb,
/// `introspection_mode = local`): a token from `token_command` logs in and
/// the mail becomes a ticket; an expired token is refused with a clear error,
/// the mail stays unread in the folder and nothing is stored, without
/// retrying a login that will be refused again; the token shows up in no
/// output, not even at `BUZON_LOG=trace` (where the IMAP library would log
/// every line it sends).
#[test]
fn xoauth2_login_with_a_token_from_a_command() {
    let stack = MailStack::start_with_oauth2();
    load(&stack, "finanzas", "INBOX", 0..2, "oa"); // passwords still work
    let d = deployment(Backend::Sqlite, &stack, &[]);
    let script = d.dir.path().join("mint-token.py");
    std::fs::write(&script, MINT_TOKEN).unwrap();
    let minted = d.dir.path().join("last-token");
    let account = |lifetime: i64| {
        format!(
            "[accounts.finanzas]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             username = \"finanzas@example.test\"\nauth = \"xoauth2\"\n\
             token_command = \"python3 '{}' '{}' finanzas@example.test {lifetime} '{}'\"\n\
             poll_seconds = 1\nfolders = [{{ folder = \"INBOX\", mailbox = \"finanzas\" }}]\n",
            stack.port("IMAP_PORT"),
            script.display(),
            stack.oauth2_key_file().display(),
            minted.display()
        )
    };
    let base = std::fs::read_to_string(&d.config).unwrap();
    let run_with = |lifetime: i64| {
        std::fs::write(&d.config, format!("{base}{}", account(lifetime))).unwrap();
        let out = d
            .cmd()
            .env("BUZON_LOG", "trace")
            .args(["run", "--once"])
            .output()
            .unwrap();
        let token = std::fs::read_to_string(&minted).unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Neither the token nor any part of its signature leaks, nor the
        // base64 SASL response that carries it ("user=finanzas@...\x01auth").
        let sig = token.rsplit('.').next().unwrap();
        assert!(
            !text.contains(&token) && !text.contains(sig),
            "the token leaked:\n{text}"
        );
        assert!(
            !text.contains("dXNlcj1maW5hbnphc0BleGFtcGxlLnRlc3QBYXV0"),
            "the SASL response leaked:\n{text}"
        );
        (out.status, text)
    };

    let (status, out) = run_with(300);
    assert!(status.success(), "{out}");
    assert!(out.contains("finanzas/INBOX: 2 stored"), "{out}");
    assert_eq!(counts(&d), (2, 2));
    assert!(
        stack
            .dovecot_log()
            .contains("Login: user=<finanzas@example.test>, method=XOAUTH2"),
        "{}",
        stack.dovecot_log()
    );

    // The provider hands out an expired token: refused, nothing stored.
    load(&stack, "finanzas", "INBOX", 2..3, "oa");
    let (status, out) = run_with(-60);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("login as finanzas@example.test failed")
            && out.contains("the server answered: [AUTHENTICATIONFAILED]"),
        "the error names the account and says what the server said: {out}"
    );
    assert_eq!(
        stack.dovecot_log().matches("Token has expired").count(),
        1,
        "a refused login is not retried by --once"
    );
    assert!(
        stack
            .dovecot_log()
            .contains("Local validation failed: Token has expired"),
        "Dovecot refused it for being expired: {}",
        stack.dovecot_log()
    );
    assert_eq!(counts(&d), (2, 2), "nothing stored");
    let listed = folder_list(&stack, "finanzas", "INBOX");
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        !listed[2].1.iter().any(|f| f.contains("Seen")),
        "the new mail stays unread: {listed:?}"
    );

    // A fresh token again: the waiting mail is picked up, at once (the
    // runs before gave the folder's lease back).
    let (status, out) = run_with(300);
    assert!(status.success(), "{out}");
    assert!(!out.contains("standing by"), "{out}");
    assert!(out.contains("finanzas/INBOX: 1 stored"), "{out}");
    assert_eq!(counts(&d), (3, 3));
}

/// Durable before the mailbox is touched: the drain runs under `strace -f`,
/// and every command that marks (`\Seen`) or moves stored mails comes after
/// a sync (`fsync`/`fdatasync`) of the database's WAL that follows the
/// last write to it, so a power cut can never leave the server saying a
/// mail was handled while the database lost it.
#[test]
fn the_commit_is_synced_to_disk_before_the_mailbox_is_touched() {
    let stack = MailStack::start();
    load(&stack, "soporte", "INBOX", 0..5, "fs");
    load(&stack, "soporte", "Mover", 5..10, "fm");
    let d = deployment(
        Backend::Sqlite,
        &stack,
        &[(
            "soporte",
            "soporte",
            "none",
            "[{ folder = \"INBOX\", mailbox = \"soporte\", disposition = \"seen\" }, \
              { folder = \"Mover\", mailbox = \"soporte\", disposition = \"move\", move_to = \"Procesados\" }]",
        )],
    );
    let trace = d.dir.path().join("strace.txt");
    let out = std::process::Command::new("strace")
        .args(["-f", "-y", "-s", "128", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=write,writev,pwrite64,sendto,sendmsg,fsync,fdatasync",
        ])
        .arg(assert_cmd::cargo::cargo_bin("buzon"))
        .env_remove("BUZON_DATABASE_URL")
        .env_remove("BUZON_OUTBOX_DIR")
        .arg("--config")
        .arg(&d.config)
        .args(["run", "--once"])
        .output()
        .unwrap_or_else(|e| panic!("strace is needed (Debian package `strace`): {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(counts(&d).0, 10);
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let wal = |l: &str| l.contains("buzon.db-wal>");
    let sync = |l: &str| (l.contains("fsync(") || l.contains("fdatasync(")) && wal(l);
    let write = |l: &str| l.contains("pwrite64(") && wal(l);
    let touches = |l: &str| l.contains("UID STORE") || l.contains("UID MOVE");
    let mut checked = 0;
    for (i, line) in lines.iter().enumerate().filter(|(_, l)| touches(l)) {
        let last_write = lines[..i]
            .iter()
            .rposition(|l| write(l))
            .unwrap_or_else(|| panic!("no write to the database before: {line}"));
        assert!(
            lines[last_write..i].iter().any(|l| sync(l)),
            "the mailbox is touched before the commit is synced:\n{}\n...\n{line}",
            lines[last_write]
        );
        checked += 1;
    }
    assert!(checked >= 2, "no \\Seen or MOVE in the trace:\n{text}");
}
