//! People, roles and permissions through the command line, on both
//! backends: seed 001's rule (an administrator may do everything; an agent
//! everything on their own tickets and only read, comment and mail on the
//! others'), taking and reopening, tickets written down by hand, and the
//! defects an agent met when trying the commands as a new user would.

mod common;

use std::path::PathBuf;

use buzon::parse::ParsedMail;
use common::{Backend, Deployment, ticket_numbers};

const PEOPLE: &str = r#"
[rules]
dir = "rules"

[people.alonso]
name = "Alonso Pérez"
address = "alonso@generafactoring.example"
pipelines = ["Finanzas"]

[people.milagros]
name = "Milagros Muñoz"
address = "milagros@generafactoring.example"
role = "agent"
pipelines = ["Finanzas"]

[people.ana]
name = "Ana Soto"
address = "ana@tupatrimonio.example"
role = "agent"

[people.rosario]
name = "Rosario Vega"
address = "rosario@generafactoring.example"
role = "admin"
"#;

const RULES: &str = r#"
[labels.state]
new = "Nueva"
open = "En ejecución"
done = "Finalizada"

[[rule]]
name = "llamadas de inversionistas a finanzas"
when.channel = "phone"
pipeline = "Finanzas"
owner = "milagros"
tags = ["telefono"]
"#;

fn deployment(backend: Backend) -> Deployment {
    let d = Deployment::with_extra(backend, PEOPLE);
    let rules = d.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("10-equipo.toml"), RULES).unwrap();
    d
}

/// A customer's mail to `to`, stored; its ticket number.
fn customer_ticket(d: &Deployment, mailbox: &str, to: &str, subject: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let i = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let file: PathBuf = d.dir.path().join(format!("mail-{i}.eml"));
    std::fs::write(
        &file,
        format!(
            "From: Inés Carrasco <ines{i}@cliente.example>\r\nTo: {to}\r\nSubject: {subject}\r\n\
             Message-ID: <people-{i}-{}@cliente.example>\r\nDate: Mon, 7 Dec 2026 10:00:00 -0300\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\nHola, necesito ayuda con mi caso.\r\n",
            std::process::id()
        ),
    )
    .unwrap();
    let out = d.ingest(mailbox, &file);
    ticket_numbers(&out).remove(0)
}

/// `buzon tickets ARGS --as WHO`, expected to be refused; its stderr.
fn refused(d: &Deployment, who: &str, args: &[&str]) -> String {
    let mut all: Vec<&str> = vec!["tickets"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--as", who]);
    let out = d.run(&all);
    assert!(
        !out.status.success(),
        "{all:?} should be refused: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok_as(d: &Deployment, who: &str, args: &[&str]) -> String {
    let mut all: Vec<&str> = vec!["tickets"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--as", who]);
    d.ok(&all)
}

fn kinds(d: &Deployment, number: &str) -> Vec<String> {
    d.events(number, "detail")
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// The outbox mails written so far (decoded) whose text contains `needle`.
fn mails_with(d: &Deployment, needle: &str) -> Vec<ParsedMail> {
    d.outbox_files()
        .iter()
        .map(|f| buzon::parse::parse(&std::fs::read(f).unwrap(), 1 << 22).unwrap())
        .filter(|m| m.text.contains(needle) || m.subject.contains(needle))
        .collect()
}

/// Whether `mail` is addressed to `address`.
fn to(mail: &ParsedMail, address: &str) -> bool {
    mail.to.iter().any(|a| a.address == address)
}

fn agents_act_on_their_own_tickets_and_only_comment_and_mail_on_others(backend: Backend) {
    let d = deployment(backend);
    // The finanzas mailbox gives its tickets to alonso.
    let n = customer_ticket(
        &d,
        "finanzas",
        "finanzas@generafactoring.example",
        "Estado de cuenta",
    );
    assert_eq!(d.show_json(&n)["ticket"]["owner"], "alonso");

    // Milagros, on Alonso's ticket: comment and mail, nothing else.
    ok_as(
        &d,
        "milagros",
        &["comment", &n, "Lo vi, tiene una duda previa."],
    );
    d.agent_mail_ok("reply", &n, "Le escribimos hoy mismo.", "milagros");
    for args in [
        vec!["close", &n, "--outcome", "success"],
        vec!["assign", &n, "milagros"],
        vec!["state", &n, "En ejecución"],
        vec!["due", &n, "2026-12-10"],
        vec!["classify", &n, "--priority", "high"],
    ] {
        let err = refused(&d, "milagros", &args);
        assert!(
            err.contains(&format!("{n} está a cargo de Alonso Pérez")),
            "{args:?}: {err}"
        );
    }
    let history = kinds(&d, &n);
    assert!(history.contains(&"comment".to_string()), "{history:?}");
    assert!(history.contains(&"reply".to_string()), "{history:?}");
    assert!(!history.contains(&"closed".to_string()), "{history:?}");

    // Alonso works his own ticket, in the team's words without accents.
    let out = ok_as(&d, "alonso", &["state", &n, "en ejecucion"]);
    assert!(out.contains("«En ejecución»"), "{out}");
    ok_as(&d, "Alonso Pérez", &["close", &n, "--outcome", "success"]);
    assert_eq!(d.show_json(&n)["ticket"]["state"], "done");

    // A state change does not reopen a finished ticket; reopening is its
    // own action, for the owner or an admin, recorded and told.
    let err = refused(&d, "alonso", &["state", &n, "En ejecución"]);
    assert!(err.contains(&format!("tickets reopen {n}")), "{err}");
    let err = refused(&d, "milagros", &["reopen", &n]);
    assert!(err.contains("Alonso Pérez"), "{err}");
    let before = mails_with(&d, "reabrió").len();
    let out = ok_as(
        &d,
        "rosario",
        &["reopen", &n, "--note", "El cliente pidió otra copia."],
    );
    assert!(out.contains("reabierto en «En ejecución»"), "{out}");
    let shown = d.show_json(&n);
    assert_eq!(shown["ticket"]["state"], "open");
    assert!(shown["ticket"]["outcome"].is_null(), "{shown:#}");
    assert!(kinds(&d, &n).contains(&"reopened".to_string()));
    let told = mails_with(&d, "reabrió");
    assert_eq!(told.len(), before + 1, "the owner is told once");
    assert!(
        told.iter()
            .any(|m| to(m, "alonso@generafactoring.example") && m.text.contains("Rosario Vega")),
        "{told:?}"
    );
}

fn unknown_people_are_refused_with_the_list(backend: Backend) {
    let d = deployment(backend);
    let n = customer_ticket(
        &d,
        "finanzas",
        "finanzas@generafactoring.example",
        "Adición de inversión",
    );
    let err = refused(&d, "nadie", &["comment", &n, "hola"]);
    assert!(
        err.contains("'nadie'") && err.contains("alonso (Alonso Pérez, agente)"),
        "{err}"
    );
    assert!(
        err.contains("rosario (Rosario Vega, administrador)"),
        "{err}"
    );

    // Nobody said who is acting: refused, never guessed from $USER.
    let out = d
        .cmd()
        .env_remove("BUZON_AS")
        .env("USER", "agent")
        .args(["tickets", "comment", &n, "hola"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("¿quién actúa?") && err.contains("--as"),
        "{err}"
    );

    // A misspelt owner is refused with the close match; nothing written.
    let err = refused(&d, "rosario", &["assign", &n, "alonzo"]);
    assert!(err.contains("¿quiso decir \"alonso\"?"), "{err}");
    let history = kinds(&d, &n);
    assert!(!history.contains(&"assigned".to_string()), "{history:?}");
    assert!(
        !history.contains(&"mail_withheld".to_string()),
        "{history:?}"
    );
    // By name, in any case, it is found.
    ok_as(&d, "rosario", &["assign", &n, "MILAGROS MUÑOZ"]);
    assert_eq!(d.show_json(&n)["ticket"]["owner"], "milagros");
}

fn an_unowned_ticket_is_taken_by_an_agent_of_its_pipeline(backend: Backend) {
    let d = deployment(backend);
    // soporte has no owner; its pipeline is Soporte.
    let n = customer_ticket(&d, "soporte", "soporte@tupatrimonio.example", "Firma");
    assert!(d.show_json(&n)["ticket"]["owner"].is_null());
    let err = refused(&d, "ana", &["close", &n, "--outcome", "success"]);
    assert!(err.contains(&format!("tickets take {n}")), "{err}");
    let err = refused(&d, "milagros", &["take", &n]);
    assert!(
        err.contains("«Soporte»") && err.contains("«Finanzas»"),
        "{err}"
    );
    let out = ok_as(&d, "ana", &["take", &n]);
    assert!(out.contains("asignado a Ana Soto"), "{out}");
    let err = refused(&d, "alonso", &["take", &n]);
    assert!(err.contains("ya está a cargo de Ana Soto"), "{err}");
    ok_as(&d, "ana", &["close", &n, "--outcome", "failure"]);
}

fn a_phone_request_is_routed_by_the_rules_and_acknowledged(backend: Backend) {
    let d = deployment(backend);
    let out = ok_as(
        &d,
        "alonso",
        &[
            "new",
            "--channel",
            "teléfono",
            "--mailbox",
            "soporte",
            "--requester",
            "ines@cliente.example",
            "--name",
            "Inés Carrasco",
            "--subject",
            "Rescate de inversión",
            "--body",
            "Llamó para pedir el rescate de su inversión de marzo.",
        ],
    );
    // The channel rule sent it to Finanzas, owned by milagros.
    assert!(
        out.contains("creado (teléfono) en «Finanzas», a cargo de Milagros Muñoz"),
        "{out}"
    );
    let n = ticket_numbers(&out.replace(':', " ")).remove(0);
    let shown = d.show_json(&n);
    let t = &shown["ticket"];
    assert_eq!(t["pipeline"], "Finanzas", "{shown:#}");
    assert_eq!(t["owner"], "milagros");
    assert_eq!(t["requester"], "ines@cliente.example");
    assert!(t["tags"].to_string().contains("telefono"), "{t}");
    let created: Vec<(String, String)> = d
        .events(&n, "actor")
        .into_iter()
        .filter(|(k, _)| k == "created")
        .collect();
    assert_eq!(created, vec![("created".into(), "agent:alonso".into())]);
    // The report knows how it came.
    let report = d.ok(&[
        "report",
        "--from",
        "2000-01-01",
        "--to",
        "2100-01-01",
        "--format",
        "csv",
    ]);
    assert!(report.contains("phone"), "{report}");
    // The caller gets the acknowledgement with the number.
    let acks: Vec<ParsedMail> = mails_with(&d, "Rescate de inversión")
        .into_iter()
        .filter(|m| to(m, "ines@cliente.example"))
        .collect();
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert!(
        acks[0].subject.contains(&format!("[#{n}]")),
        "{}",
        acks[0].subject
    );

    // Without a channel rule the ticket stays in Soporte, which alonso does
    // not work: refused, and nothing is stored.
    let before = d.tickets_json().len();
    let err = refused(
        &d,
        "alonso",
        &[
            "new",
            "--channel",
            "in_person",
            "--mailbox",
            "soporte",
            "--name",
            "Visita",
            "--subject",
            "Consulta en oficina",
        ],
    );
    assert!(
        err.contains("no puede crear tickets en el pipeline «Soporte»"),
        "{err}"
    );
    assert_eq!(d.tickets_json().len(), before);
    // Ana works every pipeline; a visitor without address gets no mail.
    let out = ok_as(
        &d,
        "ana",
        &[
            "new",
            "--channel",
            "presencial",
            "--mailbox",
            "soporte",
            "--name",
            "Visita sin correo",
            "--subject",
            "Consulta en oficina",
        ],
    );
    assert!(out.contains("sin acuse"), "{out}");
}

fn the_tray_shows_tickets_in_progress_and_finds_people_by_name(backend: Backend) {
    let d = deployment(backend);
    let a = customer_ticket(&d, "finanzas", "finanzas@generafactoring.example", "Uno");
    let b = customer_ticket(&d, "finanzas", "finanzas@generafactoring.example", "Dos");
    let c = customer_ticket(&d, "soporte", "soporte@tupatrimonio.example", "Tres");
    ok_as(&d, "alonso", &["close", &a, "--outcome", "success"]);
    ok_as(&d, "alonso", &["state", &b, "En ejecución"]);
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["tickets", "list", "--format", "json"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&d.ok(&all)).unwrap();
        v["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["number"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        listed(&[]),
        vec![b.clone(), c.clone()],
        "in progress by default"
    );
    assert_eq!(listed(&["--all"]), vec![a.clone(), b.clone(), c.clone()]);
    assert_eq!(
        listed(&["--state", "Nueva", "--state", "finalizada"]),
        vec![a.clone(), c.clone()]
    );
    assert_eq!(listed(&["--owner", "Alonso"]), vec![b.clone()]);
    assert_eq!(listed(&["--owner", "alonso pérez", "--all"]), vec![a, b]);
    let err = d.run(&["tickets", "list", "--owner", "Alonzo"]);
    assert!(!err.status.success());
}

fn a_date_alone_is_due_at_the_end_of_that_day(backend: Backend) {
    let d = deployment(backend);
    let n = customer_ticket(&d, "finanzas", "finanzas@generafactoring.example", "Plazo");
    ok_as(&d, "alonso", &["due", &n, "2026-12-10"]);
    // JSON times are RFC 3339 UTC with milliseconds.
    let due: jiff::Timestamp = d.show_json(&n)["ticket"]["due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let due = due.as_millisecond();
    // 2026-12-10 23:59:59 in Santiago (UTC-3 in December).
    let end_of_day = jiff::civil::date(2026, 12, 10)
        .at(23, 59, 59, 0)
        .in_tz("America/Santiago")
        .unwrap()
        .timestamp()
        .as_millisecond();
    assert_eq!(due, end_of_day);
}

fn document_items_are_found_ignoring_case_and_accents(backend: Backend) {
    let d = deployment(backend);
    let n = customer_ticket(
        &d,
        "finanzas",
        "finanzas@generafactoring.example",
        "Documentos",
    );
    ok_as(
        &d,
        "alonso",
        &[
            "request",
            &n,
            "--item",
            "Copia de carnet",
            "--item",
            "Poder notarial",
        ],
    );
    let err = refused(&d, "alonso", &["received", &n, "copia carnet"]);
    assert!(err.contains("¿quiso decir \"Copia de carnet\"?"), "{err}");
    let out = ok_as(&d, "alonso", &["received", &n, "COPIA DE CARNÉT"]);
    assert!(out.contains("recibido: Copia de carnet"), "{out}");
    let requests = d.show_json(&n)["requests"].clone();
    assert!(requests.to_string().contains("received"), "{requests}");
}

fn a_prefix_already_in_the_subject_is_not_said_twice(backend: Backend) {
    let d = deployment(backend);
    let n = customer_ticket(
        &d,
        "finanzas",
        "finanzas@generafactoring.example",
        "RE: Nueva novedad en su caso: audiencia fijada",
    );
    d.agent_mail_ok("update", &n, "La audiencia es el lunes.", "alonso");
    let mails = mails_with(&d, "La audiencia es el lunes.");
    let to_client: Vec<&ParsedMail> = mails
        .iter()
        .filter(|m| !to(m, "alonso@generafactoring.example"))
        .collect();
    assert_eq!(to_client.len(), 1, "{mails:?}");
    let subject = &to_client[0].subject;
    assert!(!subject.contains("Novedad en su caso: Nueva"), "{subject}");
    assert!(!subject.contains("RE:"), "{subject}");
}

/// Two agents taking the same ticket at once: the permission was checked
/// against "nobody owns it"; the second change finds an owner and writes
/// nothing.
fn a_change_decided_on_a_stale_owner_writes_nothing(backend: Backend) {
    let d = deployment(backend);
    let n = customer_ticket(&d, "soporte", "soporte@tupatrimonio.example", "Carrera");
    ok_as(&d, "ana", &["take", &n]);
    let number: i64 = n.trim_start_matches("T-").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = buzon::store::Store::open(&d.database_url, 2).await.unwrap();
        // What the second taker's action decided before ana's take landed.
        let late = buzon::store::TicketUpdate {
            owner: Some("alonso".into()),
            owner_was: Some(None),
            now: 1,
            ..Default::default()
        };
        let err = store.update_ticket(number, &late).await.unwrap_err();
        assert!(
            matches!(err, buzon::store::StoreError::Conflict(_)),
            "{err}"
        );
        store.close().await;
    });
    assert_eq!(d.show_json(&n)["ticket"]["owner"], "ana");
}

on_both_backends!(
    a_change_decided_on_a_stale_owner_writes_nothing,
    agents_act_on_their_own_tickets_and_only_comment_and_mail_on_others,
    unknown_people_are_refused_with_the_list,
    an_unowned_ticket_is_taken_by_an_agent_of_its_pipeline,
    a_phone_request_is_routed_by_the_rules_and_acknowledged,
    the_tray_shows_tickets_in_progress_and_finds_people_by_name,
    a_date_alone_is_due_at_the_end_of_that_day,
    document_items_are_found_ignoring_case_and_accents,
    a_prefix_already_in_the_subject_is_not_said_twice,
);
