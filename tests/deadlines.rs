//! Deadlines with the clock controlled (no sleeping): due dates in business
//! hours across a weekend and a holiday, one alert and one escalation per
//! breach (also across a restart and between two instances), the clock
//! paused while waiting on the contact, alerts cleared by an answer and by
//! done. Then the daemon itself: `buzon run` finds a missed deadline without
//! any new mail, and a restarted daemon does not alert twice.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use buzon::actions::Agent;
use buzon::config::{Config, Sources};
use buzon::deadline::Watch;
use buzon::pipeline::{Outcome, Pipeline};
use buzon::store::{Store, TicketFilter};
use buzon::ticket::{Outcome as Finish, State};
use common::{Backend, Deployment};

/// Monday to Friday 09:00–18:00 in Santiago, Tuesday 8 December 2026
/// (Inmaculada Concepción) a holiday; every ticket of `soporte` is Camila's,
/// to be answered within 4 business hours and done within 20.
const RULES: &str = r#"
[business_hours]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "09:00"
end = "18:00"
holidays = ["2026-12-08"]

[defaults.soporte]
owner = "camila"
first_response_business_hours = 4
sla_business_hours = 20
"#;

fn deployment(backend: Backend, deadlines: &str) -> Deployment {
    deployment_listening(backend, deadlines, "")
}

/// A deployment whose daemon serves /metrics on `listen` ("" for none).
fn deployment_listening(backend: Backend, deadlines: &str, listen: &str) -> Deployment {
    let extra = format!(
        "[rules]\ndir = \"rules\"\n\n\
         [people.camila]\naddress = \"camila@tupatrimonio.example\"\nname = \"Camila Rojas\"\n\n\
         [people.alonso]\nname = \"Alonso\"\n\n\
         [deadlines]\nescalation = [\"jefatura@tupatrimonio.example\"]\n{deadlines}\n\n\
         [daemon]\nlisten = \"{listen}\"\n"
    );
    let d = Deployment::with_extra(backend, &extra);
    let rules = d.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("10-plazos.toml"), RULES).unwrap();
    d
}

fn load(d: &Deployment) -> Config {
    Config::load(Sources {
        file: Some(d.config.clone()),
        env: Vec::new(),
    })
    .unwrap()
}

/// Unix ms of a local time in Santiago ("2026-12-04 16:00").
fn santiago(local: &str) -> i64 {
    let civil: jiff::civil::DateTime = local.replace(' ', "T").parse().unwrap();
    civil
        .to_zoned(jiff::tz::TimeZone::get("America/Santiago").unwrap())
        .unwrap()
        .timestamp()
        .as_millisecond()
}

fn mail(id: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: Ana Pérez <ana@cliente.example>\r\nTo: soporte@tupatrimonio.example\r\n\
         Subject: {subject}\r\nMessage-ID: <{id}@cliente.example>\r\n\
         Date: Fri, 4 Dec 2026 16:00:00 -0300\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Hola, necesito una copia de la escritura.\r\n"
    )
    .into_bytes()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(config: &Config) -> Store {
    Store::open(&config.database.url, 4).await.unwrap()
}

async fn create(pipeline: &Pipeline<'_>, raw: &[u8], at: i64) -> i64 {
    match pipeline.ingest_at(raw, "soporte", at).await.unwrap() {
        Outcome::Created { ticket, .. } => ticket,
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

/// Ana asks for a copy of the deeds at `local` Santiago time.
async fn copy_request(pipeline: &Pipeline<'_>, id: &str, local: &str) -> i64 {
    create(pipeline, &mail(id, "Copia de escritura"), santiago(local)).await
}

/// How many breaches a check at `local` Santiago time records.
async fn recorded(watch: &Watch<'_>, local: &str) -> usize {
    watch.check(santiago(local)).await.unwrap().recorded
}

fn agent<'a>(config: &'a Config, store: &'a Store, pipeline: &Pipeline<'_>, at: i64) -> Agent<'a> {
    Agent::from_pipeline(config, store, pipeline, "camila")
        .unwrap()
        .at(at)
}

/// The kinds of the outbox rows of a ticket, sorted.
async fn outbox_kinds(store: &Store, ticket: i64) -> Vec<String> {
    let mut kinds: Vec<String> = store
        .outbox_list(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.ticket == Some(ticket))
        .map(|r| r.kind)
        .collect();
    kinds.sort();
    kinds
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

fn due_dates_skip_the_weekend_and_the_holiday(backend: Backend) {
    let d = deployment(backend, "");
    let config = load(&d);
    runtime().block_on(async {
        let store = open(&config).await;
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        // Friday 4 December, 16:00: two working hours left that day.
        let ticket = copy_request(&pipeline, "due", "2026-12-04 16:00").await;
        let t = store.ticket(ticket).await.unwrap().ticket;
        // First response, 4 h: 2 on Friday, 2 on Monday → Monday 11:00.
        assert_eq!(t.first_response_due_at, Some(santiago("2026-12-07 11:00")));
        // Resolution, 20 h: 2 Friday + 9 Monday, Tuesday is a holiday, 9
        // Wednesday → Wednesday 18:00 (calendar hours would say Saturday).
        assert_eq!(t.due_at, Some(santiago("2026-12-09 18:00")));
        // The acknowledgement promises the first answer in the team's words.
        let ack = store
            .outbox_list(None)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.kind == "acknowledgement")
            .expect("an acknowledgement is queued");
        let ack = buzon::parse::parse(&ack.raw, 1 << 20).unwrap();
        assert!(
            ack.text.contains("lunes 7 de diciembre de 2026, 11:00"),
            "{}",
            ack.text
        );
    });
}

fn one_alert_and_one_escalation_per_breach_across_restarts(backend: Backend) {
    let d = deployment(backend, "");
    let config = load(&d);
    let rt = runtime();
    let ticket = rt.block_on(async {
        let store = open(&config).await;
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        let ticket = copy_request(&pipeline, "breach", "2026-12-04 16:00").await;
        let watch = Watch::new(&config, &store).await.unwrap();
        // One minute before the first-response deadline: nothing.
        assert_eq!(recorded(&watch, "2026-12-07 10:59").await, 0);
        assert_eq!(recorded(&watch, "2026-12-07 11:01").await, 1);
        // Checked again an hour later: the same breach is not news.
        assert_eq!(recorded(&watch, "2026-12-07 12:00").await, 0);
        let kinds = outbox_kinds(&store, ticket).await;
        assert_eq!(count(&kinds, "alert"), 1, "{kinds:?}");
        assert_eq!(count(&kinds, "escalation"), 1, "{kinds:?}");
        store.close().await;
        ticket
    });
    // A restart: a new process opens the store and checks again.
    let alert_text = rt.block_on(async {
        let store = open(&config).await;
        let watch = Watch::new(&config, &store).await.unwrap();
        assert_eq!(recorded(&watch, "2026-12-07 13:00").await, 0);
        // Wednesday 18:01: the resolution deadline is a second breach.
        assert_eq!(recorded(&watch, "2026-12-09 18:01").await, 1);
        assert_eq!(recorded(&watch, "2026-12-10 09:00").await, 0);
        let kinds = outbox_kinds(&store, ticket).await;
        assert_eq!(count(&kinds, "alert"), 2, "{kinds:?}");
        assert_eq!(count(&kinds, "escalation"), 2, "{kinds:?}");
        // Who got what, and what the owner reads.
        let rows = store.outbox_list(None).await.unwrap();
        let alert = rows.iter().find(|r| r.kind == "alert").unwrap();
        assert_eq!(
            alert.rcpt_to,
            vec!["camila@tupatrimonio.example".to_string()]
        );
        let escalation = rows.iter().find(|r| r.kind == "escalation").unwrap();
        assert_eq!(
            escalation.rcpt_to,
            vec!["jefatura@tupatrimonio.example".to_string()]
        );
        let text = buzon::parse::parse(&alert.raw, 1 << 20).unwrap();
        assert!(
            text.subject.contains("Atrasado (primera respuesta)"),
            "{}",
            text.subject
        );
        assert!(
            text.text.contains("lunes 7 de diciembre de 2026, 11:00"),
            "{}",
            text.text
        );
        let history = store.ticket(ticket).await.unwrap().events;
        assert_eq!(
            history
                .iter()
                .filter(|e| e.kind == buzon::ticket::EventKind::Overdue)
                .count(),
            2
        );
        text.text
    });
    // The admin sees both, most overdue first; another owner sees none.
    let all: serde_json::Value =
        serde_json::from_str(&d.ok(&["alerts", "--format", "json"])).unwrap();
    let targets: Vec<&str> = all["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, vec!["first_response", "resolution"]);
    let camila = d.ok(&["alerts", "--owner", "camila"]);
    assert!(
        camila.contains("primera respuesta") && camila.contains("resolución"),
        "{camila}"
    );
    assert_eq!(d.ok(&["alerts", "--owner", "alonso"]), "Sin alertas.\n");
    // The command the alert's footer suggests works, and shows her alerts.
    let suggested = alert_text
        .split('`')
        .find(|s| s.starts_with("buzon alerts"))
        .unwrap_or_else(|| panic!("no command in the alert: {alert_text}"));
    let args: Vec<&str> = suggested.split_whitespace().skip(1).collect();
    assert_eq!(args, ["alerts", "--owner", "camila"], "{suggested}");
    let shown = d.ok(&args);
    assert!(
        shown.contains("T-1") && shown.contains("primera respuesta"),
        "{shown}"
    );
    // An answer clears the first-response alert; done clears the other.
    rt.block_on(async {
        let store = open(&config).await;
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        let camila = agent(&config, &store, &pipeline, santiago("2026-12-10 10:00"));
        camila
            .reply(ticket, "Le enviamos la copia hoy.")
            .await
            .unwrap();
        let open_alerts = store.alerts(None, false).await.unwrap();
        assert_eq!(open_alerts.len(), 1);
        assert_eq!(open_alerts[0].target, buzon::ticket::Target::Resolution);
        camila.close(ticket, Finish::Success, None).await.unwrap();
        assert!(store.alerts(None, false).await.unwrap().is_empty());
        let cleared = store.alerts(None, true).await.unwrap();
        let by: Vec<&str> = cleared
            .iter()
            .map(|a| a.cleared_by.as_deref().unwrap())
            .collect();
        assert_eq!(by, vec!["first response", "done"]);
        // Done: no more breaches, whatever the time.
        let watch = Watch::new(&config, &store).await.unwrap();
        assert_eq!(recorded(&watch, "2026-12-31 12:00").await, 0);
    });
}

fn two_instances_alert_once(backend: Backend) {
    let d = deployment(backend, "");
    let config = Arc::new(load(&d));
    let rt = runtime();
    let tickets: Vec<i64> = rt.block_on(async {
        let store = open(&config).await;
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        let mut tickets = Vec::new();
        for i in 0..20 {
            let raw = mail(&format!("two-{i}"), &format!("Consulta {i}"));
            tickets.push(create(&pipeline, &raw, santiago("2026-12-04 16:00")).await);
        }
        tickets
    });
    // Two instances, each with its own connections, check at the same time.
    let at = santiago("2026-12-07 12:00");
    let instance = |config: Arc<Config>| {
        tokio::spawn(async move {
            let store = open(&config).await;
            let watch = Watch::new(&config, &store).await.unwrap();
            watch.check(at).await.unwrap()
        })
    };
    let reports = rt.block_on(async {
        let (one, two) = (instance(config.clone()), instance(config.clone()));
        (one.await.unwrap(), two.await.unwrap())
    });
    assert_eq!(
        reports.0.recorded + reports.1.recorded,
        tickets.len(),
        "{reports:?}"
    );
    rt.block_on(async {
        let store = open(&config).await;
        assert_eq!(
            store.alerts(None, false).await.unwrap().len(),
            tickets.len()
        );
        for t in &tickets {
            let kinds = outbox_kinds(&store, *t).await;
            assert_eq!(count(&kinds, "alert"), 1, "ticket {t}: {kinds:?}");
            assert_eq!(count(&kinds, "escalation"), 1, "ticket {t}: {kinds:?}");
        }
    });
}

fn waiting_on_the_contact_pauses_the_clock(backend: Backend) {
    let d = deployment(backend, "");
    let config = load(&d);
    runtime().block_on(async {
        let store = open(&config).await;
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        // Monday 14 December 10:00: resolution due 20 business hours later,
        // Tuesday 12:00... counted: 8 h Monday, 9 h Tuesday, 3 h Wednesday.
        let ticket = copy_request(&pipeline, "pause", "2026-12-14 10:00").await;
        assert_eq!(
            store.ticket(ticket).await.unwrap().ticket.due_at,
            Some(santiago("2026-12-16 12:00"))
        );
        // 11:00 Camila asks the client something: first response met, and
        // the clock stops with 7 + 9 + 3 = 19 working hours left.
        let camila = agent(&config, &store, &pipeline, santiago("2026-12-14 11:00"));
        camila.reply(ticket, "¿Nos confirma el número de la propiedad?").await.unwrap();
        let t = store.ticket(ticket).await.unwrap().ticket;
        assert_eq!(t.paused_at, Some(santiago("2026-12-14 11:00")));
        assert_eq!(t.first_response_at, Some(santiago("2026-12-14 11:00")));
        // What the team reads, in Spanish.
        let shown = d.ok(&["tickets", "show", &ticket.to_string()]);
        assert!(
            shown.contains("plazos detenidos desde el 2026-12-14 11:00 (esperando al contacto)")
                && shown.contains("(respondida el 2026-12-14 11:00)")
                && shown.contains("  estado: ")
                && !shown.contains("waiting on the contact"),
            "{shown}"
        );
        // The client takes until Thursday to answer: no breach meanwhile,
        // and the ticket is not listed as overdue.
        let watch = Watch::new(&config, &store).await.unwrap();
        assert_eq!(recorded(&watch, "2026-12-17 09:00").await, 0);
        let overdue = TicketFilter {
            overdue_at: Some(santiago("2026-12-17 09:00")),
            ..TicketFilter::default()
        };
        assert!(store.list_tickets(&overdue).await.unwrap().is_empty());
        // Thursday 17 December 10:00 the client answers (threaded by the
        // tag): the clock runs again with the 19 hours that were left.
        let answer = format!(
            "From: Ana Pérez <ana@cliente.example>\r\nTo: soporte@tupatrimonio.example\r\n\
             Subject: RE: [#T-{ticket}] Copia de escritura\r\nMessage-ID: <pause-answer@cliente.example>\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nEs la propiedad 1204.\r\n"
        );
        let outcome = pipeline
            .ingest_at(answer.as_bytes(), "soporte", santiago("2026-12-17 10:00"))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Appended { ticket: t, .. } if t == ticket), "{outcome:?}");
        let t = store.ticket(ticket).await.unwrap().ticket;
        assert_eq!(t.state, State::WaitingOnUs);
        assert_eq!(t.paused_at, None);
        // 19 h from Thursday 10:00: 8 Thursday, 9 Friday, 2 Monday → 11:00.
        assert_eq!(t.due_at, Some(santiago("2026-12-21 11:00")));
        assert_eq!(recorded(&watch, "2026-12-21 10:59").await, 0);
        assert_eq!(recorded(&watch, "2026-12-21 11:01").await, 1);
        let overdue = TicketFilter {
            overdue_at: Some(santiago("2026-12-21 11:01")),
            ..TicketFilter::default()
        };
        let listed: Vec<i64> = store
            .list_tickets(&overdue)
            .await
            .unwrap()
            .iter()
            .map(|t| t.number)
            .collect();
        assert_eq!(listed, vec![ticket]);
    });
    // With pausing switched off the same story breaches on Wednesday.
    let d = deployment(backend, "pause_while_waiting = false");
    let config = load(&d);
    runtime().block_on(async {
        let store = open(&config).await;
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        let ticket = copy_request(&pipeline, "nopause", "2026-12-14 10:00").await;
        let camila = agent(&config, &store, &pipeline, santiago("2026-12-14 11:00"));
        camila
            .reply(ticket, "¿Nos confirma el número de la propiedad?")
            .await
            .unwrap();
        assert_eq!(store.ticket(ticket).await.unwrap().ticket.paused_at, None);
        let watch = Watch::new(&config, &store).await.unwrap();
        assert_eq!(recorded(&watch, "2026-12-16 12:01").await, 1);
    });
}

/// Seed 001's "Fecha Límite" set by hand: the alert of the old date clears,
/// the new date is a new promise with its own alert if missed.
fn a_deadline_moved_by_hand_is_a_new_promise(backend: Backend) {
    let d = deployment(backend, "");
    let config = load(&d);
    let rt = runtime();
    rt.block_on(async {
        let store = open(&config).await;
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        copy_request(&pipeline, "moved", "2026-12-04 16:00").await;
        let watch = Watch::new(&config, &store).await.unwrap();
        assert_eq!(recorded(&watch, "2026-12-07 11:01").await, 1);
    });
    let out = d.ok(&[
        "tickets",
        "due",
        "T-1",
        "--first-response",
        "2026-12-09 12:00",
    ]);
    assert!(
        out.contains("la primera respuesta vence 2026-12-09 12:00"),
        "{out}"
    );
    let bad = d.run(&["tickets", "due", "T-1", "el martes"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("2026-12-10 18:00"));
    rt.block_on(async {
        let store = open(&config).await;
        let t = store.ticket(1).await.unwrap().ticket;
        assert_eq!(t.first_response_due_at, Some(santiago("2026-12-09 12:00")));
        let alerts = store.alerts(None, true).await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].cleared_by.as_deref(), Some("due date moved"));
        let shown = store.ticket(1).await.unwrap();
        assert_eq!(shown.alerts.len(), 1, "the ticket lists its alerts");
        let watch = Watch::new(&config, &store).await.unwrap();
        assert_eq!(recorded(&watch, "2026-12-09 11:59").await, 0);
        assert_eq!(recorded(&watch, "2026-12-09 12:01").await, 1);
    });
}

fn alerts_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    std::fs::read(e.path())
                        .map(|raw| {
                            String::from_utf8_lossy(&raw).contains("Subject: [#T-1] Atrasado")
                        })
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

/// `buzon run` checks deadlines on its own (every second here): a ticket
/// whose deadlines passed while nobody wrote gets one alert per missed
/// deadline mailed; a restarted daemon does not mail them again.
fn the_daemon_alerts_without_new_mail(backend: Backend) {
    let port = common::free_port();
    let d = deployment_listening(backend, "check_seconds = 1", &format!("127.0.0.1:{port}"));
    let config = load(&d);
    // Opened eight days ago: both the first response (4 business hours) and
    // the resolution (20) are late, whatever today is.
    let opened = jiff::Timestamp::now().as_millisecond() - 8 * 24 * 3_600_000;
    runtime().block_on(async {
        let store = open(&config).await;
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        create(&pipeline, &mail("daemon", "Copia de escritura"), opened).await;
    });
    for round in 0..2 {
        let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
            .env_remove("BUZON_DATABASE_URL")
            .env_remove("BUZON_OUTBOX_DIR")
            .arg("--config")
            .arg(&d.config)
            .arg("run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while alerts_in(&d.outbox) < 2 && start.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(100));
        }
        // Give a doubled alert time to appear (three more checks).
        std::thread::sleep(Duration::from_secs(3));
        let (_, metrics) = common::http_get(port, "/metrics");
        assert!(metrics.contains("buzon_alerts_open 2"), "{metrics}");
        let missed = if round == 0 { 2 } else { 0 };
        assert!(
            metrics.contains(&format!("buzon_deadlines_missed_total {missed}")),
            "round {round}: {metrics}"
        );
        let _ = daemon.kill();
        let _ = daemon.wait();
        assert_eq!(
            alerts_in(&d.outbox),
            2,
            "round {round}: one alert per missed deadline"
        );
    }
    // What an agent sees: the ticket among the overdue ones, its deadlines.
    let overdue: serde_json::Value =
        serde_json::from_str(&d.ok(&["tickets", "list", "--overdue", "--format", "json"])).unwrap();
    let numbers: Vec<&str> = overdue["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, vec!["T-1"]);
    let shown = d.ok(&["tickets", "show", "T-1"]);
    assert!(
        shown.contains("alerta: plazo de primera respuesta vencido el")
            && shown.contains(": ABIERTA"),
        "{shown}"
    );
    assert!(
        shown.contains("plazo de primera respuesta:") && shown.contains("aún sin responder"),
        "{shown}"
    );
    let alerts = d.ok(&["alerts"]);
    assert!(
        alerts.contains("T-1")
            && alerts.contains("PLAZO VENCIDO")
            && alerts.contains("RESPONSABLE"),
        "{alerts}"
    );
}

on_both_backends!(
    due_dates_skip_the_weekend_and_the_holiday,
    one_alert_and_one_escalation_per_breach_across_restarts,
    two_instances_alert_once,
    waiting_on_the_contact_pauses_the_clock,
    the_daemon_alerts_without_new_mail,
    a_deadline_moved_by_hand_is_a_new_promise,
);
