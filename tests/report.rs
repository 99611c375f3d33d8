//! `buzon report` end to end on both backends: tickets ingested through the
//! CLI, one answered by an agent and one closed, then the JSON numbers and
//! the CSV as a spreadsheet would read it (python3's csv module).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Backend, Deployment, fixture, ticket_numbers};

/// A subject that needs RFC 4180 quoting (comma, double quote) and UTF-8.
const TRICKY_SUBJECT: &str = "Cotización, escritura y \"poder\" — Ñuñoa";

fn tricky_mail(d: &Deployment) -> PathBuf {
    let text = format!(
        "From: Ana Muñoz <ana.munoz@gmail.example>\r\nTo: soporte@tupatrimonio.example\r\n\
         Subject: {TRICKY_SUBJECT}\r\nMessage-ID: <tricky1@gmail.example>\r\n\
         Date: Mon, 2 Nov 2026 10:00:00 -0300\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nNecesito una cotización.\r\n"
    );
    let path = d.dir.path().join("tricky.eml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Today in the deployment's zone (tickets are created "now"); the range
/// spans yesterday to tomorrow so a run at local midnight still holds.
fn around_today() -> (String, String) {
    let tz = jiff::tz::TimeZone::get("America/Santiago").unwrap();
    let today = jiff::Timestamp::now().to_zoned(tz).date();
    let yesterday = today.yesterday().unwrap();
    let tomorrow = today.tomorrow().unwrap();
    (yesterday.to_string(), tomorrow.to_string())
}

/// Four tickets (three in soporte, one in finanzas); the first answered by
/// an agent, the second closed. Returns the deployment and the numbers.
fn scenario(backend: Backend) -> (Deployment, Vec<String>) {
    let d = Deployment::new(backend);
    let mut numbers = Vec::new();
    for (mailbox, path) in [
        ("soporte", fixture("ingest/utf8-qp.eml")),
        ("soporte", fixture("ingest/latin1-8bit.eml")),
        ("finanzas", fixture("ingest/windows1252.eml")),
        ("soporte", tricky_mail(&d)),
    ] {
        numbers.extend(ticket_numbers(&d.ingest(mailbox, &path)));
    }
    assert_eq!(numbers.len(), 4, "{numbers:?}");
    let out = d.agent_mail_ok(
        "reply",
        &numbers[0],
        "Hola Camila, la firma ya quedó habilitada.\n",
        "supervisora",
    );
    assert!(out.contains("respuesta al cliente en cola"), "{out}");
    d.ok(&["tickets", "close", &numbers[1], "--outcome", "success"]);
    (d, numbers)
}

fn report_json(d: &Deployment, extra: &[&str]) -> serde_json::Value {
    let (from, to) = around_today();
    let mut args = vec!["report", "--from", &from, "--to", &to, "--format", "json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&d.ok(&args)).unwrap()
}

fn json_counts_states_responses_and_resolutions(backend: Backend) {
    let (d, _) = scenario(backend);
    let report = report_json(&d, &[]);
    assert_eq!(report["by"], "none");
    assert_eq!(report["time_zone"], "America/Santiago");
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{report:#}");
    let g = &groups[0];
    assert_eq!(g["key"], "all");
    assert_eq!(g["tickets"], 4);
    assert_eq!(g["by_state"]["new"], 2, "{g:#}");
    assert_eq!(g["by_state"]["waiting_on_contact"], 1, "{g:#}");
    assert_eq!(g["by_state"]["done"], 1, "{g:#}");
    assert_eq!(g["by_state"]["open"], 0, "{g:#}");
    // Only the agent's reply counts: acknowledgements and the closing
    // message are automatic.
    assert_eq!(g["first_response"]["count"], 1, "{g:#}");
    assert_eq!(g["first_response"]["no_response"], 3, "{g:#}");
    assert!(g["first_response"]["median_minutes"].as_f64().unwrap() >= 0.0);
    assert_eq!(g["resolution"]["count"], 1, "{g:#}");
    assert!(g["resolution"]["median_hours"].as_f64().unwrap() >= 0.0);
    assert!(g["resolution"]["p90_hours"].is_number());
    assert_eq!(g["overdue"], 0);
    assert_eq!(g["by_channel"]["email"], 4);
    assert_eq!(g["by_mailbox"]["soporte"], 3);
    assert_eq!(g["by_mailbox"]["finanzas"], 1);

    let by_mailbox = report_json(&d, &["--by", "mailbox"]);
    let keys: Vec<&str> = by_mailbox["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["finanzas", "soporte"]);
    assert_eq!(by_mailbox["groups"][1]["tickets"], 3);

    // Days after today: nothing, but still one group of zeros.
    let tz = jiff::tz::TimeZone::get("America/Santiago").unwrap();
    let today = jiff::Timestamp::now().to_zoned(tz).date();
    let later = today.checked_add(jiff::Span::new().days(2)).unwrap();
    let empty: serde_json::Value = serde_json::from_str(&d.ok(&[
        "report",
        "--from",
        &later.to_string(),
        "--to",
        &later.to_string(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(empty["groups"][0]["tickets"], 0);
    assert!(empty["groups"][0]["first_response"]["median_minutes"].is_null());

    // People get a table.
    let (from, to) = around_today();
    let text = d.ok(&["report", "--from", &from, "--to", &to]);
    assert!(
        text.contains("MEDIANA 1.ª RESPUESTA") && text.contains("tickets creados del"),
        "{text}"
    );
    assert!(!text.contains("RESPONSE MEDIAN"), "{text}");
    assert!(text.contains("email=4"), "{text}");
}

/// Reads a CSV file the way a spreadsheet import would, with python3's csv
/// module, and returns the rows as JSON objects.
fn python_csv_rows(path: &std::path::Path) -> Vec<serde_json::Map<String, serde_json::Value>> {
    // A column name twice would make a spreadsheet (and DictReader) keep
    // only one of the two: refuse it.
    let script = "import csv, json, sys\n\
                  with open(sys.argv[1], encoding='utf-8-sig', newline='') as f:\n\
                  \x20   r = csv.DictReader(f)\n\
                  \x20   assert len(r.fieldnames) == len(set(r.fieldnames)), r.fieldnames\n\
                  \x20   print(json.dumps(list(r), ensure_ascii=False))\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed to read the CSV back (Debian package `python3`): {e}")
        });
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|r| r.as_object().unwrap().clone())
        .collect()
}

fn csv_with_bom_reads_back_in_a_spreadsheet(backend: Backend) {
    let (d, numbers) = scenario(backend);
    let (from, to) = around_today();
    let out = d
        .cmd()
        .args([
            "report", "--from", &from, "--to", &to, "--format", "csv", "--bom",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = out.stdout;
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "no BOM");
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\r\n") && !text.replace("\r\n", "").contains('\n'));
    let path = d.dir.path().join("report.csv");
    std::fs::write(&path, &bytes).unwrap();

    let rows = python_csv_rows(&path);
    assert_eq!(rows.len(), 4);
    let by_number = |n: &str| {
        rows.iter()
            .find(|r| r["number"] == n)
            .unwrap_or_else(|| panic!("{n} not in {rows:?}"))
    };
    let answered = by_number(&numbers[0]);
    assert_eq!(
        answered["subject"],
        "Consulta sobre firma electrónica pedido 75321"
    );
    assert_eq!(answered["state"], "waiting_on_contact");
    assert_eq!(answered["channel"], "email");
    assert!(
        answered["first_response_minutes"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .is_ok(),
        "{answered:?}"
    );
    assert_eq!(answered["resolution_hours"], "");
    let closed = by_number(&numbers[1]);
    assert_eq!(closed["state"], "done");
    assert_eq!(closed["outcome"], "success");
    assert_eq!(closed["first_response_minutes"], "");
    assert!(
        closed["resolution_hours"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .is_ok(),
        "{closed:?}"
    );
    assert_ne!(closed["closed_at"], "");
    let tricky = by_number(&numbers[3]);
    assert_eq!(tricky["subject"], TRICKY_SUBJECT);
    assert_eq!(tricky["requester"], "ana.munoz@gmail.example");
    assert_eq!(tricky["overdue"], "no");
    // Dates are local (America/Santiago), as the team reads them.
    let listed = d.tickets_json();
    let utc = listed
        .iter()
        .find(|t| t["number"] == numbers[3].as_str())
        .unwrap()["created_at"]
        .as_str()
        .unwrap()
        .parse::<jiff::Timestamp>()
        .unwrap();
    let tz = jiff::tz::TimeZone::get("America/Santiago").unwrap();
    let local = utc.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string();
    assert_eq!(tricky["created_at"], local.as_str());
    assert_eq!(
        by_number(&numbers[2])["subject"],
        "Factura N° F001-2231 – Licencia anual Gestor Documental"
    );
}

/// A customer's subject a spreadsheet would run as a formula.
const FORMULA_SUBJECT: &str = "=HYPERLINK(\"http://x\",\"clic\")";

fn formula_mail(d: &Deployment) -> PathBuf {
    let text = format!(
        "From: @atacante <-x@gmail.example>\r\nTo: soporte@tupatrimonio.example\r\n\
         Subject: {FORMULA_SUBJECT}\r\nMessage-ID: <formula1@gmail.example>\r\n\
         Date: Mon, 2 Nov 2026 10:00:00 -0300\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n+1 -1 @SUM(A1)\r\n"
    );
    let path = d.dir.path().join("formula.eml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every CSV buzon writes (`tickets list`, `report`) starts a cell that a
/// spreadsheet would take for a formula with a single quote (OWASP's advice):
/// the subject reads back as text, and no cell starts with `= + - @`.
fn csv_cells_never_start_a_formula(backend: Backend) {
    let d = Deployment::new(backend);
    let numbers = ticket_numbers(&d.ingest("soporte", &formula_mail(&d)));
    assert_eq!(numbers.len(), 1);
    let (from, to) = around_today();
    for args in [
        vec!["tickets", "list", "--format", "csv"],
        vec!["report", "--from", &from, "--to", &to, "--format", "csv"],
    ] {
        let path = d.dir.path().join("export.csv");
        std::fs::write(&path, d.ok(&args)).unwrap();
        let rows = python_csv_rows(&path);
        assert_eq!(rows.len(), 1, "{args:?}: {rows:?}");
        assert_eq!(rows[0]["subject"], format!("'{FORMULA_SUBJECT}").as_str());
        for (column, cell) in &rows[0] {
            let cell = cell.as_str().unwrap();
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{args:?}: column {column} starts a formula: {cell:?}"
            );
        }
    }
}

fn bad_arguments_are_refused_with_a_hint(backend: Backend) {
    let d = Deployment::new(backend);
    let out = d.run(&["report", "--from", "2026-11-30", "--to", "2026-11-01"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("before --from"), "{err}");
    let out = d.run(&["report", "--from", "30/11/2026", "--to", "2026-11-30"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM-DD"));
}

on_both_backends!(
    json_counts_states_responses_and_resolutions,
    csv_with_bom_reads_back_in_a_spreadsheet,
    csv_cells_never_start_a_formula,
    bad_arguments_are_refused_with_a_hint,
);
