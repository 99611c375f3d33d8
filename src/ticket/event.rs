//! A ticket's history: who did what ([`Actor`], [`EventKind`]), as written
//! ([`NewEvent`]) and as read back ([`EventView`]).
//!
//! The text forms are what the database and the CLI's JSON hold
//! (`mail_queued`, `agent:ana`); they never change, so existing databases
//! and the scripts that read them keep working.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What happened to a ticket, one kind per history line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The ticket was opened from a mail.
    Created,
    /// The rules set pipeline, priority and owner.
    Routed,
    /// The mail was automatic (auto-reply, bounce, list ...).
    AutomaticMail,
    /// A follow-up mail joined the ticket.
    Message,
    /// The ticket was opened separately because its sender is not a
    /// participant of the ticket it references.
    NeedsReview,
    /// The ticket was opened linked to an old closed one.
    Linked,
    /// The state changed.
    State,
    /// A customer's answer reopened a done ticket.
    Reopened,
    /// A mail went into the outbox.
    MailQueued,
    /// A mail was not sent (limit on automatic mail, internal ticket ...).
    MailWithheld,
    /// The acknowledgement was not sent.
    AckWithheld,
    /// A deadline was missed.
    Overdue,
    /// An agent gave the ticket to an owner.
    Assigned,
    Comment,
    Reply,
    /// A news update mailed to the client ("novedad").
    Update,
    DocumentsRequested,
    DocumentReceived,
    /// An agent reclassified the ticket.
    Classified,
    /// A deadline moved by hand.
    Due,
    /// The ticket became internal or visible to the client.
    Visibility,
    Closed,
    /// An agent answered the ticket's notification by mail.
    AgentMail,
    /// Mail that answers a notification but is not trusted as the agent's:
    /// kept, never forwarded.
    StaffMailUntrusted,
    /// An agent's mail could not be carried out (a refused or unknown
    /// command); they were told why.
    AgentMailRefused,
}

stored_text!(EventKind, "kind of history line", {
    Created => "created",
    Routed => "routed",
    AutomaticMail => "automatic_mail",
    Message => "message",
    NeedsReview => "needs_review",
    Linked => "linked",
    State => "state",
    Reopened => "reopened",
    MailQueued => "mail_queued",
    MailWithheld => "mail_withheld",
    AckWithheld => "ack_withheld",
    Overdue => "overdue",
    Assigned => "assigned",
    Comment => "comment",
    Reply => "reply",
    Update => "update",
    DocumentsRequested => "documents_requested",
    DocumentReceived => "document_received",
    Classified => "classified",
    Due => "due",
    Visibility => "visibility",
    Closed => "closed",
    AgentMail => "agent_mail",
    StaffMailUntrusted => "staff_mail_untrusted",
    AgentMailRefused => "agent_mail_refused",
});

/// Who did it. Stored as `system`, `agent:NAME`, `customer:ADDRESS` or
/// `mailbox:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// buzon itself (routing, the outbox, deadlines).
    System,
    /// A person of the team, by the name the CLI was given.
    Agent(String),
    /// Whoever wrote the mail, by address.
    Customer(String),
    /// A mail without a sender, by the mailbox it arrived in.
    Mailbox(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Agent(name) => write!(f, "agent:{name}"),
            Actor::Customer(address) => write!(f, "customer:{address}"),
            Actor::Mailbox(name) => write!(f, "mailbox:{name}"),
        }
    }
}

impl FromStr for Actor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "system" {
            return Ok(Actor::System);
        }
        let who = |v: &str| v.to_string();
        match s.split_once(':') {
            Some(("agent", name)) => Ok(Actor::Agent(who(name))),
            Some(("customer", address)) => Ok(Actor::Customer(who(address))),
            Some(("mailbox", name)) => Ok(Actor::Mailbox(who(name))),
            _ => Err(format!(
                "unknown actor '{s}': expected system, agent:NAME, customer:ADDRESS or mailbox:NAME"
            )),
        }
    }
}

/// The JSON of `tickets show` keeps the stored text (`agent:ana`).
impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A history line to write with the ticket.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: Actor,
    pub kind: EventKind,
    pub detail: String,
}

impl NewEvent {
    /// A line written by buzon itself.
    pub fn system(kind: EventKind, detail: String) -> NewEvent {
        NewEvent {
            actor: Actor::System,
            kind,
            detail,
        }
    }
}

/// A history line as read back.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    pub at: i64,
    pub actor: Actor,
    pub kind: EventKind,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_stored_text() {
        for &kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(EventKind::MailQueued.as_str(), "mail_queued");
        assert!("Mail_Queued".parse::<EventKind>().is_err());
    }

    #[test]
    fn actors_round_trip_through_their_text() {
        for text in [
            "system",
            "agent:ana",
            "customer:ana@cliente.example",
            "mailbox:soporte",
            "agent:a:b",
        ] {
            let actor: Actor = text.parse().unwrap();
            assert_eq!(actor.to_string(), text);
            assert_eq!(
                serde_json::to_value(&actor).unwrap(),
                serde_json::json!(text)
            );
        }
        assert_eq!("agent:ana".parse(), Ok(Actor::Agent("ana".into())));
        let err = "robot".parse::<Actor>().unwrap_err();
        assert!(err.contains("'robot'"), "{err}");
    }
}
