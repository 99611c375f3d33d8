//! Tickets as listed and shown (`tickets list`, `tickets show`, `report`):
//! the rows with their keys, and a ticket's participants, messages,
//! history and checklist.

use std::collections::HashMap;

use sqlx::{Pool, QueryBuilder};

use super::Db;
use super::messages::{attachments_of_ticket, mailboxes_of_ticket};
use crate::route::Key;
use crate::store::sql::{EFFECTIVE_DUE, ROWS_PER_STATEMENT, decode, decode_json, decode_opt};
use crate::store::{Result, StoreError, TicketFilter, TicketOrder};
use crate::ticket::{
    DocumentRequest, EventView, MessageView, Participant, ReportRow, TicketDetail, TicketRow,
};

/// The columns of [`StoredTicket`], for a query over `tickets t`.
pub(super) const TICKET_COLUMNS: &str = "t.id, t.subject, t.state, t.outcome, t.pipeline, \
    t.owner, t.priority, t.ticket_type, t.category, t.area, t.tags, t.requester, \
    t.requester_name, t.mailbox, t.needs_review, t.linked_ticket, t.due_at, \
    t.created_at, t.updated_at, t.fields, t.internal, t.first_response_due_at, \
    t.first_response_at, t.paused_at, \
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count";

/// A ticket as stored, before its text columns are decoded.
#[derive(sqlx::FromRow)]
pub(super) struct StoredTicket {
    id: i64,
    subject: String,
    state: String,
    outcome: Option<String>,
    pipeline: String,
    owner: Option<String>,
    priority: String,
    ticket_type: Option<String>,
    category: Option<String>,
    area: Option<String>,
    /// JSON list.
    tags: String,
    requester: Option<String>,
    requester_name: Option<String>,
    mailbox: String,
    needs_review: i64,
    linked_ticket: Option<i64>,
    due_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    /// JSON object.
    fields: String,
    internal: i64,
    first_response_due_at: Option<i64>,
    first_response_at: Option<i64>,
    paused_at: Option<i64>,
    message_count: i64,
}

impl StoredTicket {
    fn decode(self, keys: Vec<Key>) -> Result<TicketRow> {
        Ok(TicketRow {
            number: self.id,
            subject: self.subject,
            state: decode("tickets.state", self.state)?,
            outcome: decode_opt("tickets.outcome", self.outcome)?,
            pipeline: self.pipeline,
            owner: self.owner,
            priority: decode("tickets.priority", self.priority)?,
            ticket_type: self.ticket_type,
            category: self.category,
            area: self.area,
            tags: decode_json("tickets.tags", self.tags)?,
            fields: decode_json("tickets.fields", self.fields)?,
            keys,
            requester: self.requester,
            requester_name: self.requester_name,
            mailbox: self.mailbox,
            needs_review: self.needs_review != 0,
            internal: self.internal != 0,
            linked_ticket: self.linked_ticket,
            due_at: self.due_at,
            first_response_due_at: self.first_response_due_at,
            first_response_at: self.first_response_at,
            paused_at: self.paused_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
            message_count: self.message_count,
        })
    }
}

/// The keys of these tickets, by ticket: one statement per few hundred
/// tickets, not one per ticket.
async fn keys_of(pool: &Pool<Db>, tickets: &[i64]) -> Result<HashMap<i64, Vec<Key>>> {
    let mut keys: HashMap<i64, Vec<Key>> = HashMap::new();
    for chunk in tickets.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "SELECT ticket_id, name, value FROM ticket_keys WHERE ticket_id IN (",
        );
        let mut list = q.separated(", ");
        for ticket in chunk {
            list.push_bind(*ticket);
        }
        q.push(") ORDER BY ticket_id, name, value");
        let rows: Vec<(i64, String, String)> = q.build_query_as().fetch_all(pool).await?;
        for (ticket, name, value) in rows {
            keys.entry(ticket).or_default().push(Key { name, value });
        }
    }
    Ok(keys)
}

/// Decodes listed tickets, with the keys of all of them read at once.
pub(super) async fn with_keys(
    pool: &Pool<Db>,
    stored: Vec<StoredTicket>,
) -> Result<Vec<TicketRow>> {
    let numbers: Vec<i64> = stored.iter().map(|t| t.id).collect();
    let mut keys = keys_of(pool, &numbers).await?;
    stored
        .into_iter()
        .map(|t| {
            let own = keys.remove(&t.id).unwrap_or_default();
            t.decode(own)
        })
        .collect()
}

/// Appends the conditions of a ticket list to a query over `tickets t`:
/// only the filters that are set, each with its values bound, so that the
/// database sees plain conditions on indexed columns (`t.state IN (...)`,
/// `LOWER(t.owner) = ...`: migration 0009's indexes) instead of one text
/// of `($n IS NULL OR ...)` for every combination, which neither planner
/// can use an index for. `states`: false for the counts per state.
/// Returns whether a condition needs the tickets' rows (any but the
/// states and the owner, which the indexes answer alone).
pub(super) fn push_where(q: &mut QueryBuilder<Db>, filter: &TicketFilter, states: bool) -> bool {
    let mut rows = false;
    q.push(" WHERE 1 = 1");
    if states && !filter.states.is_empty() {
        q.push(" AND t.state IN (");
        let mut list = q.separated(", ");
        for state in &filter.states {
            list.push_bind(state.as_str());
        }
        q.push(")");
    }
    if let Some(pipeline) = &filter.pipeline {
        rows = true;
        q.push(" AND t.pipeline = ").push_bind(pipeline.clone());
    }
    if let Some(owner) = &filter.owner {
        q.push(" AND LOWER(t.owner) = LOWER(")
            .push_bind(owner.clone())
            .push(")");
    }
    if let Some(priority) = filter.priority {
        rows = true;
        q.push(" AND t.priority = ").push_bind(priority.as_str());
    }
    if let Some((name, value)) = &filter.key {
        rows = true;
        q.push(" AND EXISTS (SELECT 1 FROM ticket_keys k WHERE k.ticket_id = t.id AND k.name = ")
            .push_bind(name.clone())
            .push(" AND k.value = ")
            .push_bind(value.clone())
            .push(")");
    }
    if let Some(at) = filter.overdue_at {
        rows = true;
        q.push(format_args!(
            " AND t.state <> 'done' AND {EFFECTIVE_DUE} <= COALESCE(t.paused_at, "
        ))
        .push_bind(at)
        .push(")");
    }
    if let Some(mailbox) = &filter.mailbox {
        rows = true;
        q.push(" AND t.mailbox = ").push_bind(mailbox.clone());
    }
    for (column, value) in [
        ("ticket_type", &filter.ticket_type),
        ("category", &filter.category),
        ("area", &filter.area),
    ] {
        if let Some(value) = value {
            rows = true;
            q.push(format_args!(" AND t.{column} = "))
                .push_bind(value.clone());
        }
    }
    if let Some(channel) = filter.channel {
        rows = true;
        q.push(" AND t.channel = ").push_bind(channel.as_str());
    }
    // The search box: the tickets the search index finds (`search.rs`).
    if let Some((query, number)) = super::search::query_of(filter) {
        rows = true;
        q.push(" AND t.id IN (SELECT ticket_id FROM (");
        super::search::push_matches(q, &query, number);
        q.push(") found)");
    }
    rows
}

pub async fn list_tickets(pool: &Pool<Db>, filter: &TicketFilter) -> Result<Vec<TicketRow>> {
    // A search lists its tickets best first.
    if super::search::query_of(filter).is_some() {
        let hits = super::search::search(pool, filter).await?;
        return Ok(hits.into_iter().map(|h| h.ticket).collect());
    }
    // The page's tickets first, then their columns and message counts:
    // the count is one lookup per listed ticket, not per ticket matched.
    let mut q = QueryBuilder::<Db>::new(format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id IN (SELECT t.id FROM tickets t"
    ));
    push_where(&mut q, filter, true);
    q.push(order_by(filter));
    q.push(" LIMIT ")
        .push_bind(filter.limit.unwrap_or(i64::MAX))
        .push(" OFFSET ")
        .push_bind(filter.offset.unwrap_or(0))
        .push(")");
    q.push(order_by(filter));
    let stored: Vec<StoredTicket> = q.build_query_as().fetch_all(pool).await?;
    with_keys(pool, stored).await
}

/// The order of a list, ties by number. Plain columns where they can be
/// (the activity order reads the `tickets_activity` index backwards).
fn order_by(filter: &TicketFilter) -> String {
    if filter.overdue_at.is_some() {
        return format!(" ORDER BY {EFFECTIVE_DUE}, t.id");
    }
    match filter.order {
        TicketOrder::Due => {
            format!(" ORDER BY COALESCE({EFFECTIVE_DUE}, 9223372036854775807), t.id")
        }
        TicketOrder::Activity => " ORDER BY t.updated_at DESC, t.id".into(),
        TicketOrder::Number => " ORDER BY t.id".into(),
    }
}

/// How many tickets each state holds under `filter`, its states aside
/// (the tray's counts).
pub async fn count_by_state(pool: &Pool<Db>, filter: &TicketFilter) -> Result<Vec<(String, i64)>> {
    let mut probe = QueryBuilder::<Db>::new("");
    let mut q = if push_where(&mut probe, filter, false) {
        // The conditions read every row: read the table once, then
        // count. Grouped directly, SQLite walks the state index instead
        // (no sort) and fetches each row from it: three times slower.
        let mut q =
            QueryBuilder::<Db>::new("WITH matched AS MATERIALIZED (SELECT t.state FROM tickets t");
        push_where(&mut q, filter, false);
        q.push(") SELECT state, COUNT(*) FROM matched");
        q
    } else {
        // States and owner only: counted from an index alone.
        let mut q = QueryBuilder::<Db>::new("SELECT t.state, COUNT(*) FROM tickets t");
        push_where(&mut q, filter, false);
        q
    };
    q.push(" GROUP BY state");
    Ok(q.build_query_as::<(String, i64)>().fetch_all(pool).await?)
}

/// A row of `buzon report`, before decoding.
#[derive(sqlx::FromRow)]
struct StoredReportRow {
    #[sqlx(flatten)]
    ticket: StoredTicket,
    channel: String,
    closed_at: Option<i64>,
    first_reply_at: Option<i64>,
}

/// `buzon report`: tickets created in [from, to) (Unix ms) with
/// the time they were first answered: the ticket's
/// `first_response_at` (what `deadlines.first_response_met_by`
/// counts), else, for tickets from before that column, their
/// first agent reply (outbox kind `reply`). Acknowledgements and
/// notifications are automatic, not a response.
pub async fn report_rows(pool: &Pool<Db>, from: i64, to: i64) -> Result<Vec<ReportRow>> {
    let sql = format!(
        "SELECT {TICKET_COLUMNS}, t.channel, t.closed_at, \
         (SELECT MIN(m.created_at) FROM messages m \
          JOIN outbox o ON o.message_id = m.message_id \
          WHERE m.ticket_id = t.id AND m.direction = 'out' AND o.kind = 'reply') \
         AS first_reply_at \
         FROM tickets t WHERE t.created_at >= $1 AND t.created_at < $2 ORDER BY t.id"
    );
    let stored: Vec<StoredReportRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?;
    let mut extra = Vec::with_capacity(stored.len());
    let mut tickets = Vec::with_capacity(stored.len());
    for r in stored {
        let channel = decode("tickets.channel", r.channel)?;
        extra.push((channel, r.closed_at, r.first_reply_at));
        tickets.push(r.ticket);
    }
    let tickets = with_keys(pool, tickets).await?;
    Ok(tickets
        .into_iter()
        .zip(extra)
        .map(|(mut ticket, (channel, closed_at, first_reply_at))| {
            ticket.first_response_at = ticket.first_response_at.or(first_reply_at);
            ReportRow {
                first_response_at: ticket.first_response_at,
                ticket,
                channel,
                closed_at,
            }
        })
        .collect())
}

/// A message as stored, before its mailboxes and attachments are added.
#[derive(sqlx::FromRow)]
struct StoredMessage {
    id: i64,
    direction: String,
    message_id: Option<String>,
    from_addr: Option<String>,
    from_name: Option<String>,
    to_addrs: String,
    cc_addrs: String,
    subject: String,
    body_text: String,
    automatic: Option<String>,
    warnings: String,
    created_at: i64,
}

pub async fn ticket_detail(pool: &Pool<Db>, number: i64) -> Result<TicketDetail> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id = $1");
    let stored: StoredTicket = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(number)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
    let ticket = with_keys(pool, vec![stored])
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
    let participants = sqlx::query_as::<_, (String, Option<String>, String)>(
        "SELECT address, name, role FROM participants WHERE ticket_id = $1 ORDER BY address",
    )
    .bind(number)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(address, name, role)| Participant {
        address,
        name,
        role,
    })
    .collect();
    let stored: Vec<StoredMessage> = sqlx::query_as(
        "SELECT id, direction, message_id, from_addr, from_name, to_addrs, cc_addrs, \
         subject, body_text, automatic, warnings, created_at \
         FROM messages WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(number)
    .fetch_all(pool)
    .await?;
    let mut mailboxes = mailboxes_of_ticket(pool, number).await?;
    let mut attachments = attachments_of_ticket(pool, number).await?;
    let mut messages = Vec::with_capacity(stored.len());
    for m in stored {
        messages.push(MessageView {
            id: m.id,
            direction: m.direction,
            message_id: m.message_id,
            from: m.from_addr,
            from_name: m.from_name,
            to: m.to_addrs,
            cc: m.cc_addrs,
            subject: m.subject,
            body_text: m.body_text,
            automatic: m.automatic,
            warnings: m.warnings,
            mailboxes: mailboxes.remove(&m.id).unwrap_or_default(),
            attachments: attachments.remove(&m.id).unwrap_or_default(),
            created_at: m.created_at,
        });
    }
    let events = sqlx::query_as::<_, (i64, String, String, String)>(
        "SELECT at, actor, kind, detail FROM events WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(number)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(at, actor, kind, detail)| {
        Ok(EventView {
            at,
            actor: decode("events.actor", actor)?,
            kind: decode("events.kind", kind)?,
            detail,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let requests = sqlx::query_as::<_, (String, String, i64, Option<i64>)>(
        "SELECT item, status, requested_at, received_at FROM document_requests \
         WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(number)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(
        |(item, status, requested_at, received_at)| DocumentRequest {
            item,
            status,
            requested_at,
            received_at,
        },
    )
    .collect();
    Ok(TicketDetail {
        ticket,
        requests,
        participants,
        messages,
        events,
        alerts: Vec::new(),
    })
}
