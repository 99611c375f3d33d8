//! Builds the mails buzon sends, starting with the acknowledgement.
//!
//! Every outgoing mail carries a Message-ID of ours (recorded in the outbox
//! and later used for threading), `In-Reply-To`/`References` to the
//! customer's mail, and the RFC 3834 headers that tell other robots not to
//! answer (`Auto-Submitted`, `X-Auto-Response-Suppress`, `Precedence`).

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, SinglePart};
use minijinja::{Environment, UndefinedBehavior, context};

use crate::parse::collapse_ws;
use crate::store::OutgoingMail;

/// Why a mail could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid address '{address}': {reason}")]
    Address { address: String, reason: String },
    #[error("template {name}: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("cannot build message: {0}")]
    Build(#[from] lettre::error::Error),
}

const ACK_SUBJECT: &str = "{{ tag }} Recibimos su solicitud: {{ subject }}";
const ACK_BODY: &str = "\
Hola{% if name %} {{ name }}{% endif %}:

Recibimos su solicitud «{{ subject }}» y la registramos con el número {{ ticket }}.
{% if owner %}La atenderá {{ owner }}.
{% endif %}
Si desea agregar información, responda a este correo sin cambiar el asunto
(debe conservar {{ tag }}).

Saludos cordiales,
{{ team }}

--
Este es un mensaje automático de confirmación.
";

/// What an acknowledgement needs to know.
pub struct AckContext<'a> {
    pub team: &'a str,
    /// Human number, e.g. `T-1042`.
    pub ticket: &'a str,
    pub from_address: &'a str,
    pub from_name: &'a str,
    pub to_address: &'a str,
    pub to_name: Option<&'a str>,
    pub subject: &'a str,
    pub pipeline: &'a str,
    pub owner: Option<&'a str>,
    pub priority: &'a str,
    /// The customer's Message-ID (no brackets), to thread under it.
    pub in_reply_to: Option<&'a str>,
    /// The customer's References, to keep the chain.
    pub references: &'a [String],
    /// Our Message-ID for this mail (signed, see `thread::IdSigner`).
    pub message_id: String,
}

/// The subject tag that identifies a ticket: `[#T-1042]`.
pub fn ticket_tag(ticket: &str) -> String {
    format!("[#{ticket}]")
}

/// A mail ready to be built: who, what, and where it threads.
pub struct MailParts<'a> {
    pub kind: &'a str,
    pub message_id: String,
    pub from_address: &'a str,
    pub from_name: &'a str,
    /// (address, display name); the first is `To`, the rest `Cc`.
    pub to: Vec<(String, Option<String>)>,
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    /// Automatic mail (acknowledgements, notifications) carries the RFC 3834
    /// headers; a person's reply sent through buzon does not.
    pub automatic: bool,
}

/// The acknowledgement of a new ticket.
pub fn acknowledgement(ctx: AckContext<'_>) -> Result<OutgoingMail, ComposeError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let tag = ticket_tag(ctx.ticket);
    let vars = context! {
        ticket => ctx.ticket,
        tag => tag,
        subject => if ctx.subject.is_empty() { "(sin asunto)" } else { ctx.subject },
        name => ctx.to_name.unwrap_or(""),
        team => ctx.team,
        pipeline => ctx.pipeline,
        owner => ctx.owner.unwrap_or(""),
        priority => ctx.priority,
    };
    let render = |name: &str, source: &str| {
        env.render_str(source, &vars)
            .map_err(|source| ComposeError::Template {
                name: name.to_string(),
                source,
            })
    };
    let subject = render("acknowledgement subject", ACK_SUBJECT)?;
    let body = render("acknowledgement body", ACK_BODY)?;
    build(MailParts {
        kind: "acknowledgement",
        message_id: ctx.message_id,
        from_address: ctx.from_address,
        from_name: ctx.from_name,
        to: vec![(ctx.to_address.to_string(), ctx.to_name.map(str::to_string))],
        subject,
        body,
        in_reply_to: ctx.in_reply_to,
        references: ctx.references,
        automatic: true,
    })
}

/// Builds any outgoing mail: our Message-ID, threading headers, and the
/// loop-protection headers when it is automatic.
pub fn build(parts: MailParts<'_>) -> Result<OutgoingMail, ComposeError> {
    let subject = collapse_ws(&parts.subject);
    let from = mailbox(parts.from_address, Some(parts.from_name))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .reply_to(from)
        .subject(subject.clone())
        .message_id(Some(format!("<{}>", parts.message_id)));
    for (i, (address, name)) in parts.to.iter().enumerate() {
        let mb = mailbox(address, name.as_deref())?;
        builder = if i == 0 {
            builder.to(mb)
        } else {
            builder.cc(mb)
        };
    }
    if parts.automatic {
        builder = builder
            .raw_header(header("Auto-Submitted", "auto-replied"))
            .raw_header(header("X-Auto-Response-Suppress", "All"))
            .raw_header(header("Precedence", "auto_reply"));
    }
    if let Some(parent) = parts.in_reply_to {
        let mut chain: Vec<String> = parts
            .references
            .iter()
            .filter(|r| r.as_str() != parent)
            .map(|r| format!("<{r}>"))
            .collect();
        chain.push(format!("<{parent}>"));
        builder = builder
            .in_reply_to(format!("<{parent}>"))
            .references(chain.join(" "));
    }
    let message = builder.singlepart(
        SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(parts.body.clone()),
    )?;
    Ok(OutgoingMail {
        kind: parts.kind.to_string(),
        message_id: parts.message_id,
        mail_from: parts.from_address.to_string(),
        rcpt_to: parts.to.into_iter().map(|(a, _)| a).collect(),
        raw: message.formatted(),
        subject,
        body_text: parts.body,
    })
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

fn mailbox(address: &str, name: Option<&str>) -> Result<Mailbox, ComposeError> {
    let parsed = address
        .parse()
        .map_err(|e: lettre::address::AddressError| ComposeError::Address {
            address: address.to_string(),
            reason: e.to_string(),
        })?;
    Ok(Mailbox::new(
        name.filter(|n| !n.is_empty()).map(str::to_string),
        parsed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    #[test]
    fn acknowledgement_threads_and_protects_against_loops() {
        let refs = vec!["a@c.example".to_string()];
        let ack = acknowledgement(AckContext {
            team: "Soporte Tu Patrimonio",
            ticket: "T-42",
            from_address: "soporte@tp.example",
            from_name: "Soporte",
            to_address: "ana@cliente.example",
            to_name: Some("Ana Pérez"),
            subject: "Documento observado por Notaría",
            pipeline: "Soporte",
            owner: Some("Camila"),
            priority: "media",
            in_reply_to: Some("b@c.example"),
            references: &refs,
            message_id: "buzon.1.2@tp.example".into(),
        })
        .unwrap();
        let back = parse(&ack.raw, 1 << 20).unwrap();
        assert!(back.subject.contains("[#T-42]"), "{}", back.subject);
        assert!(back.subject.contains("Notaría"));
        assert_eq!(back.in_reply_to, vec!["b@c.example".to_string()]);
        assert_eq!(
            back.references,
            vec!["a@c.example".to_string(), "b@c.example".to_string()]
        );
        assert_eq!(back.message_id.as_deref(), Some(ack.message_id.as_str()));
        assert_eq!(back.header("Auto-Submitted"), Some("auto-replied"));
        assert_eq!(back.header("Precedence"), Some("auto_reply"));
        assert!(back.text.contains("T-42"));
        assert!(back.text.contains("Ana Pérez"));
        assert_eq!(ack.rcpt_to, vec!["ana@cliente.example".to_string()]);
        assert_eq!(ack.message_id, "buzon.1.2@tp.example");
    }
}
