//! The store's input and output records, independent of the backend.

use serde::Serialize;

use crate::classify::Automatic;
use crate::parse::ParsedMail;
use crate::route::{Key, Route};

/// A message already in the store, found by its dedupe key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMessageRef {
    pub message: i64,
    pub ticket: i64,
}

/// A mail ready to leave through the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// acknowledgement, notification, reply, ...
    pub kind: String,
    /// Our Message-ID, without brackets.
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The complete RFC 5322 message.
    pub raw: Vec<u8>,
    /// Recorded on the ticket as an outgoing message.
    pub subject: String,
    pub body_text: String,
    /// Automatic mail (acknowledgements, notifications, closing messages):
    /// at most this many to one recipient per hour; a recipient over the
    /// limit is dropped with a history line. `None` for a person's mail.
    pub auto_limit_per_hour: Option<u32>,
}

/// A history line to write with the ticket.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

/// Everything the ingest transaction writes for a new ticket.
pub struct NewTicket<'a> {
    pub mailbox: &'a str,
    /// How the request arrived: mail, or written down by an agent.
    pub channel: crate::ticket::Channel,
    pub raw: &'a [u8],
    pub mail: &'a ParsedMail,
    pub automatic: Option<&'a Automatic>,
    pub route: &'a Route,
    /// Everyone on the mail who may later write to this ticket.
    pub participants: Vec<NewParticipant>,
    /// A follow-up from someone who is not a participant opens a new ticket
    /// flagged for review, linked to the one it referenced.
    pub needs_review: bool,
    pub linked_ticket: Option<i64>,
    /// The first-response and resolution targets from the route.
    pub deadlines: Deadlines,
    pub now: i64,
    /// History lines beyond "created" (routing, acknowledgement decisions).
    pub events: Vec<NewEvent>,
    /// Builds the mails to queue once the ticket number is known (the
    /// acknowledgement carries it). Runs inside the transaction: pure CPU.
    pub outgoing: &'a (dyn Fn(i64) -> Vec<OutgoingMail> + Send + Sync),
}

/// An address to record as a participant of a ticket.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    pub address: String,
    pub name: Option<String>,
    /// requester, to, cc, agent
    pub role: String,
}

/// A mail that continues an existing ticket.
pub struct AppendMessage<'a> {
    pub ticket: i64,
    pub mailbox: &'a str,
    pub raw: &'a [u8],
    pub mail: &'a ParsedMail,
    pub automatic: Option<&'a Automatic>,
    pub participants: Vec<NewParticipant>,
    /// The ticket's new state, if the mail changes it.
    pub new_state: Option<crate::ticket::State>,
    /// Whether the state change pauses or resumes the deadline clocks.
    pub clock: Option<ClockChange>,
    pub now: i64,
    pub events: Vec<NewEvent>,
    pub outgoing: Vec<OutgoingMail>,
}

/// What appending did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Appended,
    /// Another writer stored the same message first; nothing was written.
    Duplicate,
}

/// The parts of a ticket that threading decisions need.
#[derive(Debug, Clone)]
pub struct TicketState {
    pub state: String,
    pub closed_at: Option<i64>,
    pub requester: Option<String>,
    pub subject: String,
    pub owner: Option<String>,
    pub pipeline: String,
    pub priority: String,
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
    pub priority: Option<crate::ticket::Priority>,
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub pipeline: Option<String>,
    /// The ticket's team fields after the change (all of them).
    pub fields: Option<std::collections::BTreeMap<String, String>>,
}

/// Which promise a deadline is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    FirstResponse,
    Resolution,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::Resolution => "resolution",
        }
    }

    pub fn parse(text: &str) -> Option<Target> {
        match text {
            "first_response" => Some(Target::FirstResponse),
            "resolution" => Some(Target::Resolution),
            _ => None,
        }
    }
}

/// A missed deadline the store found that has no alert yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub ticket: i64,
    pub target: Target,
    pub due_at: i64,
}

/// What recording one breach writes, in one transaction.
#[derive(Debug, Clone)]
pub struct NewBreach {
    pub breach: Breach,
    pub now: i64,
    pub events: Vec<NewEvent>,
    /// The alert to the owner and the escalation mail.
    pub outgoing: Vec<OutgoingMail>,
}

/// One alert: a missed deadline, open until its target is met.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub ticket: i64,
    pub subject: String,
    pub owner: Option<String>,
    pub pipeline: String,
    pub priority: String,
    pub state: String,
    pub target: Target,
    pub due_at: i64,
    pub breached_at: i64,
    pub cleared_at: Option<i64>,
    pub cleared_by: Option<String>,
}

/// An agent's change to a ticket: only the `Some` fields change.
#[derive(Debug, Clone, Default)]
pub struct TicketUpdate {
    pub owner: Option<String>,
    pub state: Option<crate::ticket::State>,
    pub outcome: Option<crate::ticket::Outcome>,
    /// Mark the ticket internal (no mail to the client) or not.
    pub internal: Option<bool>,
    /// Documents asked of the client, added to the ticket's checklist.
    pub request_items: Vec<String>,
    /// A checklist item the client delivered.
    pub received_item: Option<String>,
    /// Whether the state change pauses or resumes the deadline clocks.
    pub clock: Option<ClockChange>,
    /// This change answers the client (meets the first-response target and
    /// clears its alert). What counts is `deadlines.first_response_met_by`.
    pub first_response: bool,
    /// A deadline moved by hand (the seed's "Fecha Límite"): a new promise,
    /// so the alert of the old one clears.
    pub due: Option<(Target, i64)>,
    /// An agent's reclassification (seed 004's "clasificar").
    pub classify: Option<Classification>,
    pub now: i64,
    pub events: Vec<NewEvent>,
    pub outgoing: Vec<OutgoingMail>,
}

/// What the ingest transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created {
        ticket: i64,
        /// The kinds of the mails queued (a mail held back by the limit on
        /// automatic mail is not among them).
        queued: Vec<String>,
    },
    /// Another writer stored the same message first; nothing was written.
    Duplicate,
}

/// Filters for `tickets list`.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Any of these states; empty: every state.
    pub states: Vec<crate::ticket::State>,
    pub pipeline: Option<String>,
    pub owner: Option<String>,
    pub priority: Option<String>,
    pub key: Option<(String, String)>,
    /// Only tickets overdue at this time (Unix ms), most overdue first.
    pub overdue_at: Option<i64>,
    pub limit: Option<i64>,
}

/// A ticket as listed.
#[derive(Debug, Clone, Serialize)]
pub struct TicketRow {
    pub number: i64,
    pub subject: String,
    pub state: String,
    pub outcome: Option<String>,
    pub pipeline: String,
    pub owner: Option<String>,
    pub priority: String,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub tags: Vec<String>,
    /// The team's own fields set by the rules.
    pub fields: std::collections::BTreeMap<String, String>,
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
pub struct EventView {
    pub at: i64,
    pub actor: String,
    pub kind: String,
    pub detail: String,
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

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineRow {
    pub id: i64,
    pub mailbox: String,
    pub reason: String,
    pub size: i64,
    pub status: String,
    pub ticket: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub ticket: Option<i64>,
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    #[serde(skip)]
    pub raw: Vec<u8>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    /// When `buzon outbox retry` last requeued it (the maximum age counts
    /// from here).
    pub requeued_at: Option<i64>,
}

/// One ticket of `buzon report`: the listed fields plus what the metrics
/// need, read in one query.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub ticket: TicketRow,
    /// Where the ticket came from (`email` today).
    pub channel: String,
    pub closed_at: Option<i64>,
    /// When the first agent reply (outbox kind `reply`) was queued; `None`
    /// while nobody has answered. Acknowledgements and notifications are
    /// automatic and do not count as a response.
    pub first_response_at: Option<i64>,
}
