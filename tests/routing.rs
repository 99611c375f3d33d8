//! The teams' rule sets drive routing, templates and notifications end to
//! end: `buzon ingest` with an example's configuration, then the outbox.

use std::path::{Path, PathBuf};

fn example(team: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(team)
}

/// The example's config with the database and outbox in a temp dir.
fn deployment(team: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = example(team);
    let text = std::fs::read_to_string(src.join("buzon.toml"))
        .unwrap()
        .replace(
            "dir = \"rules\"",
            &format!("dir = \"{}\"", src.join("rules").display()),
        )
        .replace(
            "dir = \"templates\"",
            &format!("dir = \"{}\"", src.join("templates").display()),
        );
    let config = dir.path().join("buzon.toml");
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

fn buzon(config: &Path, args: &[&str]) -> String {
    let out = assert_cmd::Command::cargo_bin("buzon")
        .unwrap()
        .env_remove("BUZON_DATABASE_URL")
        .env_remove("BUZON_OUTBOX_DIR")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn outbox(dir: &Path) -> Vec<buzon::parse::ParsedMail> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| buzon::parse::parse(&std::fs::read(f).unwrap(), 1 << 22).unwrap())
        .collect()
}

/// Ingests one of the demo mails (`examples/demo/mail/MAILBOX/FILE`).
fn ingest_demo(config: &Path, mailbox: &str, file: &str) -> String {
    let mail = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/demo/mail")
        .join(mailbox)
        .join(file);
    buzon(
        config,
        &["ingest", "--mailbox", mailbox, mail.to_str().unwrap()],
    )
}

/// `tickets show N --format json`.
fn show(config: &Path, number: &str) -> serde_json::Value {
    serde_json::from_str(&buzon(
        config,
        &["tickets", "show", number, "--format", "json"],
    ))
    .unwrap()
}

#[test]
fn documents_sent_to_a_law_firm_get_the_teams_template_and_notify_the_extra_recipients() {
    let (dir, config) = deployment("tuprocurador");
    let out = ingest_demo(&config, "clientes", "18-documentos-solicitados.eml");
    assert!(out.contains("created"), "{out}");
    let shown = show(&config, "1");
    assert_eq!(
        shown["ticket"]["type"], "Entrega de documentos",
        "{shown:#}"
    );
    let sent = outbox(dir.path());
    let ack = sent
        .iter()
        .find(|m| {
            m.header("Auto-Submitted") == Some("auto-replied")
                && m.subject.contains("Documentos recibidos")
        })
        .unwrap_or_else(|| {
            panic!(
                "no documentos-recibidos acknowledgement: {:#?}",
                sent.iter().map(|m| &m.subject).collect::<Vec<_>>()
            )
        });
    assert!(
        ack.text.contains("Recibimos los documentos"),
        "{}",
        ack.text
    );
    // The client's additional addresses (seed 002) are told too.
    let recipients: Vec<&str> = sent
        .iter()
        .flat_map(|m| m.to.iter().chain(m.cc.iter()))
        .map(|a| a.address.as_str())
        .collect();
    assert!(
        recipients.contains(&"procuracion@contreras-asociados.example"),
        "{recipients:?}"
    );
    // Francisca sues her employer, Comercial Austral: nothing about her case
    // goes to her address there.
    assert!(
        !recipients
            .iter()
            .any(|a| a.ends_with("@comercialaustral.example")),
        "{recipients:?}"
    );
    assert!(
        !shown["participants"]
            .to_string()
            .contains("comercialaustral"),
        "{shown:#}"
    );
    // Her mail carries two PDFs: documents received, not "without attachments".
    assert_eq!(
        shown["ticket"]["tags"],
        serde_json::json!(["documentos-recibidos"]),
        "{shown:#}"
    );
}

/// A reply to a request for documents with nothing attached is tagged so.
#[test]
fn a_reply_without_attachments_to_a_request_for_documents_is_tagged_so() {
    let (dir, config) = deployment("tuprocurador");
    let mail = dir.path().join("sin-adjuntos.eml");
    std::fs::write(
        &mail,
        "From: Jorge Munoz <jmunoz@gmail.example>\r\nTo: clientes@tuprocurador.example\r\n\
         Subject: RE: Solicitud de documentos - Cobro de honorarios\r\n\
         Message-ID: <sin-adjuntos-1@gmail.example>\r\n\
         In-Reply-To: <solicitud-41990.20251017.0930@tuprocurador.example>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nNo tengo el contrato original.\r\n",
    )
    .unwrap();
    buzon(
        &config,
        &["ingest", "--mailbox", "clientes", mail.to_str().unwrap()],
    );
    let shown = show(&config, "1");
    assert_eq!(
        shown["ticket"]["tags"],
        serde_json::json!(["sin-adjuntos"]),
        "{shown:#}"
    );
}

#[test]
fn genera_routes_an_investor_rescue_to_alonso_with_high_priority() {
    let (_dir, config) = deployment("genera-factoring");
    ingest_demo(&config, "servicioalcliente", "08-rescate-parcial.eml");
    let list: serde_json::Value =
        serde_json::from_str(&buzon(&config, &["tickets", "list", "--format", "json"])).unwrap();
    let t = &list["tickets"][0];
    assert_eq!(t["pipeline"], "Finanzas", "{t:#}");
    assert_eq!(t["owner"], "alonso", "{t:#}");
    assert_eq!(t["priority"], "high", "{t:#}");
    assert_eq!(t["type"], "Inversionista - Rescate", "{t:#}");
}

/// Seed 004: "clasifica correctamente cada ticket", "puedes marcar como
/// Alta cualquier ticket urgente": an agent reclassifies with the team's
/// words; a type or field value the rule files do not know is refused.
#[test]
fn agents_reclassify_in_the_teams_vocabulary() {
    let (_dir, config) = deployment("genera-factoring");
    ingest_demo(&config, "finanzas", "13-factura-proveedor.eml");
    buzon(
        &config,
        &[
            "tickets",
            "classify",
            "GF-1",
            "--priority",
            "Alta",
            "--type",
            "Finanzas - Otros",
            "--as",
            "rosario",
        ],
    );
    let shown = show(&config, "GF-1");
    assert_eq!(shown["ticket"]["priority"], "high", "{shown:#}");
    assert_eq!(shown["ticket"]["type"], "Finanzas - Otros");
    let history: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "classified")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(history.len(), 1);
    assert!(history[0].contains("priority low → high"), "{history:?}");
    let err = refused_with(
        &config,
        &[
            "tickets", "classify", "GF-1", "--type", "Finanzas", "--as", "rosario",
        ],
    );
    assert!(
        err.contains("'Finanzas' no es un tipo de las reglas")
            && err.contains("\"Finanzas - Otros\""),
        "{err}"
    );
    // An agent does not reclassify someone else's ticket (GF-1 is
    // Alonso's, not Milagros').
    let err = refused_with(
        &config,
        &[
            "tickets",
            "classify",
            "GF-1",
            "--priority",
            "Baja",
            "--as",
            "milagros",
        ],
    );
    assert!(err.contains("está a cargo de"), "{err}");
    let err = refused_with(
        &config,
        &[
            "tickets",
            "classify",
            "GF-1",
            "--priority",
            "Altísima",
            "--as",
            "rosario",
        ],
    );
    assert!(err.contains("\"Alta\""), "{err}");

    let (_dir, config) = deployment("pvi");
    ingest_demo(
        &config,
        "sac",
        "15-arrendatario-contacto-administracion.eml",
    );
    buzon(
        &config,
        &[
            "tickets",
            "classify",
            "SAC-1",
            "--field",
            "medio_ingreso=telefono",
            "--as",
            "fernanda",
        ],
    );
    let shown = show(&config, "SAC-1");
    assert_eq!(
        shown["ticket"]["fields"]["medio_ingreso"], "Teléfono",
        "{shown:#}"
    );
    let err = refused_with(
        &config,
        &[
            "tickets",
            "classify",
            "SAC-1",
            "--field",
            "medio_ingreso=Fax",
            "--as",
            "fernanda",
        ],
    );
    assert!(
        err.contains("'Fax' no es un valor de medio_ingreso"),
        "{err}"
    );
}

fn refused_with(config: &Path, args: &[&str]) -> String {
    let out = assert_cmd::Command::cargo_bin("buzon")
        .unwrap()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn rules_check_also_reports_broken_templates_with_file_and_line() {
    let (dir, config) = deployment("pvi");
    // Point the templates at a copy with a typo in a variable name.
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("acknowledgement.txt"),
        "Subject: {{ tag }} Recibimos su solicitud\n\nHola, su número es {{ tikcet }}.\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let src = example("pvi").join("templates");
    std::fs::write(
        &config,
        text.replace(&src.display().to_string(), &templates.display().to_string()),
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("buzon")
        .unwrap()
        .arg("--config")
        .arg(&config)
        .args(["rules", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("acknowledgement.txt:3"), "{text}");
    assert!(text.contains("did you mean `ticket`"), "{text}");
}

#[test]
fn people_see_states_and_priorities_in_the_teams_words() {
    let (_dir, config) = deployment("pvi");
    ingest_demo(
        &config,
        "sac",
        "15-arrendatario-contacto-administracion.eml",
    );
    let table = buzon(&config, &["tickets", "list"]);
    assert!(table.contains("Nueva"), "{table}");
    let shown = buzon(&config, &["tickets", "show", "1"]);
    assert!(
        shown.contains("estado: Nueva") && shown.contains("responsable:"),
        "{shown}"
    );
    // The report's state columns too.
    let report = buzon(
        &config,
        &["report", "--from", "2000-01-01", "--to", "2100-12-31"],
    );
    assert!(report.contains("NUEVA"), "{report}");
    // Scripts keep the canonical names.
    let json = buzon(&config, &["tickets", "list", "--format", "json"]);
    assert!(json.contains("\"state\": \"new\""), "{json}");
    // And agents may write the team's words back: "En ejecución" is open.
    buzon(
        &config,
        &[
            "tickets",
            "state",
            "SAC-1",
            "en ejecucion",
            "--as",
            "fernanda",
        ],
    );
    let open = buzon(
        &config,
        &[
            "tickets",
            "list",
            "--state",
            "En ejecución",
            "--format",
            "json",
        ],
    );
    assert!(open.contains("\"state\": \"open\""), "{open}");
    let none = buzon(
        &config,
        &["tickets", "list", "--state", "Nueva", "--format", "json"],
    );
    assert!(!none.contains("SAC-1"), "{none}");
    let out = assert_cmd::Command::cargo_bin("buzon")
        .unwrap()
        .arg("--config")
        .arg(&config)
        .args(["tickets", "list", "--state", "Abierta"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"En ejecución\""),
        "the error names the team's words: {err}"
    );
}

/// Seed 001: "Finalizar ... Se enviará automáticamente un mail al contacto":
/// the closing mail names who closed the request, not its owner.
#[test]
fn the_closing_mail_names_who_closed_the_request() {
    let (dir, config) = deployment("pvi");
    ingest_demo(&config, "sac", "16-propietaria-certificado-llave.eml");
    let owner = show(&config, "SAC-1")["ticket"]["owner"].clone();
    assert_eq!(owner, "carolina", "the certificate goes to Legal");
    buzon(
        &config,
        &[
            "tickets",
            "close",
            "SAC-1",
            "--outcome",
            "success",
            "--note",
            "El certificado se envió por correo.",
            "--as",
            "fernanda",
        ],
    );
    let closing: Vec<_> = outbox(dir.path())
        .into_iter()
        .filter(|m| m.text.contains("El certificado se envió por correo."))
        .filter(|m| {
            m.to.iter()
                .all(|a| !a.address.contains("inmobiliaria-andes"))
        })
        .collect();
    assert_eq!(closing.len(), 1);
    let text = &closing[0].text;
    assert!(
        text.contains("Comentario de Fernanda Lagos (SAC)"),
        "{text}"
    );
    assert!(!text.contains("Carolina"), "{text}");
}

/// The customer's "RE:"/"RV:" is not part of the subject the automatic mails
/// repeat: "Recibimos tu respuesta: Documento observado…", never
/// "Recibimos tu respuesta: RE: Documento observado…".
#[test]
fn automatic_subjects_drop_the_customers_reply_prefixes() {
    let (dir, config) = deployment("tupatrimonio");
    ingest_demo(&config, "soporte", "01-re-observado-tupatrimonio.eml");
    ingest_demo(&config, "soporte", "03-rv-revision-firma.eml");
    let sent = outbox(dir.path());
    assert!(sent.len() >= 2, "{sent:?}");
    for m in &sent {
        let after_tag = m.subject.split_once("] ").map_or(&*m.subject, |(_, s)| s);
        let (words, customers) = after_tag.split_once(": ").unwrap_or(("", after_tag));
        assert!(!words.is_empty(), "{}", m.subject);
        assert_eq!(
            buzon::thread::strip_reply_prefixes(customers),
            customers,
            "{}",
            m.subject
        );
    }
    assert!(
        sent.iter().any(|m| m
            .subject
            .contains("Recibimos tu respuesta: Documento observado")),
        "{:?}",
        sent.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
}
