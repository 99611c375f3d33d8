//! Agents answer from their mail client, against the real servers: buzon
//! reads the shared mailbox over IMAP (a private Dovecot), sends through the
//! harness's Postfix, and the agents' and the customer's mail is read back
//! from the harness's Dovecot. An agent replies to their notification
//! (submitted through Postfix) and the customer receives exactly the
//! agent's words, threaded, from the shared address; commands, refusals,
//! forgeries and out-of-office answers reach no customer.

mod common;

use std::time::Duration;

use buzon::parse::{ParsedMail, parse};
use common::inbox::{Stack, tag};
use common::mailstack::MailStack;
use common::{Backend, Deployment, SUPERVISOR};

const WAIT: Duration = Duration::from_secs(15);
const QUIET: Duration = Duration::from_millis(800);

struct Team {
    d: Deployment,
    stack: Stack,
    imap: MailStack,
    t: String,
}

impl Team {
    fn new(backend: Backend, security: &str) -> Team {
        let stack = Stack::from_env();
        let imap = MailStack::start();
        let t = tag("agent");
        let d = Deployment::new(backend);
        let secret = d.dir.path().join("soporte.pass");
        std::fs::write(&secret, "soporte-pass\n").unwrap();
        let text = format!(
            "[deployment]\nname = \"Soporte Tu Patrimonio\"\ntime_zone = \"America/Santiago\"\n\
             ticket_prefix = \"TP-\"\n\n[database]\nurl = \"{db}\"\n\n\
             [outbox]\nretry_schedule = [\"1s\"]\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {smtp}\ntls = \"none\"\n\n\
             [daemon]\nlisten = \"\"\noutbox_poll_seconds = 1\n\n{security}\n\
             [accounts.soporte]\nhost = \"127.0.0.1\"\nport = {imap}\ntls = \"none\"\n\
             username = \"soporte@example.test\"\npassword_file = \"{secret}\"\n\
             folders = [{{ folder = \"INBOX\", mailbox = \"soporte\" }}]\n\n\
             [mailboxes.soporte]\naddress = \"soporte+{t}@example.test\"\n\
             display_name = \"Soporte Tu Patrimonio\"\npipeline = \"Soporte\"\nowner = \"alonso\"\n\n\
             [people.alonso]\nname = \"Alonso Pérez\"\naddress = \"support+alonso-{t}@example.test\"\nrole = \"agent\"\n\n\
             [people.milagros]\nname = \"Milagros Muñoz\"\naddress = \"support+milagros-{t}@example.test\"\nrole = \"agent\"\n\n\
             {SUPERVISOR}",
            db = d.database_url,
            smtp = stack.smtp_port,
            imap = imap.port("IMAP_PORT"),
            secret = secret.display(),
        );
        std::fs::write(&d.config, text).unwrap();
        Team { d, stack, imap, t }
    }

    fn address(&self, who: &str) -> String {
        match who {
            "customer" => format!("customer+{}@example.test", self.t),
            "soporte" => format!("soporte+{}@example.test", self.t),
            person => format!("support+{person}-{}@example.test", self.t),
        }
    }

    /// Puts `raw` in the shared mailbox's INBOX, as delivery would.
    fn deliver(&self, raw: &[u8]) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut s = self.imap.session("soporte").await;
            s.append("INBOX", raw).await;
            s.logout().await;
        });
    }

    /// One pass of the daemon: read the mailbox, carry out, deliver.
    fn drain(&self) {
        let out = self.d.run(&["run", "--once"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn inbox(&self, user: &str, who: &str, n: usize) -> Vec<ParsedMail> {
        self.stack
            .wait_for(user, &self.address(who), n, WAIT)
            .iter()
            .map(|raw| parse(raw, 1 << 22).unwrap())
            .collect()
    }

    fn settled(&self, user: &str, who: &str) -> Vec<ParsedMail> {
        self.stack
            .settled(user, &self.address(who), QUIET)
            .iter()
            .map(|raw| parse(raw, 1 << 22).unwrap())
            .collect()
    }

    /// The agent's reply, submitted through Postfix to the shared address,
    /// then found in the shared address's mailbox and handed to buzon's.
    fn agent_replies(&self, who: &str, answering: &ParsedMail, body: &str, extra: &str) {
        self.agent_replies_with(who, answering, body, extra, None)
    }

    /// As `agent_replies`, with a PDF named `file` attached.
    fn agent_replies_with(
        &self,
        who: &str,
        answering: &ParsedMail,
        body: &str,
        extra: &str,
        file: Option<&str>,
    ) {
        let id = format!(
            "{}-{}@{who}.example",
            self.t,
            buzon::parse::sha256_hex(body.as_bytes())
        );
        let notification = answering.message_id.clone().unwrap();
        let content = match file {
            None => format!(
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
            ),
            Some(name) => format!(
                "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n\
                 --b\r\nContent-Type: application/pdf; name=\"{name}\"\r\n\
                 Content-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcOkw7zDtsOfCg==\r\n--b--\r\n"
            ),
        };
        let raw = format!(
            "From: {who} <{from}>\r\nTo: {to}\r\nSubject: RE: {subject}\r\n\
             Message-ID: <{id}>\r\nIn-Reply-To: <{notification}>\r\nReferences: <{notification}>\r\n\
             Date: Mon, 7 Dec 2026 10:05:00 -0300\r\n{extra}MIME-Version: 1.0\r\n{content}",
            from = self.address(who),
            to = self.address("soporte"),
            subject = answering.subject,
        );
        self.stack
            .send(&self.address(who), &self.address("soporte"), raw.as_bytes());
        let arrived = self
            .stack
            .wait_for("soporte", &self.address("soporte"), 1, WAIT)
            .into_iter()
            .find(|m| String::from_utf8_lossy(m).contains(&id))
            .or_else(|| {
                // Several replies share the address: wait for this one.
                let deadline = std::time::Instant::now() + WAIT;
                loop {
                    let all = self.stack.fetch("soporte", &self.address("soporte"));
                    if let Some(m) = all
                        .into_iter()
                        .find(|m| String::from_utf8_lossy(m).contains(&id))
                    {
                        return Some(m);
                    }
                    if std::time::Instant::now() > deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
            .expect("the agent's reply went through Postfix");
        self.deliver(&arrived);
    }

    fn history(&self, number: &str) -> Vec<(String, String, String)> {
        self.d.show_json(number)["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["actor"].as_str().unwrap().to_string(),
                    e["detail"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn customer_mail(team: &Team) -> Vec<u8> {
    format!(
        "From: Ana Pérez <{}>\r\nTo: {}\r\nSubject: Documento observado por Notaría\r\n\
         Message-ID: <{}-cliente@cliente.example>\r\nDate: Mon, 7 Dec 2026 10:00:00 -0300\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nHola, la notaría observó mi documento del pedido 75321.\r\n",
        team.address("customer"),
        team.address("soporte"),
        team.t
    )
    .into_bytes()
}

fn an_agent_answers_the_customer_by_replying_to_the_notification(backend: Backend) {
    let team = Team::new(backend, "");
    team.deliver(&customer_mail(&team));
    team.drain();
    let notified = team.inbox("support", "alonso", 1);
    assert_eq!(notified.len(), 1, "the owner is notified");
    let notification = &notified[0];
    assert!(
        notification.text.contains("responda a este correo"),
        "{}",
        notification.text
    );
    assert_eq!(
        notification.reply_to.as_ref().map(|a| a.address.clone()),
        Some(team.address("soporte"))
    );
    let n = "TP-1";

    // The reply, with the client's attribution and the quoted notification.
    let words = "Hola Ana, ya enviamos el documento corregido a la notaría.\n\nSaludos,\nAlonso";
    let body = format!(
        "{words}\n\nEl lun, 7 dic 2026 a las 10:02, Soporte Tu Patrimonio <{}> escribió:\n\n> {}\n",
        team.address("soporte"),
        notification.text.lines().next().unwrap_or("")
    );
    team.agent_replies_with(
        "alonso",
        notification,
        &body,
        "",
        Some("escritura-corregida.pdf"),
    );
    team.drain();
    let customer = team.inbox("customer", "customer", 2);
    let reply = customer
        .iter()
        .find(|m| m.text.contains("documento corregido"))
        .expect("the customer receives the agent's words");
    assert_eq!(reply.text.trim_end(), words, "only the agent's new words");
    let files: Vec<&str> = reply.attachments.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        files,
        vec!["escritura-corregida.pdf"],
        "the agent's file goes along"
    );
    assert!(reply.attachments[0].content.starts_with(b"%PDF-1.4"));
    assert_eq!(
        reply.from.as_ref().unwrap().address,
        team.address("soporte")
    );
    assert!(
        reply.subject.contains(&format!("[#{n}]")),
        "{}",
        reply.subject
    );
    assert!(
        reply
            .in_reply_to
            .contains(&format!("{}-cliente@cliente.example", team.t))
    );
    let shown = team.d.show_json(n);
    assert_eq!(shown["ticket"]["state"], "waiting_on_contact");
    // JSON times are RFC 3339 UTC with milliseconds.
    assert!(
        shown["ticket"]["first_response_at"]
            .as_str()
            .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()),
        "{shown:#}"
    );
    let history = team.history(n);
    assert!(
        history
            .iter()
            .any(|(k, a, _)| k == "reply" && a == "agent:alonso"),
        "{history:?}"
    );

    // #nota stays internal.
    team.agent_replies(
        "alonso",
        notification,
        "#nota\nLlamé a la notaría: lo revisan el martes.",
        "",
    );
    team.drain();
    assert_eq!(
        team.settled("customer", "customer").len(),
        2,
        "nothing more to the customer"
    );
    assert!(
        team.history(n).iter().any(|(k, a, d)| k == "comment"
            && a == "agent:alonso"
            && d.contains("revisan el martes"))
    );

    // Milagros answers an old notification of hers with #asignar: an agent
    // may not give away someone else's ticket; she is told why by mail.
    team.d.ok(&["tickets", "assign", n, "milagros"]);
    team.d.ok(&["tickets", "assign", n, "alonso"]);
    let hers = team.inbox("support", "milagros", 1);
    team.agent_replies("milagros", &hers[0], "#asignar milagros\nMe lo quedo.", "");
    team.drain();
    let told = team.inbox("support", "milagros", 2);
    let why = told
        .iter()
        .find(|m| m.subject.contains("No se aplicó"))
        .expect("milagros is told why");
    assert!(
        why.text.contains("está a cargo de Alonso Pérez"),
        "{}",
        why.text
    );
    assert_eq!(why.header("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(team.d.show_json(n)["ticket"]["owner"], "alonso");
    assert_eq!(team.settled("customer", "customer").len(), 2);

    // A mail with Alonso's From answering Milagros's notification is kept
    // on the ticket, flagged, and reaches no customer.
    team.agent_replies(
        "alonso",
        &hers[0],
        "Hola Ana, esto no debería llegarle.",
        "",
    );
    team.drain();
    assert_eq!(team.settled("customer", "customer").len(), 2);
    assert!(
        team.history(n)
            .iter()
            .any(|(k, _, d)| k == "staff_mail_untrusted" && d.contains("alonso"))
    );

    // An out-of-office answer to a notification reaches no customer.
    team.agent_replies(
        "alonso",
        notification,
        "Estoy fuera de la oficina hasta el lunes.",
        "Auto-Submitted: auto-replied\r\n",
    );
    team.drain();
    assert_eq!(team.settled("customer", "customer").len(), 2);

    // #cerrar closes with the outcome; the customer gets the closing mail.
    team.agent_replies(
        "alonso",
        notification,
        "#cerrar\nDocumento aprobado por la notaría.",
        "",
    );
    team.drain();
    let shown = team.d.show_json(n);
    assert_eq!(shown["ticket"]["state"], "done");
    assert_eq!(shown["ticket"]["outcome"], "success");
    let customer = team.inbox("customer", "customer", 3);
    assert!(
        customer
            .iter()
            .any(|m| m.text.contains("Documento aprobado por la notaría"))
    );
}

/// With `[security] trusted_authserv_id`, a reply the trusted server did
/// not vouch for reaches no customer.
fn an_unvouched_reply_reaches_no_customer(backend: Backend) {
    let team = Team::new(
        backend,
        "[security]\ntrusted_authserv_id = \"mx.tupatrimonio.example\"\n",
    );
    team.deliver(&customer_mail(&team));
    team.drain();
    let notification = &team.inbox("support", "alonso", 1)[0];
    // A header from another server, as a forger would write it.
    team.agent_replies(
        "alonso",
        notification,
        "Hola Ana, transfiera a esta otra cuenta.",
        "Authentication-Results: mx.atacante.example; dmarc=pass header.from=example.test\r\n",
    );
    team.drain();
    assert_eq!(
        team.settled("customer", "customer").len(),
        1,
        "only the acknowledgement"
    );
    assert!(
        team.history("TP-1")
            .iter()
            .any(|(k, _, d)| k == "staff_mail_untrusted" && d.contains("Authentication-Results"))
    );
    // The trusted server's pass lets it through, with the daemon running
    // (IDLE on the shared mailbox, the outbox worker carrying it out).
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
        .env_remove("BUZON_DATABASE_URL")
        .env_remove("BUZON_OUTBOX_DIR")
        .arg("--config")
        .arg(&team.d.config)
        .arg("run")
        .env("BUZON_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(
            std::fs::File::create(team.d.dir.path().join("run.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    team.agent_replies(
        "alonso",
        notification,
        "Hola Ana, recibimos su documento.",
        "Authentication-Results: mx.tupatrimonio.example; dkim=pass header.d=example.test; dmarc=pass header.from=example.test\r\n",
    );
    let customer = team.inbox("customer", "customer", 2);
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        customer
            .iter()
            .any(|m| m.text.contains("recibimos su documento"))
    );
}

on_both_backends!(
    an_agent_answers_the_customer_by_replying_to_the_notification,
    an_unvouched_reply_reaches_no_customer,
);
