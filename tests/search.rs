//! Full-text search (issue 14) end to end through the command line, on
//! SQLite (FTS5) and PostgreSQL (tsvector): accents and case, stems, keys
//! exact and by their beginning, phrases, exclusions, addresses, the
//! ranking, what is indexed (what people wrote, never our automatic mail)
//! and that a message is found as soon as it is stored.

mod common;

use std::path::PathBuf;

use common::{Backend, Deployment, ticket_numbers};

/// The agent who answers and comments.
const CAMILA: &str = "[people.camila]\nname = \"Camila Rojas\"\nrole = \"admin\"\n";

/// A deployment with the TuPatrimonio example's rules, which extract the
/// order number (`order`) from the mail.
fn deployment(backend: Backend) -> Deployment {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tupatrimonio");
    Deployment::with_extra(
        backend,
        &format!(
            "[rules]\ndir = \"{}\"\n\n[templates]\ndir = \"{}\"\n\n{CAMILA}\n\
             [people.gerente-operaciones]\naddress = \"gerencia@tupatrimonio.example\"\n",
            rules.join("rules").display(),
            rules.join("templates").display()
        ),
    )
}

/// Ingests one mail into `soporte`; returns its ticket number.
fn mail(d: &Deployment, id: &str, from: &str, subject: &str, body: &str) -> String {
    let text = format!(
        "From: {from}\r\nTo: soporte@tupatrimonio.example\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@cliente.example>\r\nDate: Mon, 2 Nov 2026 10:00:00 -0300\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    let path: PathBuf = d.dir.path().join(format!("{id}.eml"));
    std::fs::write(&path, text).unwrap();
    ticket_numbers(&d.ingest("soporte", &path))[0].clone()
}

/// `tickets search QUERY --format json`: the tickets found, in order.
fn search(d: &Deployment, query: &str) -> Vec<serde_json::Value> {
    let out = d.ok(&["tickets", "search", query, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["tickets"].as_array().unwrap().clone()
}

/// The numbers `tickets search` finds, in order.
fn found(d: &Deployment, query: &str) -> Vec<String> {
    search(d, query)
        .iter()
        .map(|t| t["number"].as_str().unwrap().to_string())
        .collect()
}

fn search_finds_what_people_remember(backend: Backend) {
    let d = deployment(backend);
    let ana = mail(
        &d,
        "a1",
        "Ana Muñoz <ana.munoz@correo.example>",
        "Documento observado por Notaría - Pedido N° 75321",
        "Hola, el documento fue observado por la notaría de Santiago.\r\n\
         Adjunto la escritura firmada.",
    );
    let pedro = mail(
        &d,
        "p1",
        "Pedro Soto <pedro.soto@empresa.example>",
        "Factura duplicada",
        "Me llegó la factura dos veces por el pedido 80001, favor anular una.",
    );
    let rosa = mail(
        &d,
        "r1",
        "Rosa Díaz <rosa@hogar.example>",
        "Consulta de plazo",
        "¿Cuándo estará listo mi pedido 91234? Necesito la copia autorizada.",
    );

    // Accents and case: "notaria" finds "Notaría", "munoz" finds "Muñoz".
    assert_eq!(found(&d, "notaria"), vec![ana.clone()]);
    assert_eq!(found(&d, "MUNOZ"), vec![ana.clone()]);
    assert_eq!(found(&d, "díaz"), vec![rosa.clone()]);
    // A plural finds the singular (PostgreSQL's Spanish stemmer; on SQLite
    // the prefix of the stem).
    assert_eq!(found(&d, "observados"), vec![ana.clone()]);
    assert_eq!(found(&d, "facturas"), vec![pedro.clone()]);
    // Keys: the order, its copy, its beginning; the ticket's number.
    assert_eq!(found(&d, "75321"), vec![ana.clone()]);
    assert_eq!(found(&d, "75321_2"), vec![ana.clone()]);
    assert_eq!(found(&d, "7532"), vec![ana.clone()]);
    let number = pedro.trim_start_matches("T-");
    assert_eq!(found(&d, number)[0], pedro);
    assert_eq!(found(&d, &pedro)[0], pedro);
    // A phrase, in its order only.
    assert_eq!(found(&d, "\"documento fue observado\""), vec![ana.clone()]);
    assert!(found(&d, "\"observado documento fue\"").is_empty());
    // Exclusion.
    let mut pedidos = found(&d, "pedido -factura");
    pedidos.sort();
    let mut want = vec![ana.clone(), rosa.clone()];
    want.sort();
    assert_eq!(pedidos, want);
    // An address, whole or in part.
    assert_eq!(found(&d, "pedro.soto@empresa.example"), vec![pedro.clone()]);
    assert_eq!(found(&d, "rosa@hogar.example"), vec![rosa.clone()]);
    assert_eq!(found(&d, "hogar.example"), vec![rosa.clone()]);
    // Every word of a search in one place.
    assert!(found(&d, "notaria factura").is_empty());
    // Who else is on the ticket (a Cc) is its contact too; the requester's
    // own participant row adds nothing to the ticket's document, which is
    // written once for it (migration 0014), and the requester still finds it.
    let copied = d.dir.path().join("c1.eml");
    std::fs::write(
        &copied,
        "From: Lucía Vera <lucia@vera.example>\r\nTo: soporte@tupatrimonio.example\r\n\
         Cc: Jorge Fuentes <jorge@estudio.example>\r\nSubject: Poder notarial\r\n\
         Message-ID: <c1@cliente.example>\r\nDate: Mon, 2 Nov 2026 10:00:00 -0300\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nNecesito el poder.\r\n",
    )
    .unwrap();
    let lucia = ticket_numbers(&d.ingest("soporte", &copied))[0].clone();
    assert_eq!(found(&d, "fuentes"), vec![lucia.clone()]);
    assert_eq!(
        search(&d, "jorge@estudio.example")[0]["match"]["place"],
        "contact"
    );
    assert_eq!(found(&d, "lucia vera"), vec![lucia.clone()]);

    // Where it matched, with the words around.
    let hit = &search(&d, "escritura")[0];
    assert_eq!(hit["match"]["place"], "incoming", "{hit:#}");
    assert_eq!(hit["match"]["highlights"][0], "escritura", "{hit:#}");
    assert!(
        hit["match"]["excerpt"]
            .as_str()
            .unwrap()
            .contains("Adjunto la escritura firmada"),
        "{hit:#}"
    );
    assert_eq!(search(&d, "7532")[0]["match"]["place"], "keys");
    assert_eq!(
        search(&d, "ana.munoz@correo.example")[0]["match"]["place"],
        "contact"
    );
    assert_eq!(search(&d, number)[0]["match"]["place"], "number");

    // Our automatic mail is not searched: every acknowledgement says
    // "te responderemos personalmente a la brevedad".
    let acks: String = d
        .outbox_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(acks.contains("brevedad"), "{acks}");
    assert!(found(&d, "brevedad").is_empty());

    // What is written later is found at once: an agent's reply, an
    // internal comment.
    d.agent_mail_ok(
        "reply",
        &rosa,
        "Su copia autorizada sale el jueves.",
        "camila",
    );
    let hit = &search(&d, "jueves")[0];
    assert_eq!(hit["number"], rosa.as_str());
    assert_eq!(hit["match"]["place"], "reply");
    d.ok(&[
        "tickets",
        "comment",
        &pedro,
        "El cliente pidió nota de crédito",
        "--as",
        "camila",
    ]);
    let hit = &search(&d, "\"nota de credito\"")[0];
    assert_eq!(hit["number"], pedro.as_str());
    assert_eq!(hit["match"]["place"], "comment");

    // What the backends would read as syntax is only words.
    for odd in [
        "\"",
        "NEAR(a b)",
        "body:x",
        "*",
        "a & !b | c:*",
        "-",
        "'",
        "(",
        "\\",
    ] {
        let out = d.run(&["tickets", "search", odd, "--format", "json"]);
        assert!(
            out.status.success(),
            "{odd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The list's search is the same search, with the list's filters.
    let listed = d.ok(&[
        "tickets", "list", "--all", "--search", "notaria", "--format", "json",
    ]);
    assert!(listed.contains(&format!("\"{ana}\"")), "{listed}");
    assert!(!listed.contains(&format!("\"{pedro}\"")), "{listed}");
    let text = d.ok(&["tickets", "search", "notaria"]);
    assert!(
        text.contains("*notaría*") || text.contains("*Notaría*"),
        "{text}"
    );
    assert_ticket_documents_follow_the_view(&d);
}

fn search_ranks_by_relevance_then_activity(backend: Backend) {
    let d = deployment(backend);
    // Other tickets, as in any database.
    for i in 0..6 {
        mail(
            &d,
            &format!("f{i}"),
            &format!("Cliente {i} <c{i}@otro.example>"),
            "Cambio de datos",
            "Quiero cambiar mi dirección de despacho.",
        );
    }
    // Relevance first: the word in the subject and the text beats the
    // word once in a long text, even a newer one.
    let subject = mail(
        &d,
        "s1",
        "Luis Vera <luis@uno.example>",
        "Tasación pendiente",
        "Necesito la tasación del inmueble.",
    );
    let body = mail(
        &d,
        "s2",
        "Marta Gil <marta@dos.example>",
        "Consulta general",
        "Buenas tardes, quería saber en qué estado está todo el trámite de la compraventa, \
         los plazos de firma y si falta la tasación u otro documento del banco.",
    );
    assert_eq!(found(&d, "tasacion"), vec![subject.clone(), body.clone()]);
    // The same words: the most recent activity first.
    let older = mail(
        &d,
        "t1",
        "Eva Paz <eva@tres.example>",
        "Retiro",
        "Retiro de llaves en oficina.",
    );
    let newer = mail(
        &d,
        "t2",
        "Iván Río <ivan@cuatro.example>",
        "Retiro",
        "Retiro de llaves en oficina.",
    );
    assert_eq!(found(&d, "llaves"), vec![newer.clone(), older.clone()]);
    d.ok(&[
        "tickets",
        "comment",
        &older,
        "Sin novedad",
        "--as",
        "camila",
    ]);
    assert_eq!(found(&d, "llaves"), vec![older, newer]);
}

/// Every ticket has one document, and it is what `search_ticket_text`
/// says, however its rows were written: PostgreSQL writes a new ticket's
/// from the inserted rows (migration 0017), then its participants and keys
/// rewrite it through the view.
fn assert_ticket_documents_follow_the_view(d: &Deployment) {
    let tickets: i64 = d.scalar("SELECT COUNT(*) FROM tickets");
    let same: i64 = d.scalar(
        "SELECT COUNT(*) FROM search_ticket_text v JOIN search_docs s \
         ON s.ticket_id = v.ticket_id AND s.kind = 'ticket' \
         WHERE s.who = v.who AND s.subject = v.subject AND s.body = v.body",
    );
    assert!(tickets > 0);
    assert_eq!(same, tickets);
}

/// More matches than the search ranks (2,000 documents): the newest are
/// ranked, relevance first, then activity; an older case needs one more
/// word; a mail stored now is found at once, first.
fn search_ranks_the_newest_matches_of_a_common_word(backend: Backend) {
    let d = deployment(backend);
    let old = mail(
        &d,
        "o1",
        "Eva Paz <eva@tres.example>",
        "Llaves del departamento",
        "Retiro de llaves en oficina y la tasación del inmueble.",
    );
    // 2,100 newer tickets, each with a mail naming the keys once in its
    // text; one in a hundred in its subject too.
    d.execute(
        "INSERT INTO tickets (subject, state, pipeline, priority, mailbox, created_at, updated_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2100) \
         SELECT CASE WHEN i % 100 = 0 THEN 'Llaves ' ELSE 'Consulta ' END || i, 'open', \
                'Soporte', 'medium', 'soporte', \
                (SELECT MIN(updated_at) FROM tickets) - 10000 + i, \
                (SELECT MIN(updated_at) FROM tickets) - 10000 + i \
         FROM n;
         INSERT INTO messages (ticket_id, direction, dedupe_key, subject, body_text, raw, \
                               raw_sha256, size, created_at) \
         SELECT t.id, 'in', 'mid:bulk' || t.id || '@cliente.example', t.subject, \
                'Buenas tardes, quería saber cuándo puedo pasar por las llaves del \
                 departamento que compré, y si tengo que llevar algún documento.', \
                m.raw, m.raw_sha256, m.size, t.created_at \
         FROM tickets t, messages m \
         WHERE t.mailbox = 'soporte' AND t.subject NOT LIKE '%Llaves del%' \
           AND m.id = (SELECT MIN(id) FROM messages);",
    );
    let hits = found(&d, "llaves");
    assert_eq!(hits.len(), 20, "{hits:?}");
    // The newest ticket (the word in its subject too) first; the old
    // ticket, with the word in its subject, is not among the newest 2,000
    // documents, so it is not ranked (the subjects first on both
    // backends, then by activity).
    assert_eq!(hits[0], "T-2101", "{hits:?}");
    assert!(!hits.contains(&old), "{hits:?}");
    // One more word finds it.
    assert_eq!(found(&d, "llaves tasacion"), vec![old.clone()]);
    // A mail stored now is found at once, among the newest.
    let new = mail(
        &d,
        "n1",
        "Iván Río <ivan@cuatro.example>",
        "Llaves",
        "¿Dónde retiro las llaves?",
    );
    let hits = found(&d, "llaves");
    assert!(hits.contains(&new), "{new}: {hits:?}");
    assert_eq!(found(&d, "llaves rio"), vec![new]);
}

/// Who wrote (the ticket's contact) ranks over a mention in a text, even
/// a newer one; a word is found by its plural and gender forms, not by
/// every word it begins.
fn search_ranks_the_contact_over_the_text(backend: Backend) {
    let d = deployment(backend);
    let contact = mail(
        &d,
        "w1",
        "Tomás Rivas <tomas@uno.example>",
        "Consulta",
        "Hola, ¿en qué va mi trámite?",
    );
    let text = mail(
        &d,
        "w2",
        "Elena Soto <elena@dos.example>",
        "Consulta",
        "Hablé ayer con la señora Rivas por el trámite de la casa.",
    );
    assert_eq!(found(&d, "rivas"), vec![contact, text.clone()]);
    assert_eq!(found(&d, "casas"), vec![text.clone()]);
    mail(
        &d,
        "w3",
        "Jaime Ortiz <jaime@tres.example>",
        "Visita",
        "Quiero visitar el castillo del fundo.",
    );
    assert_eq!(found(&d, "casas"), vec![text]);
}

/// A word in few documents is found in all of them, however many newer
/// documents there are: on PostgreSQL, past the newest 16,000 it tests
/// first (`SEARCH_WALK`), through the GIN index.
fn search_finds_a_rare_word_past_the_newest_documents(backend: Backend) {
    let d = deployment(backend);
    let old = mail(
        &d,
        "o1",
        "Eva Paz <eva@tres.example>",
        "Tasación pendiente",
        "Necesito la tasación del inmueble.",
    );
    // 8,100 newer tickets with a mail each: 16,200 newer documents.
    d.execute(
        "INSERT INTO tickets (subject, state, pipeline, priority, mailbox, created_at, updated_at) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8100) \
         SELECT 'Consulta ' || i, 'open', 'Soporte', 'medium', 'soporte', \
                (SELECT MAX(updated_at) FROM tickets) + i, \
                (SELECT MAX(updated_at) FROM tickets) + i \
         FROM n;
         INSERT INTO messages (ticket_id, direction, dedupe_key, subject, body_text, raw, \
                               raw_sha256, size, created_at) \
         SELECT t.id, 'in', 'mid:bulk' || t.id || '@cliente.example', t.subject, \
                'Buenas tardes, quería saber cuándo puedo pasar por las llaves.', \
                m.raw, m.raw_sha256, m.size, t.created_at \
         FROM tickets t, messages m \
         WHERE t.subject LIKE 'Consulta %' AND m.id = (SELECT MIN(id) FROM messages);",
    );
    assert_eq!(found(&d, "tasaciones"), vec![old.clone()]);
    assert_eq!(found(&d, "\"tasación del inmueble\""), vec![old]);
    assert_eq!(found(&d, "llaves").len(), 20);
    assert_ticket_documents_follow_the_view(&d);
}

on_both_backends!(
    search_finds_what_people_remember,
    search_ranks_by_relevance_then_activity,
    search_ranks_the_newest_matches_of_a_common_word,
    search_ranks_the_contact_over_the_text,
    search_finds_a_rare_word_past_the_newest_documents,
);
