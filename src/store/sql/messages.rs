//! Messages: the inbound message with its attachments and mailbox
//! arrivals, participants, and finding a stored message (by dedupe key or
//! Message-ID).

use std::collections::HashMap;

use sqlx::{Pool, Row};

use super::{Binds, Conn, Db, Exec};
use crate::parse::ParsedMail;
use crate::store::sql::{ROWS_PER_STATEMENT, join_addresses};
use crate::store::{Pending, Result, StoredMessageRef};
use crate::ticket::AttachmentView;

pub async fn find_message(
    pool: impl Exec<'_>,
    dedupe_key: &str,
) -> Result<Option<StoredMessageRef>> {
    let row = sqlx::query("SELECT id, ticket_id FROM messages WHERE dedupe_key = $1")
        .bind(dedupe_key)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(r) => Some(StoredMessageRef {
            message: r.try_get("id")?,
            ticket: r.try_get("ticket_id")?,
        }),
        None => None,
    })
}

/// Which of these dedupe keys are stored already: one statement per
/// `ROWS_PER_STATEMENT`.
pub async fn stored_dedupe_keys(
    tx: &mut Conn,
    keys: &[String],
) -> Result<std::collections::HashSet<String>> {
    let mut stored = std::collections::HashSet::new();
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            sqlx::QueryBuilder::<Db>::new("SELECT dedupe_key FROM messages WHERE dedupe_key IN (");
        let mut list = q.separated(", ");
        for key in chunk {
            list.push_bind(key);
        }
        q.push(")");
        for row in q.build().fetch_all(&mut *tx).await? {
            stored.insert(row.try_get("dedupe_key")?);
        }
    }
    Ok(stored)
}

pub async fn record_arrival(
    pool: impl Exec<'_>,
    message: i64,
    mailbox: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO message_mailboxes (message_id, mailbox, arrived_at) \
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(message)
    .bind(mailbox)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The columns of an inbound message, in the order [`bind_inbound`] binds
/// them after its ticket.
pub(super) const INBOUND_COLUMNS: &str = "ticket_id, direction, dedupe_key, message_id, \
    in_reply_to, refs, from_addr, from_name, to_addrs, cc_addrs, subject, \
    body_text, automatic, warnings, raw, raw_sha256, size, created_at";

/// The values of an inbound message after its ticket's, as `$first` ... on:
/// `'in', $first, ... $(first + 15)`.
pub(super) fn inbound_values(first: usize) -> String {
    let binds: Vec<String> = (first..first + 16).map(|i| format!("${i}")).collect();
    format!("'in', {}", binds.join(", "))
}

/// Binds the values of [`inbound_values`], in its order.
pub(super) fn bind_inbound<'q, B: Binds<'q>>(
    q: B,
    raw: &'q [u8],
    mail: &'q ParsedMail,
    automatic: Option<&crate::classify::Automatic>,
    now: i64,
) -> B {
    q.value(mail.dedupe_key())
        .value(&mail.message_id)
        .value(mail.in_reply_to.join(" "))
        .value(mail.references.join(" "))
        .value(mail.from.as_ref().map(|a| a.address.clone()))
        .value(mail.from.as_ref().and_then(|a| a.name.clone()))
        .value(join_addresses(&mail.to))
        .value(join_addresses(&mail.cc))
        .value(&mail.subject)
        .value(&mail.text)
        .value(automatic.map(|a| a.kind.as_str()))
        .value(mail.warnings.join("\n"))
        .value(raw)
        .value(&mail.raw_sha256)
        .value(mail.size as i64)
        .value(now)
}

/// The inbound message with its attachments, its mailbox arrival
/// left in `pending`; `None` when the message is already stored
/// (dedupe key taken).
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_inbound(
    tx: &mut Conn,
    ticket: i64,
    mailbox: &str,
    raw: &[u8],
    mail: &ParsedMail,
    automatic: Option<&crate::classify::Automatic>,
    now: i64,
    pending: &mut Pending,
) -> Result<Option<i64>> {
    let sql = format!(
        "INSERT INTO messages ({INBOUND_COLUMNS}) VALUES ($1, {}) \
         ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        inbound_values(2)
    );
    let message: Option<i64> = bind_inbound(
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(ticket),
        raw,
        mail,
        automatic,
        now,
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| r.try_get("id"))
    .transpose()?;
    let Some(message) = message else {
        return Ok(None);
    };
    inbound_stored(tx, message, mailbox, mail, now, pending).await?;
    Ok(Some(message))
}

/// What follows an inbound message's row: its attachments, and its mailbox
/// arrival left in `pending`.
pub(super) async fn inbound_stored(
    tx: &mut Conn,
    message: i64,
    mailbox: &str,
    mail: &ParsedMail,
    now: i64,
    pending: &mut Pending,
) -> Result<()> {
    pending.arrivals.push((message, mailbox.to_string(), now));
    let attachments: Vec<_> = mail.attachments.iter().map(|a| (message, a)).collect();
    insert_attachments(tx, &attachments).await
}

/// Attachments of messages, a multi-row statement per `ROWS_PER_STATEMENT`.
pub(super) async fn insert_attachments(
    tx: &mut Conn,
    attachments: &[(i64, &crate::parse::Attachment)],
) -> Result<()> {
    for chunk in attachments.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO attachments (message_id, name, content_type, size, sha256, content) ",
        );
        q.push_values(chunk, |mut row, (message, a)| {
            row.push_bind(*message)
                .push_bind(&a.name)
                .push_bind(&a.content_type)
                .push_bind(a.size as i64)
                .push_bind(&a.sha256)
                .push_bind(&a.content);
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// The participants and mailbox arrivals waiting in `pending`,
/// a multi-row statement each (per `ROWS_PER_STATEMENT`).
pub async fn write_rows(tx: &mut Conn, pending: &mut Pending) -> Result<()> {
    for chunk in pending.participants.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO participants (ticket_id, address, name, role) ",
        );
        q.push_values(chunk, |mut row, (ticket, p)| {
            row.push_bind(*ticket)
                .push_bind(&p.address)
                .push_bind(&p.name)
                .push_bind(&p.role);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *tx).await?;
    }
    for chunk in pending.arrivals.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO message_mailboxes (message_id, mailbox, arrived_at) ",
        );
        q.push_values(chunk, |mut row, (message, mailbox, at)| {
            row.push_bind(*message).push_bind(mailbox).push_bind(*at);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *tx).await?;
    }
    pending.participants.clear();
    pending.arrivals.clear();
    Ok(())
}

/// The ticket holding any of these Message-IDs (inbound or ours):
/// the first id, in the order given, that is stored (its oldest
/// message). One statement, however long the References chain.
pub async fn ticket_for_message_ids(pool: impl Exec<'_>, ids: &[String]) -> Result<Option<i64>> {
    let ids = &ids[..ids.len().min(ROWS_PER_STATEMENT)];
    if ids.is_empty() {
        return Ok(None);
    }
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "SELECT message_id, ticket_id FROM messages WHERE message_id IN (",
    );
    let mut list = q.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    q.push(") ORDER BY id");
    let rows = q.build().fetch_all(pool).await?;
    for id in ids {
        for r in &rows {
            if r.try_get::<Option<String>, _>("message_id")?.as_deref() == Some(id.as_str()) {
                return Ok(Some(r.try_get("ticket_id")?));
            }
        }
    }
    Ok(None)
}

/// The mailboxes each message of a ticket arrived in, by message row, in
/// arrival order: one query for the whole ticket.
pub(super) async fn mailboxes_of_ticket(
    pool: &Pool<Db>,
    ticket: i64,
) -> Result<HashMap<i64, Vec<String>>> {
    let rows = sqlx::query_as::<_, (i64, String)>(
        "SELECT mm.message_id, mm.mailbox FROM message_mailboxes mm \
         JOIN messages m ON m.id = mm.message_id WHERE m.ticket_id = $1 \
         ORDER BY mm.message_id, mm.arrived_at, mm.mailbox",
    )
    .bind(ticket)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for (message, mailbox) in rows {
        out.entry(message).or_default().push(mailbox);
    }
    Ok(out)
}

/// The attachments of each message of a ticket, by message row, in the
/// order they were stored (the index a download names): one query.
pub(super) async fn attachments_of_ticket(
    pool: &Pool<Db>,
    ticket: i64,
) -> Result<HashMap<i64, Vec<AttachmentView>>> {
    let rows = sqlx::query_as::<_, (i64, String, String, i64, String)>(
        "SELECT a.message_id, a.name, a.content_type, a.size, a.sha256 FROM attachments a \
         JOIN messages m ON m.id = a.message_id WHERE m.ticket_id = $1 \
         ORDER BY a.message_id, a.id",
    )
    .bind(ticket)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<i64, Vec<AttachmentView>> = HashMap::new();
    for (message, name, content_type, size, sha256) in rows {
        out.entry(message).or_default().push(AttachmentView {
            name,
            content_type,
            size,
            sha256,
        });
    }
    Ok(out)
}
