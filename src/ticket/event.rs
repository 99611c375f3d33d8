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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
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
}

impl EventKind {
    pub const ALL: [EventKind; 22] = [
        EventKind::Created,
        EventKind::Routed,
        EventKind::AutomaticMail,
        EventKind::Message,
        EventKind::NeedsReview,
        EventKind::Linked,
        EventKind::State,
        EventKind::Reopened,
        EventKind::MailQueued,
        EventKind::MailWithheld,
        EventKind::AckWithheld,
        EventKind::Overdue,
        EventKind::Assigned,
        EventKind::Comment,
        EventKind::Reply,
        EventKind::Update,
        EventKind::DocumentsRequested,
        EventKind::DocumentReceived,
        EventKind::Classified,
        EventKind::Due,
        EventKind::Visibility,
        EventKind::Closed,
    ];

    /// The stored text (also the JSON value).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Routed => "routed",
            EventKind::AutomaticMail => "automatic_mail",
            EventKind::Message => "message",
            EventKind::NeedsReview => "needs_review",
            EventKind::Linked => "linked",
            EventKind::State => "state",
            EventKind::Reopened => "reopened",
            EventKind::MailQueued => "mail_queued",
            EventKind::MailWithheld => "mail_withheld",
            EventKind::AckWithheld => "ack_withheld",
            EventKind::Overdue => "overdue",
            EventKind::Assigned => "assigned",
            EventKind::Comment => "comment",
            EventKind::Reply => "reply",
            EventKind::Update => "update",
            EventKind::DocumentsRequested => "documents_requested",
            EventKind::DocumentReceived => "document_received",
            EventKind::Classified => "classified",
            EventKind::Due => "due",
            EventKind::Visibility => "visibility",
            EventKind::Closed => "closed",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown kind of history line '{s}'"))
    }
}

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
        for kind in EventKind::ALL {
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
