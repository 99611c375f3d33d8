//! The outbox: queueing mail (with the limit on automatic mail and the
//! outgoing message on the ticket), claiming it with a lease, marking it
//! sent or failed.

use std::collections::{BTreeMap, HashMap};

use sqlx::{Pool, Row};

use super::queue::{self, Queue, claim_sql};
use super::{CLAIM_LOCK, Conn, Db, LIMIT_LOCK, begin};
use crate::store::sql::{Queued, ROWS_PER_STATEMENT, decode, queued_line, under_auto_limit};
use crate::store::{Pending, Result, StoreError};
use crate::ticket::{EventKind, NewEvent, NewHookEvent, OutboxRow, OutboxStatus, OutgoingMail};

/// Queues a mail in the outbox and records it on the ticket as an
/// outgoing message, so replies to it thread by its Message-ID.
/// Returns the history lines to write (with the others, in one
/// statement): `mail_queued`, or why the limit on automatic mail
/// held a recipient back.
pub async fn insert_outgoing(
    tx: &mut sqlx::Transaction<'static, Db>,
    ticket: i64,
    mail_out: &OutgoingMail,
    now: i64,
) -> Result<Vec<NewEvent>> {
    let mut lines = queue_mails(tx, &[(ticket, now, mail_out)]).await?;
    Ok(lines.pop().unwrap_or_default())
}

/// `insert_outgoing` for the mails of several tickets (`(ticket,
/// now, mail)`) at once: the limit counted once for all their
/// recipients, then one statement per table. Returns each mail's
/// history lines, in order.
async fn queue_mails(
    tx: &mut Conn,
    mails: &[(i64, i64, &OutgoingMail)],
) -> Result<Vec<Vec<NewEvent>>> {
    let mut sent = auto_mail_counts(&mut *tx, mails).await?;
    let mut lines = Vec::with_capacity(mails.len());
    let mut queued = Vec::new();
    for &(ticket, now, mail) in mails {
        let mut events = Vec::new();
        let rcpt_to = match mail.auto_limit_per_hour {
            Some(limit) => under_auto_limit(mail, limit, &mut sent, &mut events),
            None => mail.rcpt_to.clone(),
        };
        if !rcpt_to.is_empty() {
            events.push(queued_line(mail, &rcpt_to));
            queued.push(Queued {
                ticket,
                now,
                mail,
                rcpt_to,
            });
        }
        lines.push(events);
    }
    for chunk in queued.chunks(ROWS_PER_STATEMENT) {
        insert_queued(&mut *tx, chunk).await?;
    }
    Ok(lines)
}

/// How many automatic mails each recipient of `mails` got in the
/// last hour. On PostgreSQL the addresses are locked first (an
/// advisory lock each, held to the end of the transaction), so
/// two instances cannot both see "4 of 5" and send 6; they are
/// locked in sorted order so that two batches never wait on each
/// other in a circle.
async fn auto_mail_counts(
    tx: &mut Conn,
    mails: &[(i64, i64, &OutgoingMail)],
) -> Result<HashMap<String, i64>> {
    let mut counts = HashMap::new();
    let mut addresses: Vec<String> = mails
        .iter()
        .filter(|(_, _, m)| m.auto_limit_per_hour.is_some())
        .flat_map(|(_, _, m)| m.rcpt_to.iter().map(|a| a.to_ascii_lowercase()))
        .collect();
    addresses.sort_unstable();
    addresses.dedup();
    let Some(now) = mails.iter().map(|(_, now, _)| *now).min() else {
        return Ok(counts);
    };
    if addresses.is_empty() {
        return Ok(counts);
    }
    if !LIMIT_LOCK.is_empty() {
        // Addresses never contain a line break.
        sqlx::query(LIMIT_LOCK)
            .bind(addresses.join("\n"))
            .execute(&mut *tx)
            .await?;
    }
    for chunk in addresses.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "SELECT address, COUNT(*) AS n FROM auto_mail_log WHERE queued_at > ",
        );
        q.push_bind(now - 3_600_000).push(" AND address IN (");
        let mut list = q.separated(", ");
        for address in chunk {
            list.push_bind(address);
        }
        q.push(") GROUP BY address");
        for r in q.build().fetch_all(&mut *tx).await? {
            counts.insert(r.try_get("address")?, r.try_get("n")?);
        }
    }
    Ok(counts)
}

/// The outbox rows of queued mails, the log behind the limit on
/// automatic mail, and the mails as outgoing messages of their
/// tickets: one statement each. A mail is stored once, as its outgoing
/// message: its outbox row's `raw` is left empty and read from there
/// (`OUTBOX_COLUMNS`). Before, every acknowledgement was written twice,
/// a fifth of the bytes a new mail writes.
async fn insert_queued(tx: &mut Conn, queued: &[Queued<'_>]) -> Result<()> {
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, \
         status, attempts, next_attempt_at, created_at) ",
    );
    q.push_values(queued, |mut row, m| {
        row.push_bind(m.ticket)
            .push_bind(&m.mail.kind)
            .push_bind(&m.mail.message_id)
            .push_bind(&m.mail.mail_from)
            .push_bind(m.rcpt_to.join(","))
            .push_bind(STORED_AS_MESSAGE)
            .push_bind(OutboxStatus::Queued.as_str())
            .push("0")
            .push_bind(m.now)
            .push_bind(m.now);
    });
    q.push(" RETURNING id, message_id");
    let mut outbox_ids = HashMap::new();
    for r in q.build().fetch_all(&mut *tx).await? {
        outbox_ids.insert(
            r.try_get::<String, _>("message_id")?,
            r.try_get::<i64, _>("id")?,
        );
    }
    let mut log = Vec::new();
    for m in queued
        .iter()
        .filter(|m| m.mail.auto_limit_per_hour.is_some())
    {
        let id = *outbox_ids.get(&m.mail.message_id).ok_or_else(|| {
            StoreError::Corrupt(format!("outbox row of <{}> missing", m.mail.message_id))
        })?;
        log.extend(
            m.rcpt_to
                .iter()
                .map(|a| (a.to_ascii_lowercase(), id, m.now)),
        );
    }
    if !log.is_empty() {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO auto_mail_log (address, outbox_id, queued_at) ",
        );
        q.push_values(&log, |mut row, (address, id, at)| {
            row.push_bind(address).push_bind(*id).push_bind(*at);
        });
        q.build().execute(&mut *tx).await?;
    }
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "INSERT INTO messages (ticket_id, direction, dedupe_key, message_id, from_addr, \
         to_addrs, subject, body_text, raw, raw_sha256, size, created_at) ",
    );
    q.push_values(queued, |mut row, m| {
        row.push_bind(m.ticket)
            .push("'out'")
            .push_bind(format!("mid:{}", m.mail.message_id))
            .push_bind(&m.mail.message_id)
            .push_bind(&m.mail.mail_from)
            .push_bind(m.rcpt_to.join(","))
            .push_bind(&m.mail.subject)
            .push_bind(&m.mail.body_text)
            .push_bind(&m.mail.raw)
            .push_bind(crate::parse::sha256_hex(&m.mail.raw))
            .push_bind(m.mail.raw.len() as i64)
            .push_bind(m.now);
    });
    q.build().execute(&mut *tx).await?;
    Ok(())
}

/// Writes what the changes of a transaction left pending (see
/// `Pending`): their mails, then every history line in one
/// statement. Returns the kinds of the mails queued, per ticket.
pub async fn flush_pending(tx: &mut Conn, pending: &Pending) -> Result<BTreeMap<i64, Vec<String>>> {
    let mails: Vec<(i64, i64, &OutgoingMail)> = pending
        .changes
        .iter()
        .flat_map(|c| c.outgoing.iter().map(move |m| (c.ticket, c.now, m)))
        .collect();
    let lines = queue_mails(&mut *tx, &mails).await?;
    let mut lines = lines.iter();
    let mut events = Vec::new();
    let mut queued = BTreeMap::<i64, Vec<String>>::new();
    for c in &pending.changes {
        events.extend(c.events.iter().map(|e| (c.ticket, c.now, e)));
        for (mail, written) in c.outgoing.iter().zip(lines.by_ref()) {
            if written.iter().any(|e| e.kind == EventKind::MailQueued) {
                queued.entry(c.ticket).or_default().push(mail.kind.clone());
            }
            events.extend(written.iter().map(|e| (c.ticket, c.now, e)));
        }
    }
    super::events::insert_events_of(&mut *tx, &events).await?;
    let hooks: Vec<_> = pending
        .hooks
        .iter()
        .map(|(t, now, e)| (*t, *now, e))
        .collect();
    super::webhooks::insert_hook_events(&mut *tx, &hooks).await?;
    Ok(queued)
}

/// An outbox row's `raw` when the mail is its ticket's outgoing message
/// with the same Message-ID, written in the same transaction: no mail is
/// empty, and messages are never deleted.
const STORED_AS_MESSAGE: &[u8] = b"";

/// The columns of [`StoredOutbox`]; `raw` from the outgoing message when
/// the row's is [`STORED_AS_MESSAGE`] (rows written before hold their own).
/// The view `outbox_mail` (migration 0018) says the same for people
/// reading the database: keep the two in step.
const OUTBOX_COLUMNS: &str = "id, ticket_id, kind, message_id, mail_from, rcpt_to, \
    CASE WHEN length(raw) = 0 THEN (SELECT m.raw FROM messages m \
    WHERE m.message_id = outbox.message_id AND m.direction = 'out' LIMIT 1) ELSE raw END AS raw, \
    status, attempts, next_attempt_at, last_error, created_at, sent_at, requeued_at";

/// An outbox row as stored, before its status and recipients are decoded.
#[derive(sqlx::FromRow)]
struct StoredOutbox {
    id: i64,
    ticket_id: Option<i64>,
    kind: String,
    message_id: String,
    mail_from: String,
    /// Comma-joined.
    rcpt_to: String,
    /// `None` only if the outgoing message is missing (see `OUTBOX_COLUMNS`).
    raw: Option<Vec<u8>>,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
    requeued_at: Option<i64>,
}

impl StoredOutbox {
    fn decode(self) -> Result<OutboxRow> {
        let raw = self.raw.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "outbox mail {} has no outgoing message <{}>",
                self.id, self.message_id
            ))
        })?;
        Ok(OutboxRow {
            id: self.id,
            ticket: self.ticket_id,
            kind: self.kind,
            message_id: self.message_id,
            mail_from: self.mail_from,
            rcpt_to: self
                .rcpt_to
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            raw,
            status: decode("outbox.status", self.status)?,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            sent_at: self.sent_at,
            requeued_at: self.requeued_at,
        })
    }
}

/// Claims up to `limit` due mails for `holder`, leased until
/// `lease_until`: at most one per ticket, in order (`queue::claim_sql`).
pub async fn outbox_claim(
    pool: &Pool<Db>,
    now: i64,
    lease_until: i64,
    limit: i64,
    holder: &str,
) -> Result<Vec<OutboxRow>> {
    let mut tx = begin(pool).await?;
    let sql = claim_sql(Queue::Outbox, OUTBOX_COLUMNS);
    let rows: Vec<StoredOutbox> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .bind(holder)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut out = rows
        .into_iter()
        .map(StoredOutbox::decode)
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|r| r.id);
    Ok(out)
}

/// Marks the mails of one delivery round sent, with their `message.sent`
/// webhook events (`(mail id, Some((ticket, event)))`), each mail and its
/// event in one transaction.
///
/// An event is written under its ticket's row lock, so that its id comes
/// after every change of the ticket that committed before (see
/// `webhooks::lock_tickets`). Usually one transaction (one commit, one
/// sync) marks the whole round. Holding several tickets' locks while
/// waiting for another could deadlock with an intake batch that locks
/// them in another order, so the round takes only the locks that are free
/// (`CLAIM_LOCK`, `SKIP LOCKED`); the mails of a ticket that is busy are
/// then marked in a transaction of their own, which waits for that one
/// lock only.
pub async fn outbox_sent(
    pool: &Pool<Db>,
    sent: &[(i64, Option<(i64, NewHookEvent)>)],
    now: i64,
) -> Result<()> {
    let mut tickets: Vec<i64> = sent
        .iter()
        .filter_map(|(_, e)| e.as_ref().map(|(t, _)| *t))
        .collect();
    tickets.sort_unstable();
    tickets.dedup();
    let mut tx = begin(pool).await?;
    let mut free = std::collections::HashSet::new();
    for chunk in tickets.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT id FROM tickets WHERE id IN (");
        let mut list = q.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        q.push(") ORDER BY id");
        q.push(CLAIM_LOCK);
        for r in q.build().fetch_all(&mut *tx).await? {
            free.insert(r.try_get::<i64, _>("id")?);
        }
    }
    let (now_mails, busy): (Vec<_>, Vec<_>) = sent
        .iter()
        .partition(|(_, e)| e.as_ref().is_none_or(|(t, _)| free.contains(t)));
    mark_sent(&mut tx, &now_mails, now).await?;
    tx.commit().await?;
    let mut busy_tickets: Vec<i64> = busy
        .iter()
        .filter_map(|(_, e)| e.as_ref().map(|(t, _)| *t))
        .collect();
    busy_tickets.sort_unstable();
    busy_tickets.dedup();
    for ticket in busy_tickets {
        let mut tx = begin(pool).await?;
        super::webhooks::lock_tickets(&mut tx, &[ticket]).await?;
        let mails: Vec<_> = busy
            .iter()
            .copied()
            .filter(|(_, e)| e.as_ref().is_some_and(|(t, _)| *t == ticket))
            .collect();
        mark_sent(&mut tx, &mails, now).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The outbox rows marked sent, and their webhook events, inside the
/// caller's transaction.
async fn mark_sent(
    tx: &mut Conn,
    sent: &[&(i64, Option<(i64, NewHookEvent)>)],
    now: i64,
) -> Result<()> {
    let ids: Vec<i64> = sent.iter().map(|(id, _)| *id).collect();
    queue::mark_sent(&mut *tx, Queue::Outbox, &ids, now).await?;
    let hooks: Vec<_> = sent
        .iter()
        .filter_map(|(_, e)| e.as_ref().map(|(t, e)| (*t, now, e)))
        .collect();
    super::webhooks::insert_hook_events(&mut *tx, &hooks).await
}

/// A failed attempt: retried at `next`, or given up (`None`).
pub async fn outbox_failed(pool: &Pool<Db>, id: i64, error: &str, next: Option<i64>) -> Result<()> {
    queue::failed(pool, Queue::Outbox, id, error, next).await
}

pub async fn outbox_list(pool: &Pool<Db>, status: Option<OutboxStatus>) -> Result<Vec<OutboxRow>> {
    let sql = format!(
        "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 IS NULL OR status = $1) ORDER BY id"
    );
    let rows: Vec<StoredOutbox> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(status.map(OutboxStatus::as_str))
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(StoredOutbox::decode).collect()
}

pub async fn outbox_get(pool: &Pool<Db>, id: i64) -> Result<Option<OutboxRow>> {
    let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
    let row: Option<StoredOutbox> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(StoredOutbox::decode).transpose()
}

/// Makes a queued or failed row due now, with a fresh retry
/// schedule and maximum age. A sent row is left alone (false).
pub async fn outbox_requeue(pool: &Pool<Db>, id: i64, now: i64) -> Result<bool> {
    queue::requeue(pool, Queue::Outbox, id, now).await
}

/// Mails queued (for `/metrics`): a count on the status index, not the
/// rows with their bytes (the daemon asks after every pass).
pub async fn outbox_queued(pool: &Pool<Db>) -> Result<i64> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE status = 'queued'")
            .fetch_one(pool)
            .await?
            .try_get("n")?,
    )
}

/// Automatic mails queued to `address` since `since` (the count
/// behind `outbox.auto_reply_limit_per_hour`).
pub async fn auto_mail_count(pool: &Pool<Db>, address: &str, since: i64) -> Result<i64> {
    Ok(
        sqlx::query(
            "SELECT COUNT(*) AS n FROM auto_mail_log WHERE address = $1 AND queued_at > $2",
        )
        .bind(address.to_ascii_lowercase())
        .bind(since)
        .fetch_one(pool)
        .await?
        .try_get("n")?,
    )
}
