//! Tickets as listed and shown (`tickets list`, `tickets show`, `report`):
//! the rows with their keys, and a ticket's participants, messages,
//! history and checklist.

use std::collections::HashMap;

use sqlx::Pool;

use super::Db;
use super::messages::{attachments_of, mailboxes_of};
use crate::route::Key;
use crate::store::sql::{EFFECTIVE_DUE, ROWS_PER_STATEMENT, decode, decode_json, decode_opt};
use crate::store::{Result, StoreError, TicketFilter};
use crate::ticket::{
    DocumentRequest, EventView, MessageView, Participant, ReportRow, TicketDetail, TicketRow,
};

/// The columns of [`StoredTicket`], for a query over `tickets t`.
const TICKET_COLUMNS: &str = "t.id, t.subject, t.state, t.outcome, t.pipeline, \
    t.owner, t.priority, t.ticket_type, t.category, t.area, t.tags, t.requester, \
    t.requester_name, t.mailbox, t.needs_review, t.linked_ticket, t.due_at, \
    t.created_at, t.updated_at, t.fields, t.internal, t.first_response_due_at, \
    t.first_response_at, t.paused_at, \
    (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count";

/// A ticket as stored, before its text columns are decoded.
#[derive(sqlx::FromRow)]
struct StoredTicket {
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
async fn with_keys(pool: &Pool<Db>, stored: Vec<StoredTicket>) -> Result<Vec<TicketRow>> {
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

/// The conditions of a ticket list: one static text for every combination
/// of filters, `($n IS NULL OR ...)`. `bind_filter` binds $1..$17; $7
/// (limit), $9 (order) and $10 (offset) only matter to `list_tickets`.
fn ticket_where() -> String {
    format!(
        "WHERE ($1 IS NULL OR $1 LIKE '%,' || t.state || ',%') \
         AND ($2 IS NULL OR t.pipeline = $2) \
         AND ($3 IS NULL OR LOWER(t.owner) = LOWER($3)) \
         AND ($4 IS NULL OR t.priority = $4) \
         AND ($5 IS NULL OR EXISTS (SELECT 1 FROM ticket_keys k \
              WHERE k.ticket_id = t.id AND k.name = $5 AND k.value = $6)) \
         AND ($8 IS NULL OR (t.state <> 'done' AND {EFFECTIVE_DUE} <= COALESCE(t.paused_at, $8))) \
         AND ($11 IS NULL OR t.mailbox = $11) \
         AND ($14 IS NULL OR t.ticket_type = $14) \
         AND ($15 IS NULL OR t.category = $15) \
         AND ($16 IS NULL OR t.area = $16) \
         AND ($17 IS NULL OR t.channel = $17) \
         AND ($12 IS NULL OR t.id = $13 \
              OR LOWER(COALESCE(t.requester, '')) LIKE '%' || $12 || '%' ESCAPE '\\' \
              OR LOWER(t.subject) LIKE '%' || $12 || '%' ESCAPE '\\' \
              OR EXISTS (SELECT 1 FROM ticket_keys k WHERE k.ticket_id = t.id \
                   AND LOWER(k.value) LIKE $12 || '%' ESCAPE '\\'))"
    )
}

type Query<'q> = sqlx::query::QueryAs<'q, Db, StoredTicket, <Db as sqlx::Database>::Arguments>;

/// Binds a filter's values to the parameters of `ticket_where`.
fn bind_filter<'q, O>(
    q: sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments>,
    filter: &'q TicketFilter,
) -> sqlx::query::QueryAs<'q, Db, O, <Db as sqlx::Database>::Arguments> {
    let (key_name, key_value) = match &filter.key {
        Some((n, v)) => (Some(n.as_str()), Some(v.as_str())),
        None => (None, None),
    };
    // The states as ",new,open," (one parameter on both backends).
    let states = (!filter.states.is_empty()).then(|| {
        let names: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        format!(",{},", names.join(","))
    });
    // The search box: a ticket number, a key (exact or as a prefix:
    // 75321 finds 75321_2), an address or words of the subject; LIKE's
    // own characters in what was typed are taken literally.
    let pattern = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        });
    q.bind(states)
        .bind(&filter.pipeline)
        .bind(&filter.owner)
        .bind(filter.priority.map(|p| p.as_str()))
        .bind(key_name)
        .bind(key_value)
        .bind(filter.limit.unwrap_or(i64::MAX))
        .bind(filter.overdue_at)
        .bind(filter.order.as_str())
        .bind(filter.offset.unwrap_or(0))
        .bind(&filter.mailbox)
        .bind(pattern)
        .bind(filter.search_number)
        .bind(&filter.ticket_type)
        .bind(&filter.category)
        .bind(&filter.area)
        .bind(filter.channel.map(|c| c.as_str()))
}

pub async fn list_tickets(pool: &Pool<Db>, filter: &TicketFilter) -> Result<Vec<TicketRow>> {
    let sql = format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t {} \
         ORDER BY CASE WHEN $8 IS NOT NULL THEN {EFFECTIVE_DUE} \
                       WHEN $9 = 'due' THEN COALESCE({EFFECTIVE_DUE}, 9223372036854775807) \
                       WHEN $9 = 'activity' THEN -t.updated_at \
                       ELSE t.id END, t.id LIMIT $7 OFFSET $10",
        ticket_where()
    );
    let query: Query<'_> = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    let stored = bind_filter(query, filter).fetch_all(pool).await?;
    with_keys(pool, stored).await
}

/// How many tickets each state holds under `filter`, its states aside
/// (the tray's counts).
pub async fn count_by_state(pool: &Pool<Db>, filter: &TicketFilter) -> Result<Vec<(String, i64)>> {
    let all_states = TicketFilter {
        states: Vec::new(),
        ..filter.clone()
    };
    // $7, $9 and $10 are bound for every list; compared with themselves
    // here so that both databases know their types.
    let sql = format!(
        "SELECT t.state, COUNT(*) FROM tickets t {} \
         AND $7 = $7 AND $9 = $9 AND $10 = $10 GROUP BY t.state",
        ticket_where()
    );
    let query = sqlx::query_as::<Db, (String, i64)>(sqlx::AssertSqlSafe(sql));
    Ok(bind_filter(query, &all_states).fetch_all(pool).await?)
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
            mailboxes: mailboxes_of(pool, m.id).await?,
            attachments: attachments_of(pool, m.id).await?,
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
