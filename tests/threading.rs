//! Follow-ups, strangers, robots and the ticket lifecycle, end to end
//! through `buzon ingest` and the agent commands, on both backends.

mod common;

use std::path::PathBuf;

use common::{Backend, Deployment, ticket_numbers};

const CUSTOMER: &str = "Felipe Araya <felipe.araya@gmail.example>";

/// The agent who works the tickets of these tests.
const CAMILA: &str = "[people.camila]\nname = \"Camila Rojas\"\nrole = \"admin\"\n";

fn write_mail(d: &Deployment, name: &str, headers: &[(&str, &str)], body: &str) -> PathBuf {
    let mut text = String::new();
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    text.push_str(body);
    let path = d.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn first_mail(d: &Deployment) -> PathBuf {
    write_mail(
        d,
        "first.eml",
        &[
            ("From", CUSTOMER),
            ("To", "soporte@tupatrimonio.example"),
            (
                "Subject",
                "Documento observado por Notaría - Pedido N° 75321",
            ),
            ("Message-ID", "<m1@gmail.example>"),
            ("Date", "Mon, 2 Nov 2026 10:00:00 -0300"),
        ],
        "Hola, quiero continuar con el documento tal como está.\r\n",
    )
}

/// Ingests the first mail; returns its ticket and our acknowledgement's
/// Message-ID and subject.
fn open_ticket(d: &Deployment) -> (String, String, String) {
    let out = d.ingest("soporte", &first_mail(d));
    let number = ticket_numbers(&out)[0].clone();
    let ack = std::fs::read(&d.outbox_files()[0]).unwrap();
    let ack = buzon::parse::parse(&ack, 1 << 20).unwrap();
    (number, ack.message_id.unwrap(), ack.subject)
}

fn state_of(d: &Deployment, number: &str) -> String {
    d.show_json(number)["ticket"]["state"]
        .as_str()
        .unwrap()
        .to_string()
}

fn reply_to_acknowledgement_joins_with_or_without_in_reply_to(backend: Backend) {
    let d = Deployment::new(backend);
    let (number, ack_id, ack_subject) = open_ticket(&d);
    let with_header = write_mail(
        &d,
        "r1.eml",
        &[
            ("From", CUSTOMER),
            ("Subject", &format!("RE: {ack_subject}")),
            ("Message-ID", "<m2@gmail.example>"),
            ("In-Reply-To", &format!("<{ack_id}>")),
        ],
        "Adjunto lo que faltaba.\r\n",
    );
    let out = d.ingest("soporte", &with_header);
    assert_eq!(ticket_numbers(&out), std::slice::from_ref(&number), "{out}");
    assert!(out.contains("follow-up appended"), "{out}");
    // Outlook drops In-Reply-To; the tag in a mangled subject still threads.
    let tag_only = write_mail(
        &d,
        "r2.eml",
        &[
            ("From", CUSTOMER),
            (
                "Subject",
                &format!("RV:  Re: [# {}] algo más", number.replace('-', " - ")),
            ),
            ("Message-ID", "<m3@gmail.example>"),
        ],
        "Otra consulta sobre lo mismo.\r\n",
    );
    let out = d.ingest("soporte", &tag_only);
    assert_eq!(ticket_numbers(&out), std::slice::from_ref(&number), "{out}");
    assert_eq!(d.tickets_json().len(), 1);
    let shown = d.show_json(&number);
    let inbound = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .count();
    assert_eq!(inbound, 3);
}

fn stranger_with_real_tag_and_reference_gets_a_separate_ticket(backend: Backend) {
    let d = Deployment::new(backend);
    let (number, ack_id, ack_subject) = open_ticket(&d);
    let stranger = write_mail(
        &d,
        "stranger.eml",
        &[
            ("From", "Mallory <mallory@evil.example>"),
            ("Subject", &format!("RE: {ack_subject}")),
            ("Message-ID", "<x1@evil.example>"),
            ("References", &format!("<m1@gmail.example> <{ack_id}>")),
            ("In-Reply-To", &format!("<{ack_id}>")),
        ],
        "Envíenme el documento a esta dirección.\r\n",
    );
    let out = d.ingest("soporte", &stranger);
    let other = ticket_numbers(&out)[0].clone();
    assert_ne!(other, number, "{out}");
    let shown = d.show_json(&other);
    assert_eq!(shown["ticket"]["needs_review"], true);
    let linked = shown["ticket"]["linked_ticket"].as_i64().unwrap();
    assert_eq!(format!("T-{linked}"), number);
    // The original ticket is untouched: still one inbound message.
    let original = d.show_json(&number);
    let inbound = original["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .count();
    assert_eq!(inbound, 1);
    // The stranger's acknowledgement reveals nothing of the original.
    let files = d.outbox_files();
    let ack = std::fs::read_to_string(files.last().unwrap()).unwrap();
    assert!(ack.contains(&other));
    assert!(!ack.contains(&format!("[#{number}]")), "{ack}");
}

fn forged_message_id_of_ours_does_not_thread(backend: Backend) {
    let d = Deployment::new(backend);
    let (number, ack_id, _) = open_ticket(&d);
    // Same shape as ours, wrong signature.
    let at = ack_id.find('@').unwrap();
    let forged = format!(
        "{}{}",
        &ack_id[..at - 1],
        if ack_id.as_bytes()[at - 1] == b'0' {
            "1"
        } else {
            "0"
        }
    ) + &ack_id[at..];
    let mail = write_mail(
        &d,
        "forged.eml",
        &[
            ("From", CUSTOMER),
            ("Subject", "otra cosa"),
            ("Message-ID", "<m9@gmail.example>"),
            ("In-Reply-To", &format!("<{forged}>")),
        ],
        "hola\r\n",
    );
    let out = d.ingest("soporte", &mail);
    assert!(out.contains("created"), "{out}");
    assert_ne!(ticket_numbers(&out)[0], number);
}

fn out_of_office_reply_changes_nothing(backend: Backend) {
    let d = Deployment::with_extra(backend, CAMILA);
    let (number, ack_id, ack_subject) = open_ticket(&d);
    d.ok(&[
        "tickets",
        "state",
        &number,
        "waiting_on_contact",
        "--as",
        "camila",
    ]);
    let ooo = write_mail(
        &d,
        "ooo.eml",
        &[
            ("From", CUSTOMER),
            ("Subject", &format!("Respuesta automática: {ack_subject}")),
            ("Message-ID", "<ooo1@gmail.example>"),
            ("In-Reply-To", &format!("<{ack_id}>")),
            ("Auto-Submitted", "auto-replied"),
        ],
        "Estaré fuera de la oficina hasta el lunes.\r\n",
    );
    let out = d.ingest("soporte", &ooo);
    assert_eq!(ticket_numbers(&out), std::slice::from_ref(&number), "{out}");
    assert_eq!(state_of(&d, &number), "waiting_on_contact");
    // Closed tickets are not reopened by robots either.
    d.ok(&["tickets", "close", &number, "--outcome", "success"]);
    let ooo2 = write_mail(
        &d,
        "ooo2.eml",
        &[
            ("From", CUSTOMER),
            ("Subject", &format!("Automatic reply: {ack_subject}")),
            ("Message-ID", "<ooo2@gmail.example>"),
            ("In-Reply-To", &format!("<{ack_id}>")),
            ("Auto-Submitted", "auto-replied"),
        ],
        "Out of office.\r\n",
    );
    let out = d.ingest("soporte", &ooo2);
    assert_eq!(ticket_numbers(&out), std::slice::from_ref(&number), "{out}");
    assert_eq!(state_of(&d, &number), "done");
}

fn reply_to_closed_ticket_reopens_inside_window_and_links_after(backend: Backend) {
    let d = Deployment::new(backend);
    let (number, ack_id, ack_subject) = open_ticket(&d);
    d.ok(&[
        "tickets",
        "close",
        &number,
        "--outcome",
        "success",
        "--note",
        "Documento enviado a notaría.",
    ]);
    assert_eq!(state_of(&d, &number), "done");
    let reply = |name: &str, id: &str| {
        write_mail(
            &d,
            name,
            &[
                ("From", CUSTOMER),
                ("Subject", &format!("RE: {ack_subject}")),
                ("Message-ID", id),
                ("In-Reply-To", &format!("<{ack_id}>")),
            ],
            "Una pregunta más.\r\n",
        )
    };
    let out = d.ingest("soporte", &reply("a.eml", "<again1@gmail.example>"));
    assert!(out.contains("ticket reopened"), "{out}");
    assert_eq!(ticket_numbers(&out), std::slice::from_ref(&number));
    assert_eq!(state_of(&d, &number), "waiting_on_us");

    // Close again; with a zero-day window the next reply is a new ticket.
    d.ok(&["tickets", "close", &number, "--outcome", "failure"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let out = d
        .cmd()
        .env("BUZON_DEPLOYMENT__REOPEN_DAYS", "0")
        .args(["ingest", "--mailbox", "soporte"])
        .arg(reply("b.eml", "<again2@gmail.example>"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let new = ticket_numbers(&out)[0].clone();
    assert_ne!(new, number, "{out}");
    let shown = d.show_json(&new);
    assert_eq!(
        shown["ticket"]["linked_ticket"]
            .as_i64()
            .unwrap()
            .to_string(),
        number[2..]
    );
    assert_eq!(shown["ticket"]["needs_review"], false);
    assert_eq!(state_of(&d, &number), "done");
}

fn agent_commands_change_the_ticket_and_mail_the_contact(backend: Backend) {
    let d = Deployment::with_extra(backend, CAMILA);
    let (number, _, _) = open_ticket(&d);
    d.ok(&[
        "tickets",
        "assign",
        &number,
        "camila",
        "--as",
        "supervisora",
    ]);
    d.ok(&[
        "tickets",
        "comment",
        &number,
        "Revisar criterios con gerencia",
        "--as",
        "camila",
    ]);
    let out = d.agent_mail_ok(
        "reply",
        &number,
        "Hola Felipe, necesitamos el RUT del segundo firmante.\n",
        "camila",
    );
    assert!(out.contains("respuesta al cliente en cola"), "{out}");
    let shown = d.show_json(&number);
    assert_eq!(shown["ticket"]["owner"], "camila");
    assert_eq!(shown["ticket"]["state"], "waiting_on_contact");
    let events = d.events(&number, "actor");
    assert!(
        events.contains(&("assigned".into(), "agent:supervisora".into())),
        "{events:?}"
    );
    assert!(
        events.contains(&("comment".into(), "agent:camila".into())),
        "{events:?}"
    );
    // The reply went out threaded under the customer's mail, with the tag.
    let files = d.outbox_files();
    assert_eq!(files.len(), 2);
    let reply = buzon::parse::parse(&std::fs::read(&files[1]).unwrap(), 1 << 20).unwrap();
    assert_eq!(reply.in_reply_to, ["m1@gmail.example".to_string()]);
    assert!(
        reply.subject.contains(&format!("[#{number}]")),
        "{}",
        reply.subject
    );
    assert!(reply.text.contains("segundo firmante"));
    assert_eq!(reply.to[0].address, "felipe.araya@gmail.example");
    // The customer answers the reply: back to us.
    let answer = write_mail(
        &d,
        "answer.eml",
        &[
            ("From", CUSTOMER),
            ("Subject", &format!("Re: {}", reply.subject)),
            ("Message-ID", "<m5@gmail.example>"),
            ("In-Reply-To", &format!("<{}>", reply.message_id.unwrap())),
        ],
        "El RUT es 12.345.678-9.\r\n",
    );
    d.ingest("soporte", &answer);
    assert_eq!(state_of(&d, &number), "waiting_on_us");
    d.ok(&["tickets", "close", &number, "--outcome", "success"]);
    let closing = std::fs::read_to_string(d.outbox_files().last().unwrap()).unwrap();
    assert!(
        closing.contains("finalizada con =C3=A9xito") || closing.contains("finalizada con éxito"),
        "{closing}"
    );
    let done = d.ok(&["tickets", "list", "--state", "done", "--format", "json"]);
    assert!(done.contains(&number));
}

/// Seed 000's "plantillas": an agent answers with a template of the
/// team's, filled in for the ticket; the answer keeps the ticket's subject
/// (and thread), not the template's Subject line.
fn an_agent_replies_with_a_team_template(backend: Backend) {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tupatrimonio/templates");
    let d = Deployment::with_extra(
        backend,
        &format!("[templates]\ndir = \"{}\"\n\n{CAMILA}", example.display()),
    );
    let (number, _, _) = open_ticket(&d);
    let out = d.ok(&[
        "tickets",
        "reply",
        &number,
        "--template",
        "observado-consultar",
        "--note",
        "la fecha del documento es posterior a la de firma",
        "--as",
        "camila",
    ]);
    assert!(out.contains("respuesta al cliente en cola"), "{out}");
    let files = d.outbox_files();
    let reply =
        buzon::parse::parse(&std::fs::read(files.last().unwrap()).unwrap(), 1 << 20).unwrap();
    assert!(
        reply
            .subject
            .starts_with("Re: Documento observado por Notaría"),
        "{}",
        reply.subject
    );
    assert!(
        reply.subject.ends_with(&format!("[#{number}]")),
        "{}",
        reply.subject
    );
    assert!(reply.text.contains("Hola Felipe Araya:"), "{}", reply.text);
    assert!(
        reply.text.contains(&format!("solicitud {number}")),
        "{}",
        reply.text
    );
    assert!(
        reply
            .text
            .contains("Observación: la fecha del documento es posterior"),
        "{}",
        reply.text
    );
    assert_eq!(state_of(&d, &number), "waiting_on_contact");
    // A template that does not exist is named with the ones that do.
    let bad = d.run(&["tickets", "reply", &number, "--template", "observado"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("no hay una plantilla 'observado'") && err.contains("observado-consultar"),
        "{err}"
    );
    // A file and a template at once is refused before anything is sent.
    let both = d.run(&[
        "tickets",
        "reply",
        &number,
        "--template",
        "closing",
        "--body-file",
        "x.txt",
    ]);
    assert!(!both.status.success());
    assert_eq!(d.outbox_files().len(), files.len());
}

on_both_backends!(
    an_agent_replies_with_a_team_template,
    reply_to_acknowledgement_joins_with_or_without_in_reply_to,
    stranger_with_real_tag_and_reference_gets_a_separate_ticket,
    forged_message_id_of_ours_does_not_thread,
    out_of_office_reply_changes_nothing,
    reply_to_closed_ticket_reopens_inside_window_and_links_after,
    agent_commands_change_the_ticket_and_mail_the_contact,
    same_customer_same_order_joins_the_ticket,
    keys_thread_within_the_customers_domain_when_asked,
);

/// A deployment routing with the TuPatrimonio example's rules, which
/// extract `order` (and the copy/protocolization suffix) from the mail.
fn with_example_rules(backend: Backend) -> Deployment {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tupatrimonio");
    Deployment::with_extra(
        backend,
        &format!(
            "[rules]\ndir = \"{}\"\n\n[templates]\ndir = \"{}\"\n\n\
             [people.gerente-operaciones]\naddress = \"gerencia@tupatrimonio.example\"\n",
            rules.join("rules").display(),
            rules.join("templates").display()
        ),
    )
}

fn same_customer_same_order_joins_the_ticket(backend: Backend) {
    let d = with_example_rules(backend);
    let out = d.ingest("soporte", &first_mail(&d));
    let number = ticket_numbers(&out)[0].clone();
    let shown = d.show_json(&number);
    let keys = &shown["ticket"]["keys"];
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "order" && k["value"] == "75321"),
        "{keys:#}"
    );
    // A fresh mail (no threading headers, no tag) about the same order,
    // written as the protocolization copy 75321_2.
    let again = write_mail(
        &d,
        "again.eml",
        &[
            ("From", CUSTOMER),
            ("Subject", "consulta por el pedido 75321_2"),
            ("Message-ID", "<m7@gmail.example>"),
        ],
        "Hola, ¿ya enviaron a notaria la protocolizacion del pedido 75321_2?\r\n",
    );
    let out = d.ingest("soporte", &again);
    assert_eq!(ticket_numbers(&out), std::slice::from_ref(&number), "{out}");
    assert!(out.contains("follow-up appended"), "{out}");
    // Another customer naming the same order gets a ticket of their own.
    let other = write_mail(
        &d,
        "other.eml",
        &[
            ("From", "Otra Persona <otra@hotmail.example>"),
            ("Subject", "Pedido N° 75321"),
            ("Message-ID", "<o1@hotmail.example>"),
        ],
        "Consulta sobre el pedido 75321.\r\n",
    );
    let out = d.ingest("soporte", &other);
    assert_ne!(ticket_numbers(&out)[0], number, "{out}");
    let listed = d.ok(&[
        "tickets",
        "list",
        "--key",
        "order=75321",
        "--format",
        "json",
    ]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["tickets"].as_array().unwrap().len(), 2);
}

/// `thread_keys_by_domain`: a colleague writing from the customer's domain
/// about the same order is led to its ticket (and, not being a participant,
/// gets a ticket of their own linked to it, for review); an address that
/// only ends the same way, or another domain, is not.
fn keys_thread_within_the_customers_domain_when_asked(backend: Backend) {
    let d = with_example_rules(backend);
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(
        &d.config,
        text.replacen(
            "[deployment]\n",
            "[deployment]\nthread_keys_by_domain = true\n",
            1,
        ),
    )
    .unwrap();
    let ingest = |name: &str, from: &str, id: &str| {
        let path = write_mail(
            &d,
            name,
            &[
                ("From", from),
                ("Subject", "Documento observado - Pedido N° 75321"),
                ("Message-ID", id),
            ],
            "Hola, ¿cómo va el pedido 75321?\r\n",
        );
        let out = d.ingest("soporte", &path);
        let number = ticket_numbers(&out)[0].clone();
        let shown = d.show_json(&number)["ticket"].clone();
        (number, shown["linked_ticket"].as_i64())
    };
    let (first, _) = ingest(
        "a.eml",
        "Ana <ana@notariasur.example>",
        "<a1@notariasur.example>",
    );
    let first: i64 = first.trim_start_matches("T-").parse().unwrap();
    let (_, colleague) = ingest(
        "b.eml",
        "Beto <beto@notariasur.example>",
        "<b1@notariasur.example>",
    );
    assert_eq!(colleague, Some(first), "the same domain finds the ticket");
    let (_, lookalike) = ingest(
        "c.eml",
        "Carla <carla@xnotariasur.example>",
        "<c1@xnotariasur.example>",
    );
    assert_eq!(
        lookalike, None,
        "a domain that only ends the same way does not"
    );
    let (_, other) = ingest("d.eml", "Dora <dora@otra.example>", "<d1@otra.example>");
    assert_eq!(other, None);
}
