//! What the mail outbox and the webhook deliveries share: a queue of rows
//! (`status`, `attempts`, `next_attempt_at`, `lease_until`, `lease_holder`,
//! `last_error`, `sent_at`, `requeued_at`) claimed with a lease by one
//! instance, in order per ticket, then marked sent, retried or given up.
//! `outbox.rs` and `webhooks.rs` keep what is their own (what a row holds,
//! the `message.sent` events, the fan-out).

use sqlx::Pool;

use super::{CLAIM_LOCK, Conn, Db};
use crate::store::Result;
use crate::store::sql::ROWS_PER_STATEMENT;
use crate::ticket::OutboxStatus;

/// One of the two queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// `outbox`: mails, in order per ticket.
    Outbox,
    /// `webhook_deliveries`: in order per ticket and endpoint, by event.
    Webhooks,
}

impl Queue {
    pub const ALL: [Queue; 2] = [Queue::Outbox, Queue::Webhooks];

    fn table(self) -> &'static str {
        match self {
            Queue::Outbox => "outbox",
            Queue::Webhooks => "webhook_deliveries",
        }
    }

    /// The order rows are claimed in, and a ticket's rows go out in.
    fn order(self) -> &'static str {
        match self {
            Queue::Outbox => "id",
            Queue::Webhooks => "event_id",
        }
    }

    /// Which earlier rows (`e`) a row (`o`) waits for: its ticket's mails;
    /// its ticket's deliveries to the same endpoint.
    fn same_line(self) -> &'static str {
        match self {
            Queue::Outbox => "e.ticket_id = o.ticket_id",
            Queue::Webhooks => "e.endpoint = o.endpoint AND e.ticket_id = o.ticket_id",
        }
    }
}

/// The claim: leases up to `$3` rows due at `$2` to the holder `$4` until
/// `$1`, counting an attempt each, and returns `returning` of them.
///
/// Order per ticket: a row waits while an earlier one of its line (see
/// `same_line`) is still queued (due later, or leased by another worker),
/// so one claim holds at most one row per line and the rows of different
/// lines may be sent concurrently; the check finds a line's rows by index
/// (`outbox_order`, `webhook_deliveries_order`). The `+` before
/// `next_attempt_at` keeps SQLite off the due index: with it, each claim
/// checked and sorted every due row of a backlog (quadratic: 31 mails/s at
/// 5,000 queued); it walks the queue in order instead (`outbox_queue`,
/// `webhook_deliveries_queue`) and stops at the limit.
pub fn claim_sql(queue: Queue, returning: &str) -> String {
    let (table, order, same) = (queue.table(), queue.order(), queue.same_line());
    format!(
        "UPDATE {table} SET lease_until = $1, lease_holder = $4, attempts = attempts + 1 \
         WHERE id IN (SELECT o.id FROM {table} o WHERE o.status = 'queued' \
         AND +o.next_attempt_at <= $2 AND (o.lease_until IS NULL OR o.lease_until < $2) \
         AND NOT EXISTS (SELECT 1 FROM {table} e WHERE e.status = 'queued' AND {same} \
         AND e.{order} < o.{order}) ORDER BY o.{order} LIMIT $3{CLAIM_LOCK}) \
         RETURNING {returning}"
    )
}

/// Marks rows sent at `now`, inside the caller's transaction or on its
/// connection: one statement per few hundred.
pub async fn mark_sent(conn: &mut Conn, queue: Queue, ids: &[i64], now: i64) -> Result<()> {
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(format!(
            "UPDATE {} SET status = 'sent', lease_until = NULL, last_error = NULL, sent_at = ",
            queue.table()
        ));
        q.push_bind(now).push(" WHERE id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(")");
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// A failed attempt: retried at `next`, or given up (`None`).
pub async fn failed(
    pool: &Pool<Db>,
    queue: Queue,
    id: i64,
    error: &str,
    next: Option<i64>,
) -> Result<()> {
    let status = match next {
        Some(_) => OutboxStatus::Queued,
        None => OutboxStatus::Failed,
    };
    let sql = format!(
        "UPDATE {} SET status = $2, last_error = $3, lease_until = NULL, \
         next_attempt_at = COALESCE($4, next_attempt_at) WHERE id = $1",
        queue.table()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(status.as_str())
        .bind(error)
        .bind(next)
        .execute(pool)
        .await?;
    Ok(())
}

/// Makes a queued or failed row due now, with a fresh retry schedule and
/// maximum age; false for one already sent (left alone) or unknown.
pub async fn requeue(pool: &Pool<Db>, queue: Queue, id: i64, now: i64) -> Result<bool> {
    let sql = format!(
        "UPDATE {} SET status = 'queued', next_attempt_at = $2, requeued_at = $2, \
         attempts = 0, lease_until = NULL WHERE id = $1 AND status <> 'sent'",
        queue.table()
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Gives back the leases `holder` holds on queued mails and webhook
/// deliveries, so they are claimed again at once. Only for the leases of a
/// process that is gone: the daemon calls it at start, before it claims
/// anything, under a name no other live process has (see `instance`).
/// Returns how many mails and deliveries were given back.
pub async fn release_claims(pool: &Pool<Db>, holder: &str) -> Result<(u64, u64)> {
    let mut given = [0u64; 2];
    for (n, queue) in Queue::ALL.into_iter().enumerate() {
        let sql = format!(
            "UPDATE {} SET lease_until = NULL, lease_holder = NULL \
             WHERE lease_holder = $1 AND status = 'queued' AND lease_until IS NOT NULL",
            queue.table()
        );
        given[n] = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok((given[0], given[1]))
}
