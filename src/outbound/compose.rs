//! Builds the mails buzon sends: acknowledgements, notifications, closing
//! messages and agents' replies. Pure.
//!
//! Every outgoing mail carries a Message-ID of ours (recorded on the ticket
//! and later used for threading), `From`/`Reply-To` the mailbox's address,
//! `In-Reply-To`/`References` to the customer's mail, and, when automatic,
//! the RFC 3834 headers that tell other robots not to answer
//! (`Auto-Submitted`, `X-Auto-Response-Suppress: All`, `Precedence:
//! auto_reply`). The words come from [`super::templates`].

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use super::templates::{RenderError, Templates, Vars};
use crate::parse::collapse_ws;
use crate::ticket::OutgoingMail;

/// Why a mail could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("invalid address '{address}': {reason}")]
    Address { address: String, reason: String },
    #[error(transparent)]
    Template(#[from] RenderError),
    #[error("cannot build message: {0}")]
    Build(lettre::error::Error),
}

/// The message says the cause, so it is not a `source()` too.
impl From<lettre::error::Error> for ComposeError {
    fn from(e: lettre::error::Error) -> ComposeError {
        ComposeError::Build(e)
    }
}

/// The subject tag that identifies a ticket: `[#T-1042]`.
pub fn ticket_tag(ticket: &str) -> String {
    format!("[#{ticket}]")
}

/// Which RFC 3834 `Auto-Submitted` value an automatic mail carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoSubmitted {
    /// An answer to a mail (the acknowledgement).
    Replied,
    /// Written on our own initiative (notifications, closing messages).
    Generated,
}

impl AutoSubmitted {
    fn header_value(self) -> &'static str {
        match self {
            AutoSubmitted::Replied => "auto-replied",
            AutoSubmitted::Generated => "auto-generated",
        }
    }
}

/// What makes a mail automatic: its loop-protection headers and the limit
/// on how many may go to one recipient per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auto {
    pub submitted: AutoSubmitted,
    pub limit_per_hour: u32,
}

/// Who a mail is from and to, and where it threads.
pub struct Envelope<'a> {
    /// acknowledgement, notification, closing, reply, ...
    pub kind: &'a str,
    pub message_id: String,
    pub from_address: &'a str,
    pub from_name: &'a str,
    /// (address, display name); the first is `To`, the rest `Cc`.
    pub to: Vec<(String, Option<String>)>,
    /// The mail this answers (no brackets).
    pub in_reply_to: Option<&'a str>,
    /// The chain to keep (no brackets).
    pub references: &'a [String],
    /// Automatic mail (acknowledgements, notifications) carries the RFC 3834
    /// headers and counts against the per-recipient limit; a person's reply
    /// sent through buzon does not.
    pub auto: Option<Auto>,
}

/// A mail ready to be built: its envelope and its words.
pub struct MailParts<'a> {
    pub envelope: Envelope<'a>,
    pub subject: String,
    pub body: String,
    /// An HTML alternative to `body`.
    pub html: Option<String>,
    /// Files sent along (an agent's reply by mail forwards theirs).
    pub attachments: Vec<FileToSend>,
}

/// A file attached to an outgoing mail.
#[derive(Debug, Clone)]
pub struct FileToSend {
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// Renders template `name` with `vars` and builds the mail.
pub fn from_template(
    templates: &Templates,
    name: &str,
    vars: &Vars,
    envelope: Envelope<'_>,
) -> Result<OutgoingMail, ComposeError> {
    let rendered = templates.render(name, vars)?;
    build(MailParts {
        envelope,
        subject: rendered.subject,
        body: rendered.text,
        html: rendered.html,
        attachments: Vec::new(),
    })
}

/// Builds any outgoing mail: our Message-ID, threading headers, and the
/// loop-protection headers when it is automatic.
pub fn build(parts: MailParts<'_>) -> Result<OutgoingMail, ComposeError> {
    let env = parts.envelope;
    let subject = collapse_ws(&parts.subject);
    let from = mailbox(env.from_address, Some(env.from_name))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .reply_to(from)
        .subject(subject.clone())
        .message_id(Some(format!("<{}>", env.message_id)));
    for (i, (address, name)) in env.to.iter().enumerate() {
        let mb = mailbox(address, name.as_deref())?;
        builder = if i == 0 {
            builder.to(mb)
        } else {
            builder.cc(mb)
        };
    }
    if let Some(auto) = env.auto {
        builder = builder
            .raw_header(header("Auto-Submitted", auto.submitted.header_value()))
            .raw_header(header("X-Auto-Response-Suppress", "All"))
            .raw_header(header("Precedence", "auto_reply"));
    }
    if let Some(parent) = env.in_reply_to {
        let mut chain: Vec<String> = env
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
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(parts.body.clone());
    let message = match (parts.html, parts.attachments.is_empty()) {
        (Some(html), true) => {
            builder.multipart(MultiPart::alternative_plain_html(parts.body.clone(), html))?
        }
        (None, true) => builder.singlepart(text)?,
        (html, false) => {
            let mut mixed = match html {
                Some(html) => MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(parts.body.clone(), html)),
                None => MultiPart::mixed().singlepart(text),
            };
            for file in parts.attachments {
                // A type the mail carried that lettre cannot read is sent
                // as plain bytes rather than dropped.
                let kind = ContentType::parse(&file.content_type)
                    .or_else(|_| ContentType::parse("application/octet-stream"))
                    .unwrap_or(ContentType::TEXT_PLAIN);
                mixed = mixed.singlepart(
                    lettre::message::Attachment::new(file.name).body(file.content, kind),
                );
            }
            builder.multipart(mixed)?
        }
    };
    Ok(OutgoingMail {
        kind: env.kind.to_string(),
        message_id: env.message_id,
        mail_from: env.from_address.to_string(),
        rcpt_to: env.to.into_iter().map(|(a, _)| a).collect(),
        raw: message.formatted(),
        subject,
        body_text: parts.body,
        auto_limit_per_hour: env.auto.map(|a| a.limit_per_hour),
    })
}

/// Whether `address` can be written in a mail header and an SMTP envelope
/// (checked before a mail is planned, so a refusal is recorded on the
/// ticket instead of surfacing as a compose error inside the transaction).
pub fn check_address(address: &str) -> Result<(), String> {
    address
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| format!("'{address}' cannot be used as a mail address: {e}"))
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
    use crate::outbound::templates::ACKNOWLEDGEMENT;
    use crate::parse::parse;

    fn envelope(refs: &[String], auto: Option<Auto>) -> Envelope<'_> {
        Envelope {
            kind: "acknowledgement",
            message_id: "buzon.1.2@tp.example".into(),
            from_address: "soporte@tp.example",
            from_name: "Soporte",
            to: vec![("ana@cliente.example".into(), Some("Ana Pérez".into()))],
            in_reply_to: Some("b@c.example"),
            references: refs,
            auto,
        }
    }

    #[test]
    fn acknowledgement_threads_and_protects_against_loops() {
        let refs = vec!["a@c.example".to_string()];
        let vars = Vars {
            ticket: "T-42".into(),
            tag: ticket_tag("T-42"),
            subject: "Documento observado por Notaría".into(),
            name: "Ana Pérez".into(),
            team: "Soporte Tu Patrimonio".into(),
            ..Vars::default()
        };
        let auto = Auto {
            submitted: AutoSubmitted::Replied,
            limit_per_hour: 5,
        };
        let ack = from_template(
            &Templates::builtin(),
            ACKNOWLEDGEMENT,
            &vars,
            envelope(&refs, Some(auto)),
        )
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
        assert_eq!(back.header("X-Auto-Response-Suppress"), Some("All"));
        assert_eq!(back.header("Precedence"), Some("auto_reply"));
        assert!(back.text.contains("T-42"));
        assert!(back.text.contains("Ana Pérez"));
        assert_eq!(ack.rcpt_to, vec!["ana@cliente.example".to_string()]);
        assert_eq!(ack.message_id, "buzon.1.2@tp.example");
        assert_eq!(ack.auto_limit_per_hour, Some(5));
    }

    #[test]
    fn a_persons_mail_has_no_robot_headers_and_html_is_an_alternative() {
        let mail = build(MailParts {
            envelope: envelope(&[], None),
            subject: "Re: x".into(),
            body: "texto\n".into(),
            attachments: Vec::new(),
            html: Some("<p>texto</p>".into()),
        })
        .unwrap();
        let back = parse(&mail.raw, 1 << 20).unwrap();
        assert_eq!(back.header("Auto-Submitted"), None);
        assert_eq!(back.content_type, "multipart/alternative");
        assert!(back.text.contains("texto"));
        assert_eq!(mail.auto_limit_per_hour, None);
    }
}
