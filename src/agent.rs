//! What agents do to tickets from the command line: assign, change state,
//! comment, reply, close. Each action is one store transaction with its
//! history line and, when it mails the customer, its outbox row.

use crate::config::Config;
use crate::outbound::compose::{self, MailParts, ticket_tag};
use crate::pipeline::domain_of;
use crate::store::{NewEvent, Store, StoreError, TicketDetail, TicketUpdate, now_ms};
use crate::thread::{IdSigner, strip_reply_prefixes};
use crate::ticket::{Outcome, State, display_number};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot compose the mail: {0}")]
    Compose(#[from] compose::ComposeError),
    #[error("{0}")]
    Invalid(String),
}

/// An agent acting on tickets, with the deployment it works in.
pub struct Agent<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    pub signer: IdSigner,
    /// Who is acting (recorded in the history as `agent:NAME`).
    pub name: String,
}

impl Agent<'_> {
    fn event(&self, kind: &str, detail: String) -> NewEvent {
        NewEvent {
            actor: format!("agent:{}", self.name),
            kind: kind.into(),
            detail,
        }
    }

    pub async fn assign(&self, ticket: i64, owner: &str) -> Result<(), AgentError> {
        let before = self.store.ticket(ticket).await?.ticket.owner;
        let change = TicketUpdate {
            owner: Some(owner.to_string()),
            now: now_ms(),
            events: vec![self.event(
                "assigned",
                format!("{} → {owner}", before.as_deref().unwrap_or("-")),
            )],
            ..TicketUpdate::default()
        };
        Ok(self.store.update_ticket(ticket, &change).await?)
    }

    pub async fn set_state(&self, ticket: i64, state: State) -> Result<(), AgentError> {
        if state == State::Done {
            return Err(AgentError::Invalid(
                "use `buzon tickets close N --outcome success|failure` to finish a ticket".into(),
            ));
        }
        let before = self.store.ticket(ticket).await?.ticket.state;
        let change = TicketUpdate {
            state: Some(state),
            now: now_ms(),
            events: vec![self.event("state", format!("{before} → {state}"))],
            ..TicketUpdate::default()
        };
        Ok(self.store.update_ticket(ticket, &change).await?)
    }

    pub async fn comment(&self, ticket: i64, text: &str) -> Result<(), AgentError> {
        let change = TicketUpdate {
            now: now_ms(),
            events: vec![self.event("comment", text.to_string())],
            ..TicketUpdate::default()
        };
        Ok(self.store.update_ticket(ticket, &change).await?)
    }

    /// Mails the requester and participants, threaded under the latest
    /// inbound message; the ticket then waits on the contact.
    pub async fn reply(&self, ticket: i64, body: &str) -> Result<String, AgentError> {
        let detail = self.store.ticket(ticket).await?;
        let before = detail.ticket.state.clone();
        let mail = self.mail_to_contact(&detail, "reply", body.to_string(), false)?;
        let message_id = mail.message_id.clone();
        let change = TicketUpdate {
            state: Some(State::WaitingOnContact),
            now: now_ms(),
            events: vec![
                self.event("reply", format!("to {}", mail.rcpt_to.join(", "))),
                self.event("state", format!("{before} → {}", State::WaitingOnContact)),
            ],
            outgoing: vec![mail],
            ..TicketUpdate::default()
        };
        self.store.update_ticket(ticket, &change).await?;
        Ok(message_id)
    }

    /// Finishes a ticket with an outcome and tells the contact ("finalizar").
    pub async fn close(
        &self,
        ticket: i64,
        outcome: Outcome,
        note: Option<&str>,
    ) -> Result<(), AgentError> {
        let detail = self.store.ticket(ticket).await?;
        let number = display_number(&self.config.deployment.ticket_prefix, ticket);
        let result = match outcome {
            Outcome::Success => "finalizada con éxito",
            Outcome::Failure => "finalizada sin éxito",
        };
        let mut body = format!(
            "Hola:\n\nSu solicitud {number} «{}» fue {result}.\n",
            detail.ticket.subject
        );
        if let Some(note) = note {
            body.push_str(&format!("\n{note}\n"));
        }
        body.push_str(&format!(
            "\nSi necesita algo más, responda a este correo.\n\nSaludos cordiales,\n{}\n",
            self.config.deployment.name
        ));
        let mut events = vec![self.event(
            "closed",
            format!("{} ({})", outcome.as_str(), note.unwrap_or("")),
        )];
        let mut outgoing = Vec::new();
        if detail.ticket.requester.is_some() {
            outgoing.push(self.mail_to_contact(&detail, "closing", body, true)?);
        } else {
            events.push(self.event("ack_withheld", "the ticket has no contact address".into()));
        }
        let change = TicketUpdate {
            state: Some(State::Done),
            outcome: Some(outcome),
            now: now_ms(),
            events,
            outgoing,
            ..TicketUpdate::default()
        };
        Ok(self.store.update_ticket(ticket, &change).await?)
    }

    fn mail_to_contact(
        &self,
        detail: &TicketDetail,
        kind: &str,
        body: String,
        automatic: bool,
    ) -> Result<crate::store::OutgoingMail, AgentError> {
        let t = &detail.ticket;
        let mailbox = self
            .config
            .mailbox(&t.mailbox)
            .map_err(AgentError::Invalid)?;
        let mut to: Vec<(String, Option<String>)> = Vec::new();
        if let Some(r) = &t.requester {
            to.push((r.clone(), t.requester_name.clone()));
        }
        for p in &detail.participants {
            if !self.config.is_own_address(&p.address) && !to.iter().any(|(a, _)| *a == p.address) {
                to.push((p.address.clone(), p.name.clone()));
            }
        }
        if to.is_empty() {
            return Err(AgentError::Invalid(
                "the ticket has no contact address".into(),
            ));
        }
        let last_in = detail.messages.iter().rev().find(|m| m.direction == "in");
        let references: Vec<String> = detail
            .messages
            .iter()
            .filter_map(|m| m.message_id.clone())
            .collect();
        let number = display_number(&self.config.deployment.ticket_prefix, t.number);
        let subject = format!(
            "Re: {} {}",
            strip_reply_prefixes(&t.subject),
            ticket_tag(&number)
        );
        let from_name = mailbox
            .display_name
            .clone()
            .unwrap_or_else(|| self.config.deployment.name.clone());
        Ok(compose::build(MailParts {
            kind,
            message_id: self.signer.new_id(domain_of(&mailbox.address)),
            from_address: &mailbox.address,
            from_name: &from_name,
            to,
            subject,
            body,
            in_reply_to: last_in.and_then(|m| m.message_id.as_deref()),
            references: &references,
            automatic,
        })?)
    }
}
