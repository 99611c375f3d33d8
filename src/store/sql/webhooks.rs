//! Webhook events and their deliveries: recording an event in the change's
//! transaction (with the ticket's columns copied by the same statement),
//! fanning events out to endpoints, claiming deliveries with a lease,
//! marking them sent or failed. The delivery side follows the mail outbox
//! (`outbox.rs`): the same lease, retry and order-per-ticket design.

use sqlx::{Pool, Row};

use super::queue::{self, Queue, claim_sql};
use super::{Conn, Db, FANOUT_LOCK, ROW_LOCK, begin};
use crate::store::sql::{ROWS_PER_STATEMENT, decode, decode_opt};
use crate::store::{HookJob, Result, StoreError};
use crate::ticket::{HookDelivery, HookEvent, HookTicket, NewHookEvent, OutboxStatus};

/// Writes events (`(ticket, now, event)`) inside the caller's
/// transaction, each with its ticket's columns as they stand now (after
/// the change), one statement per few hundred. The ids follow the order
/// given; a ticket's events are written under its row lock (PostgreSQL)
/// or the write lock (SQLite), so a ticket's event ids follow the order
/// its changes committed in.
pub async fn insert_hook_events(tx: &mut Conn, events: &[(i64, i64, &NewHookEvent)]) -> Result<()> {
    // 5 binds a row.
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO webhook_events (ticket_id, kind, detail, created_at, subject, state, \
             outcome, pipeline, owner, priority, ticket_type, mailbox, requester, fields) \
             SELECT v.column1, v.column2, v.column3, v.column4, t.subject, t.state, t.outcome, \
             t.pipeline, t.owner, t.priority, t.ticket_type, t.mailbox, t.requester, t.fields \
             FROM (",
        );
        q.push_values(
            chunk.iter().enumerate(),
            |mut row, (i, (ticket, now, e))| {
                row.push_bind(*ticket)
                    .push_bind(e.kind.as_str())
                    .push_bind(e.detail.to_string())
                    .push_bind(*now)
                    .push_bind(i as i64);
            },
        );
        q.push(") AS v JOIN tickets t ON t.id = v.column1 ORDER BY v.column5");
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Locks these tickets' rows until the transaction ends (PostgreSQL), so
/// that an event written now gets its id after every earlier change of
/// the same ticket committed.
pub async fn lock_tickets(tx: &mut Conn, tickets: &[i64]) -> Result<()> {
    if ROW_LOCK.is_empty() || tickets.is_empty() {
        return Ok(());
    }
    let mut sorted = tickets.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for chunk in sorted.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT id FROM tickets WHERE id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(") ORDER BY id");
        q.push(ROW_LOCK);
        q.build().fetch_all(&mut *tx).await?;
    }
    Ok(())
}

/// The columns of [`StoredEvent`], from `webhook_events e`.
const EVENT_COLUMNS: &str = "e.id AS event_id, e.ticket_id, e.kind, e.detail, e.created_at \
    AS event_at, e.subject, e.state, e.outcome, e.pipeline, e.owner, e.priority, e.ticket_type, \
    e.mailbox, e.requester, e.fields";

#[derive(sqlx::FromRow)]
struct StoredEvent {
    event_id: i64,
    ticket_id: i64,
    kind: String,
    detail: String,
    event_at: i64,
    subject: String,
    state: String,
    outcome: Option<String>,
    pipeline: String,
    owner: Option<String>,
    priority: String,
    ticket_type: Option<String>,
    mailbox: String,
    requester: Option<String>,
    fields: String,
}

impl StoredEvent {
    fn decode(self) -> Result<HookEvent> {
        let json = |column: &'static str, text: String| {
            serde_json::from_str::<serde_json::Value>(&text).map_err(|_| StoreError::Invalid {
                column,
                value: text,
            })
        };
        Ok(HookEvent {
            id: self.event_id,
            kind: decode("webhook_events.kind", self.kind)?,
            detail: json("webhook_events.detail", self.detail)?,
            created_at: self.event_at,
            ticket: HookTicket {
                id: self.ticket_id,
                number: String::new(),
                subject: self.subject,
                state: decode("webhook_events.state", self.state)?,
                outcome: decode_opt("webhook_events.outcome", self.outcome)?,
                pipeline: self.pipeline,
                owner: self.owner,
                priority: decode("webhook_events.priority", self.priority)?,
                ticket_type: self.ticket_type,
                mailbox: self.mailbox,
                requester: self.requester,
                fields: json("webhook_events.fields", self.fields)?,
                url: None,
            },
        })
    }
}

/// Fans up to `limit` new events out: one delivery per endpoint that
/// `endpoints_for` names (in the order of the event ids), the event
/// marked done; an event no endpoint wants is deleted. One fan-out at a
/// time (`FANOUT_LOCK` on PostgreSQL, the write lock on SQLite), so a
/// ticket's deliveries are created in the order of its events. Returns
/// how many events were read.
pub async fn hook_fan_out(
    pool: &Pool<Db>,
    now: i64,
    limit: i64,
    endpoints_for: &(dyn Fn(&HookEvent) -> Vec<String> + Send + Sync),
) -> Result<usize> {
    // A look first, outside a write transaction: the daemon asks after
    // every round, and mostly there is nothing new.
    let any: Option<i64> =
        sqlx::query_scalar("SELECT id FROM webhook_events WHERE fanned_out = 0 LIMIT 1")
            .fetch_optional(pool)
            .await?;
    if any.is_none() {
        return Ok(0);
    }
    let mut tx = begin(pool).await?;
    if !FANOUT_LOCK.is_empty() {
        sqlx::query(FANOUT_LOCK).execute(&mut *tx).await?;
    }
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM webhook_events e WHERE e.fanned_out = 0 ORDER BY e.id LIMIT $1"
    );
    let rows: Vec<StoredEvent> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
    let read = rows.len();
    let mut deliveries: Vec<(i64, i64, String)> = Vec::new();
    let mut wanted = Vec::new();
    let mut unwanted = Vec::new();
    for row in rows {
        let id = row.event_id;
        // An event that cannot be read (written by a newer buzon) is
        // left for that buzon rather than dropped.
        let event = match row.decode() {
            Ok(e) => e,
            Err(error) => {
                tracing::warn!(event = id, %error, "Webhook event not understood; left queued.");
                continue;
            }
        };
        let names = endpoints_for(&event);
        if names.is_empty() {
            unwanted.push(id);
        } else {
            wanted.push(id);
            deliveries.extend(names.into_iter().map(|n| (id, event.ticket.id, n)));
        }
    }
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO webhook_deliveries (delivery_id, event_id, endpoint, ticket_id, status, \
             attempts, next_attempt_at, created_at) ",
        );
        q.push_values(chunk, |mut row, (event, ticket, endpoint)| {
            row.push_bind(uuid::Uuid::new_v4().to_string())
                .push_bind(*event)
                .push_bind(endpoint)
                .push_bind(*ticket)
                .push_bind(OutboxStatus::Queued.as_str())
                .push("0")
                .push_bind(now)
                .push_bind(now);
        });
        q.push(" ON CONFLICT (event_id, endpoint) DO NOTHING");
        q.build().execute(&mut *tx).await?;
    }
    for (ids, sql) in [
        (
            &wanted,
            "UPDATE webhook_events SET fanned_out = 1 WHERE id IN (",
        ),
        (&unwanted, "DELETE FROM webhook_events WHERE id IN ("),
    ] {
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<Db>::new(sql);
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(read)
}

/// The columns of [`StoredDelivery`], from `webhook_deliveries d`.
const DELIVERY_COLUMNS: &str = "d.id, d.delivery_id, d.endpoint, d.event_id, d.ticket_id AS \
    delivery_ticket, d.status, d.attempts, d.next_attempt_at, d.last_error, d.created_at, \
    d.sent_at, d.requeued_at";

#[derive(sqlx::FromRow)]
struct StoredDelivery {
    id: i64,
    delivery_id: String,
    endpoint: String,
    event_id: i64,
    delivery_ticket: i64,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
    requeued_at: Option<i64>,
    kind: String,
}

impl StoredDelivery {
    fn decode(self) -> Result<HookDelivery> {
        Ok(HookDelivery {
            id: self.id,
            delivery_id: self.delivery_id,
            endpoint: self.endpoint,
            event_id: self.event_id,
            kind: decode("webhook_events.kind", self.kind)?,
            ticket: self.delivery_ticket,
            status: decode("webhook_deliveries.status", self.status)?,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            sent_at: self.sent_at,
            requeued_at: self.requeued_at,
        })
    }
}

/// Claims up to `limit` due deliveries, leased until `lease_until`.
/// Order per ticket and endpoint: a delivery waits while an earlier event
/// of its ticket for the same endpoint is still queued (retrying, or
/// leased by another worker), so one claim holds at most one delivery per
/// ticket and endpoint (`queue::claim_sql`).
pub async fn hook_claim(
    pool: &Pool<Db>,
    now: i64,
    lease_until: i64,
    limit: i64,
    holder: &str,
) -> Result<Vec<HookJob>> {
    let mut tx = begin(pool).await?;
    let sql = claim_sql(Queue::Webhooks, "id");
    let ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .bind(holder)
        .fetch_all(&mut *tx)
        .await?;
    let mut jobs = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT {DELIVERY_COLUMNS}, {EVENT_COLUMNS} FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id WHERE d.id IN ("
        ));
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(") ORDER BY e.id");
        for row in q.build().fetch_all(&mut *tx).await? {
            let delivery = StoredDelivery::from_row_ref(&row)?.decode()?;
            let event = <StoredEvent as sqlx::FromRow<_>>::from_row(&row)?.decode()?;
            jobs.push(HookJob { delivery, event });
        }
    }
    tx.commit().await?;
    Ok(jobs)
}

impl StoredDelivery {
    fn from_row_ref(row: &<Db as sqlx::Database>::Row) -> Result<StoredDelivery> {
        Ok(<StoredDelivery as sqlx::FromRow<_>>::from_row(row)?)
    }
}

/// Marks deliveries sent, in one statement.
pub async fn hook_sent(pool: &Pool<Db>, ids: &[i64], now: i64) -> Result<()> {
    let mut conn = pool.acquire().await?;
    queue::mark_sent(&mut conn, Queue::Webhooks, ids, now).await
}

/// A failed attempt: retried at `next`, or given up (`None`).
pub async fn hook_failed(pool: &Pool<Db>, id: i64, error: &str, next: Option<i64>) -> Result<()> {
    queue::failed(pool, Queue::Webhooks, id, error, next).await
}

pub async fn hook_list(pool: &Pool<Db>, status: Option<OutboxStatus>) -> Result<Vec<HookDelivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS}, e.kind FROM webhook_deliveries d \
         JOIN webhook_events e ON e.id = d.event_id \
         WHERE ($1 IS NULL OR d.status = $1) ORDER BY d.event_id, d.id"
    );
    let rows: Vec<StoredDelivery> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(status.map(OutboxStatus::as_str))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(StoredDelivery::decode).collect()
}

/// One delivery by id (`webhooks retry ID`), without reading the others.
pub async fn hook_get(pool: &Pool<Db>, id: i64) -> Result<Option<HookDelivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS}, e.kind FROM webhook_deliveries d \
         JOIN webhook_events e ON e.id = d.event_id WHERE d.id = $1"
    );
    let row: Option<StoredDelivery> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(StoredDelivery::decode).transpose()
}

/// Makes a queued or failed delivery due now with a fresh schedule and
/// maximum age; false for one already sent (left alone) or unknown.
pub async fn hook_requeue(pool: &Pool<Db>, id: i64, now: i64) -> Result<bool> {
    queue::requeue(pool, Queue::Webhooks, id, now).await
}

/// Deliveries queued and given up (for `/metrics`).
pub async fn hook_counts(pool: &Pool<Db>) -> Result<(i64, i64)> {
    // Two counts on the status index, not a pass over every delivery ever
    // sent (the daemon asks after every round).
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'queued') AS queued, \
         (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'failed') AS failed",
    )
    .fetch_one(pool)
    .await?;
    Ok((row.try_get("queued")?, row.try_get("failed")?))
}

/// Deletes the deliveries sent before `before`, then the events left with
/// no delivery (fanned out, older than `before`), a few thousand rows a
/// statement so no transaction holds the database for long. A delivery
/// that gave up or waits, and its event, stay. Returns the deliveries and
/// the events deleted.
pub async fn hook_prune(pool: &Pool<Db>, before: i64) -> Result<(u64, u64)> {
    const BATCH: i64 = 5_000;
    let mut deleted = [0u64; 2];
    for (n, sql) in [
        "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries \
         WHERE status = 'sent' AND sent_at < $1 LIMIT $2)",
        "DELETE FROM webhook_events WHERE id IN (SELECT v.id FROM webhook_events v \
         WHERE v.fanned_out = 1 AND v.created_at < $1 AND NOT EXISTS \
         (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = v.id) LIMIT $2)",
    ]
    .into_iter()
    .enumerate()
    {
        loop {
            let done = sqlx::query(sql)
                .bind(before)
                .bind(BATCH)
                .execute(pool)
                .await?
                .rows_affected();
            deleted[n] += done;
            if done < BATCH as u64 {
                break;
            }
        }
    }
    Ok((deleted[0], deleted[1]))
}
