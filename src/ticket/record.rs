//! A ticket as the rest of buzon sees it: what threading and the deadline
//! clocks need ([`TicketState`]), the ticket as listed and shown
//! ([`TicketRow`], [`TicketDetail`]), its deadlines and alerts, and what
//! `buzon report` reads. The store reads and writes these; it does not own
//! them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::event::EventView;
use super::{Channel, Outcome, Priority, State};
use crate::route::Key;

/// The parts of a ticket that threading decisions need.
#[derive(Debug, Clone)]
pub struct TicketState {
    pub state: State,
    pub closed_at: Option<i64>,
    pub requester: Option<String>,
    pub subject: String,
    pub owner: Option<String>,
    pub pipeline: String,
    pub priority: Priority,
    pub mailbox: String,
    pub deadlines: Deadlines,
    pub first_response_at: Option<i64>,
    pub paused_at: Option<i64>,
}

/// A ticket's two targets: when it must first be answered and when it must
/// be done, each counted in calendar or business hours (the flag matters
/// when a paused clock resumes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Deadlines {
    pub due_at: Option<i64>,
    pub due_business: bool,
    pub first_response_due_at: Option<i64>,
    pub first_response_business: bool,
}

/// How one state change moves the deadline clocks; computed by
/// `deadline::clock` (which knows the calendar), written by the store in the
/// same transaction as the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockChange {
    /// The clocks stop (waiting on the contact, or done).
    Pause { at: i64 },
    /// The clocks run again with these (moved) due times.
    Resume {
        due_at: Option<i64>,
        first_response_due_at: Option<i64>,
    },
}

/// What an agent may reclassify; `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classification {
    pub priority: Option<Priority>,
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub pipeline: Option<String>,
    /// The ticket's team fields after the change (all of them).
    pub fields: Option<BTreeMap<String, String>>,
}

/// Which promise a deadline is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    FirstResponse,
    Resolution,
}

stored_text!(Target, "deadline target", {
    FirstResponse => "first_response",
    Resolution => "resolution",
});

/// A missed deadline the store found that has no alert yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub ticket: i64,
    pub target: Target,
    pub due_at: i64,
}
/// One alert: a missed deadline, open until its target is met.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub ticket: i64,
    pub subject: String,
    pub owner: Option<String>,
    pub pipeline: String,
    pub priority: Priority,
    pub state: State,
    pub target: Target,
    pub due_at: i64,
    pub breached_at: i64,
    pub cleared_at: Option<i64>,
    pub cleared_by: Option<String>,
}
/// A ticket as listed.
#[derive(Debug, Clone, Serialize)]
pub struct TicketRow {
    pub number: i64,
    pub subject: String,
    pub state: State,
    pub outcome: Option<Outcome>,
    pub pipeline: String,
    pub owner: Option<String>,
    pub priority: Priority,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub tags: Vec<String>,
    /// The team's own fields set by the rules.
    pub fields: BTreeMap<String, String>,
    pub keys: Vec<Key>,
    pub requester: Option<String>,
    pub requester_name: Option<String>,
    pub mailbox: String,
    pub needs_review: bool,
    /// Internal tickets are never mailed to the client.
    pub internal: bool,
    pub linked_ticket: Option<i64>,
    /// Resolution target.
    pub due_at: Option<i64>,
    pub first_response_due_at: Option<i64>,
    pub first_response_at: Option<i64>,
    /// Since when the deadline clocks stand still (waiting on the contact).
    pub paused_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub message_count: i64,
}

/// One message of a ticket, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub direction: String,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub to: String,
    pub cc: String,
    pub subject: String,
    pub body_text: String,
    pub automatic: Option<String>,
    pub warnings: String,
    pub mailboxes: Vec<String>,
    pub attachments: Vec<AttachmentView>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentView {
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketDetail {
    pub ticket: TicketRow,
    /// The document checklist (requested and received items).
    pub requests: Vec<DocumentRequest>,
    pub participants: Vec<Participant>,
    pub messages: Vec<MessageView>,
    pub events: Vec<EventView>,
    /// Missed deadlines, open and cleared.
    pub alerts: Vec<AlertRow>,
}

/// One document asked of the client.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentRequest {
    pub item: String,
    pub status: String,
    pub requested_at: i64,
    pub received_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    pub address: String,
    pub name: Option<String>,
    pub role: String,
}

/// One ticket of `buzon report`: the listed fields plus what the metrics
/// need, read in one query.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub ticket: TicketRow,
    /// Where the ticket came from.
    pub channel: Channel,
    pub closed_at: Option<i64>,
    /// When the first agent reply (outbox kind `reply`) was queued; `None`
    /// while nobody has answered. Acknowledgements and notifications are
    /// automatic and do not count as a response.
    pub first_response_at: Option<i64>,
}
