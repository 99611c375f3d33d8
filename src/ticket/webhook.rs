//! What webhooks tell other systems: the kinds of event ([`HookKind`]), an
//! event as a change writes it ([`NewHookEvent`]) and as the worker reads
//! it back with the ticket as it stood ([`HookEvent`], [`HookTicket`]), and
//! one delivery of it to one endpoint ([`HookDelivery`]).
//!
//! The kinds' texts (`ticket.created` ...) are what the database, the
//! configuration's `events` and the JSON bodies hold; they never change.

use serde::Serialize;

use super::{OutboxStatus, Outcome, Priority, State};

/// What happened, one kind per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookKind {
    /// A ticket was opened (from a mail, or by hand); carries its first message.
    TicketCreated,
    /// State, owner, priority, pipeline, type or fields changed (`changes`).
    TicketUpdated,
    /// The ticket was finished, with its outcome.
    TicketClosed,
    /// A customer's follow-up joined the ticket.
    MessageReceived,
    /// A mail of the ticket left the outbox (acknowledgement, reply ...).
    MessageSent,
    /// A first-response or resolution deadline was missed.
    DeadlineMissed,
}

stored_text!(HookKind, "webhook event", {
    TicketCreated => "ticket.created",
    TicketUpdated => "ticket.updated",
    TicketClosed => "ticket.closed",
    MessageReceived => "message.received",
    MessageSent => "message.sent",
    DeadlineMissed => "deadline.missed",
});

/// An event as a change records it, in the change's transaction. The
/// ticket's columns are copied by the store when it writes the row.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHookEvent {
    pub kind: HookKind,
    /// A JSON object merged into the body: `changes`, `message`,
    /// `deadline`, `outcome` ...
    pub detail: serde_json::Value,
}

impl NewHookEvent {
    pub fn new(kind: HookKind, detail: serde_json::Value) -> NewHookEvent {
        NewHookEvent { kind, detail }
    }
}

/// The ticket as it stood right after the change (the JSON body's `ticket`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookTicket {
    pub id: i64,
    /// `T-42`, with the deployment's prefix (filled in by the worker).
    pub number: String,
    pub subject: String,
    pub state: State,
    pub outcome: Option<Outcome>,
    pub pipeline: String,
    pub owner: Option<String>,
    pub priority: Priority,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    pub mailbox: String,
    pub requester: Option<String>,
    pub fields: serde_json::Value,
    /// The ticket's page in the web workspace, when `web.public_url` is
    /// set (filled in by the worker).
    pub url: Option<String>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEvent {
    pub id: i64,
    pub kind: HookKind,
    pub detail: serde_json::Value,
    pub created_at: i64,
    pub ticket: HookTicket,
}

/// One event for one endpoint, as queued (`buzon webhooks list`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HookDelivery {
    pub id: i64,
    /// `X-Buzon-Delivery`: the same on every attempt, for the receiver's
    /// idempotency.
    pub delivery_id: String,
    pub endpoint: String,
    pub event_id: i64,
    pub kind: HookKind,
    pub ticket: i64,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub requeued_at: Option<i64>,
}
