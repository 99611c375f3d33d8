//! Mail to the client written by a person: a reply, a case update
//! ("novedad"), a reply from the team's templates. From the ticket's
//! shared mailbox, threaded under the client's last mail, to the requester
//! and the ticket's participants.

use super::{Action, ActionError, Agent, Change, Done};
use crate::config::Response;
use crate::outbound::compose::{self, Auto, Envelope, FileToSend, MailParts, ticket_tag};
use crate::pipeline::domain_of;
use crate::rules::fold_text;
use crate::thread::strip_reply_prefixes;
use crate::ticket::State;
use crate::ticket::{EventKind, OutgoingMail, TicketDetail};

impl Agent<'_> {
    /// Mails the requester and participants, threaded under the latest
    /// inbound message; the ticket then waits on the contact.
    pub async fn reply(&self, ticket: i64, body: &str) -> Result<Done, ActionError> {
        self.reply_with(ticket, body, Vec::new()).await
    }

    /// A reply with files (an agent answering by mail forwards theirs).
    pub async fn reply_with(
        &self,
        ticket: i64,
        body: &str,
        files: Vec<FileToSend>,
    ) -> Result<Done, ActionError> {
        let detail = self.load(ticket, Action::Mail).await?;
        let before = detail.ticket.state;
        let mail = self.person_mail_with(&detail, "reply", "Re:", nonblank(body)?, files)?;
        let mut change = self.change(EventKind::Reply, format!("a {}", mail.rcpt_to.join(", ")));
        change.outgoing.push(mail);
        let mut changes = vec![Change::Mailed { kind: "reply" }];
        if before != State::WaitingOnContact {
            change.state = Some(State::WaitingOnContact);
            change.events.push(self.event(
                EventKind::State,
                format!("{before} → {}", State::WaitingOnContact),
            ));
            changes.push(Change::State {
                before,
                after: State::WaitingOnContact,
            });
        }
        self.tell_owner(&detail, "respondió al cliente", body, &mut change);
        self.apply(&detail, change, Some(Response::Reply), changes)
            .await
    }

    /// Mails a "novedad" (case update) to the client and the ticket's
    /// additional recipients, threaded; the state does not change.
    pub async fn update(&self, ticket: i64, body: &str) -> Result<Done, ActionError> {
        let detail = self.load(ticket, Action::Mail).await?;
        let mail = self.person_mail(&detail, "update", "Novedad en su caso:", nonblank(body)?)?;
        let mut change = self.change(
            EventKind::Update,
            format!("novedad a {}", mail.rcpt_to.join(", ")),
        );
        change.outgoing.push(mail);
        self.tell_owner(&detail, "envió una novedad al cliente", body, &mut change);
        let changes = vec![Change::Mailed { kind: "update" }];
        self.apply(&detail, change, Some(Response::Update), changes)
            .await
    }

    /// The body of a reply or update written from a template (seed 000's
    /// "plantillas"): its text part, filled in for this ticket. The
    /// template's `Subject:` line is not used; the mail keeps the ticket's
    /// subject so the answer stays in the thread.
    pub async fn template_body(
        &self,
        ticket: i64,
        name: &str,
        note: Option<&str>,
    ) -> Result<String, ActionError> {
        if !self.templates.contains(name) {
            let known: Vec<String> = self.templates.names().into_iter().collect();
            return Err(ActionError::Invalid(format!(
                "no hay una plantilla '{name}': escriba una de {} (archivos NOMBRE.txt en templates.dir)",
                known.join(", ")
            )));
        }
        let detail = self.load(ticket, Action::Read).await?;
        let vars = crate::outbound::templates::Vars {
            note: note.unwrap_or("").to_string(),
            ..self.ticket_vars(&detail)
        };
        self.templates
            .render(name, &vars)
            .map(|r| r.text)
            .map_err(|e| ActionError::Invalid(e.to_string()))
    }

    /// An agent's mail to the contact: subject `PREFIX <subject> [#T-N]`,
    /// threaded, without the automatic-mail headers (a person wrote it).
    pub(super) fn person_mail(
        &self,
        detail: &TicketDetail,
        kind: &str,
        prefix: &str,
        body: String,
    ) -> Result<OutgoingMail, ActionError> {
        self.person_mail_with(detail, kind, prefix, body, Vec::new())
    }

    /// As `person_mail`, with files attached.
    fn person_mail_with(
        &self,
        detail: &TicketDetail,
        kind: &str,
        prefix: &str,
        body: String,
        attachments: Vec<FileToSend>,
    ) -> Result<OutgoingMail, ActionError> {
        let number = self.number(detail.ticket.number);
        let subject = subject_with(prefix, &detail.ticket.subject, &ticket_tag(&number));
        let references = thread_ids(detail);
        let envelope = self.envelope_to_contact(detail, &references, kind, None)?;
        Ok(compose::build(MailParts {
            envelope,
            subject,
            body,
            html: None,
            attachments,
        })?)
    }

    /// To the requester and participants, threaded under the latest
    /// inbound message, from the ticket's mailbox.
    pub(super) fn envelope_to_contact<'d>(
        &'d self,
        detail: &'d TicketDetail,
        references: &'d [String],
        kind: &'d str,
        auto: Option<Auto>,
    ) -> Result<Envelope<'d>, ActionError> {
        let t = &detail.ticket;
        if t.internal {
            return Err(ActionError::Invalid(format!(
                "{} es interno: no se escribe al cliente (`buzon tickets internal {} --off` lo cambia)",
                self.number(t.number),
                self.number(t.number)
            )));
        }
        let mailbox = self
            .config
            .mailbox(&t.mailbox)
            .map_err(ActionError::Invalid)?;
        let mut to: Vec<(String, Option<String>)> = Vec::new();
        if let Some(r) = &t.requester {
            to.push((r.clone(), t.requester_name.clone()));
        }
        for p in &detail.participants {
            if !self.config.is_own_address(&p.address)
                && !to.iter().any(|(a, _)| a.eq_ignore_ascii_case(&p.address))
            {
                to.push((p.address.clone(), p.name.clone()));
            }
        }
        if to.is_empty() {
            return Err(ActionError::Invalid(format!(
                "{} no tiene dirección de contacto: no hay a quién escribir",
                self.number(t.number)
            )));
        }
        let last_in = self.last_from_customer(detail);
        Ok(Envelope {
            kind,
            message_id: self.signer.new_id(domain_of(&mailbox.address)),
            from_address: &mailbox.address,
            from_name: mailbox
                .display_name
                .as_deref()
                .unwrap_or(&self.config.deployment.name),
            to,
            in_reply_to: last_in.and_then(|m| m.message_id.as_deref()),
            references,
            auto,
        })
    }
}

/// The text of a mail, refused when there is none.
fn nonblank(body: &str) -> Result<String, ActionError> {
    if body.trim().is_empty() {
        return Err(ActionError::Invalid(
            "el correo está vacío: escriba el texto".into(),
        ));
    }
    Ok(body.to_string())
}

/// `PREFIX subject [#T-N]`, without reply prefixes, without a second copy
/// of a prefix the subject already carries ("Novedad en su caso: Nueva
/// novedad en su caso: …"), and without a second tag.
pub(super) fn subject_with(prefix: &str, subject: &str, tag: &str) -> String {
    let subject = strip_reply_prefixes(subject).trim();
    let subject = subject.replace(tag, "");
    let subject = subject.trim();
    let words = prefix.trim_end_matches(':').trim();
    let carries = fold_text(subject).contains(fold_text(words).as_ref());
    let subject = if subject.is_empty() {
        "(sin asunto)"
    } else {
        subject
    };
    match carries {
        true => format!("{subject} {tag}"),
        false => format!("{prefix} {subject} {tag}"),
    }
}

/// Every Message-ID of the ticket, oldest first: the `References` chain of
/// our mails to the contact.
pub(super) fn thread_ids(detail: &TicketDetail) -> Vec<String> {
    detail
        .messages
        .iter()
        .filter_map(|m| m.message_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::subject_with;

    #[test]
    fn a_prefix_is_not_said_twice() {
        let tag = "[#TPR-3]";
        assert_eq!(
            subject_with(
                "Novedad en su caso:",
                "Nueva novedad en su caso: audiencia",
                tag
            ),
            "Nueva novedad en su caso: audiencia [#TPR-3]"
        );
        assert_eq!(
            subject_with(
                "Solicitud de documentos:",
                "RE: Solicitud de documentos - poder",
                tag
            ),
            "Solicitud de documentos - poder [#TPR-3]"
        );
        assert_eq!(
            subject_with("Re:", "RE: Documento observado por Notaría [#TPR-3]", tag),
            "Re: Documento observado por Notaría [#TPR-3]"
        );
        assert_eq!(subject_with("Re:", "", tag), "Re: (sin asunto) [#TPR-3]");
    }
}
