//! The store's own records: what a write transaction takes (a new ticket,
//! a follow-up, an agent's change, a breach), what it answers, and the rows
//! of the quarantine. The ticket's records live in `crate::ticket`.

use serde::Serialize;

use crate::classify::Automatic;
use crate::parse::ParsedMail;
use crate::route::Route;
use crate::ticket::{
    Breach, Channel, Classification, ClockChange, Deadlines, NewEvent, Outcome, OutgoingMail,
    Priority, State, Target,
};

/// A message already in the store, found by its dedupe key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMessageRef {
    pub message: i64,
    pub ticket: i64,
}

/// A folder's place in its mailbox: the last UID stored, once the mailbox
/// has been touched (marked or moved) for it.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint<'a> {
    pub account: &'a str,
    pub folder: &'a str,
    pub uidvalidity: i64,
    pub last_uid: i64,
}

/// A folder lease to take or renew for `holder` until `until`.
#[derive(Debug, Clone, Copy)]
pub struct LeaseRenewal<'a> {
    pub name: &'a str,
    pub holder: &'a str,
    pub until: i64,
}

/// The intake's own bookkeeping, written in the transaction of the next
/// batch's mails instead of a commit each (every commit is a flush to
/// disk): the checkpoint of the batch before, whose mailbox is already
/// touched, and the folder lease when it is due for renewal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bookkeeping<'a> {
    pub checkpoint: Option<Checkpoint<'a>>,
    pub lease: Option<LeaseRenewal<'a>>,
}

impl Bookkeeping<'_> {
    pub fn is_empty(&self) -> bool {
        self.checkpoint.is_none() && self.lease.is_none()
    }
}

/// Everything the ingest transaction writes for a new ticket.
pub struct NewTicket<'a> {
    pub mailbox: &'a str,
    /// How the request arrived: mail, or written down by an agent.
    pub channel: Channel,
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
    pub new_state: Option<State>,
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

/// What recording one breach writes, in one transaction.
#[derive(Debug, Clone)]
pub struct NewBreach {
    pub breach: Breach,
    pub now: i64,
    pub events: Vec<NewEvent>,
    /// The alert to the owner and the escalation mail.
    pub outgoing: Vec<OutgoingMail>,
}

/// An agent's change to a ticket: only the `Some` fields change.
#[derive(Debug, Clone, Default)]
pub struct TicketUpdate {
    pub owner: Option<String>,
    pub state: Option<State>,
    pub outcome: Option<Outcome>,
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
    /// Set by the action layer when the permission rested on ownership.
    pub guard_owner: bool,
    /// Written only while the ticket's owner is still this one; otherwise
    /// nothing is written (`StoreError::Conflict`).
    pub owner_was: Option<Option<String>>,
    /// The step of an agent's mail this change carries out: counted in the
    /// same transaction, and the change is refused (`StoreError::Stale`)
    /// when that step was already counted.
    pub step: Option<JobStep>,
}

/// One step of an agent's mail (see `mailroom`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStep {
    /// The dedupe key of the agent's mail.
    pub key: String,
    /// Steps done before this one.
    pub index: i64,
    /// The last step: the job is finished with it.
    pub last: bool,
}

/// An agent's mail waiting to be carried out.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StaffJob {
    #[sqlx(rename = "message_key")]
    pub key: String,
    #[sqlx(rename = "ticket_id")]
    pub ticket: i64,
    pub person: String,
    pub steps_done: i64,
    /// The decoded text of the agent's mail.
    pub body_text: String,
    /// The agent's mail as stored (its attachments go to the customer).
    pub message_row: i64,
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
    pub states: Vec<State>,
    pub pipeline: Option<String>,
    pub owner: Option<String>,
    pub priority: Option<Priority>,
    pub key: Option<(String, String)>,
    /// Only tickets overdue at this time (Unix ms), most overdue first.
    pub overdue_at: Option<i64>,
    pub limit: Option<i64>,
    /// Tickets to skip (pages of the web tray).
    pub offset: Option<i64>,
    pub mailbox: Option<String>,
    /// The search box, as typed (`search::Query`): words of the messages
    /// people wrote, comments, subjects, addresses and names, keys; and,
    /// in `search_number`, the ticket number it may be ("GF-12", which
    /// only the front end knows the prefix of). A list with a search is
    /// ranked by relevance, its order aside.
    pub search: Option<String>,
    pub search_number: Option<i64>,
    pub order: TicketOrder,
    /// Seed 001's "Tipo, Categoría, Área, Medio Ingreso".
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub channel: Option<crate::ticket::Channel>,
}

/// How a ticket list is sorted (an overdue list: most overdue first).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TicketOrder {
    /// By number, oldest first.
    #[default]
    Number,
    /// Most recent activity first.
    Activity,
    /// Nearest due date first; tickets without one last.
    Due,
}

impl TicketOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketOrder::Number => "number",
            TicketOrder::Activity => "activity",
            TicketOrder::Due => "due",
        }
    }
}

/// A mail kept in quarantine (without its bytes).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct QuarantineRow {
    pub id: i64,
    pub mailbox: String,
    pub reason: String,
    pub size: i64,
    /// held, released
    pub status: String,
    #[sqlx(rename = "ticket_id")]
    pub ticket: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A signed-in person's session, found by the hash of its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The key of `[people.NAME]`.
    pub person: String,
    /// The token every form of this session must carry.
    pub csrf: String,
    pub expires_at: i64,
}

/// An attachment as stored, for download.
#[derive(Debug, Clone)]
pub struct AttachmentContent {
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A new API token: the SHA-256 of the token (never the token), its first
/// characters to tell it apart, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    pub token_hash: String,
    pub hint: String,
    /// The key of `[people.NAME]`.
    pub person: String,
    pub created_at: i64,
    /// `None`: never expires.
    pub expires_at: Option<i64>,
}

/// An API token as `buzon token list` shows it (without its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub hint: String,
    pub person: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A claimed webhook delivery with its event.
#[derive(Debug, Clone, PartialEq)]
pub struct HookJob {
    pub delivery: crate::ticket::HookDelivery,
    pub event: crate::ticket::HookEvent,
}

/// Longest message text a webhook event carries (characters); the rest is
/// on the ticket.
const HOOK_TEXT_CHARS: usize = 20_000;

/// The `message` of a `ticket.created` or `message.received` event.
pub(crate) fn hook_message(mail: &ParsedMail, channel: Option<Channel>) -> serde_json::Value {
    let mut text: String = mail.text.chars().take(HOOK_TEXT_CHARS).collect();
    if text.len() < mail.text.len() {
        text.push('…');
    }
    let mut message = serde_json::json!({
        "from": mail.from.as_ref().map(|a| a.address.clone()),
        "from_name": mail.from.as_ref().and_then(|a| a.name.clone()),
        "subject": mail.subject,
        "text": text,
        "message_id": mail.message_id,
        "attachments": mail.attachments.len(),
    });
    if let (Some(channel), Some(m)) = (channel, message.as_object_mut()) {
        m.insert("channel".into(), channel.as_str().into());
    }
    serde_json::json!({ "message": message })
}

/// A time in a webhook body: RFC 3339, UTC (`2026-12-06T03:51:08Z`).
pub(crate) fn hook_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
