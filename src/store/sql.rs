//! The SQL, written once and instantiated for each backend.
//!
//! `backend!` expands to a module per database. The text of every query is
//! identical on both; the only backend-specific pieces are passed in as
//! macro arguments (how a write transaction starts, the row locking clause
//! for claiming outbox rows, the lock that makes the per-recipient count of
//! automatic mail exact, and how a ticket number taken back is given back).

/// Comma-joined addresses for the message columns.
pub(super) fn join_addresses(list: &[crate::parse::MailAddress]) -> String {
    list.iter()
        .map(|a| a.address.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Most rows (or list items) one statement carries: far under the bind
/// parameter limits of both databases (SQLite 32,766, PostgreSQL 65,535)
/// with a dozen columns a row.
const ROWS_PER_STATEMENT: usize = 500;

/// A mail on its way into the outbox, with the recipients the limit on
/// automatic mail let through.
struct Queued<'a> {
    ticket: i64,
    now: i64,
    mail: &'a crate::store::OutgoingMail,
    rcpt_to: Vec<String>,
}

/// The recipients of an automatic mail still under the hourly limit.
/// `sent` holds what each (lowercased) address got in the last hour,
/// including the mails queued before this one in the same transaction, and
/// counts this one; each recipient over the limit gets a history line.
fn under_auto_limit(
    mail: &crate::store::OutgoingMail,
    limit: u32,
    sent: &mut std::collections::HashMap<String, i64>,
    events: &mut Vec<crate::store::NewEvent>,
) -> Vec<String> {
    let mut kept = Vec::new();
    for address in &mail.rcpt_to {
        let count = sent
            .get(&address.to_ascii_lowercase())
            .copied()
            .unwrap_or(0);
        if count < i64::from(limit) {
            kept.push(address.clone());
            continue;
        }
        let kind = if mail.kind == "acknowledgement" {
            "ack_withheld"
        } else {
            "mail_withheld"
        };
        let detail = format!(
            "{} to {address} not sent: {count} automatic mails went to this address in the last hour, the limit is {limit} (outbox.auto_reply_limit_per_hour); a loop with a robot is the likely cause",
            mail.kind
        );
        events.push(crate::store::NewEvent {
            actor: "system".into(),
            kind: kind.into(),
            detail,
        });
    }
    for address in &kept {
        *sent.entry(address.to_ascii_lowercase()).or_default() += 1;
    }
    kept
}

/// The history line of a mail queued.
fn queued_line(mail: &crate::store::OutgoingMail, rcpt_to: &[String]) -> crate::store::NewEvent {
    crate::store::NewEvent {
        actor: "system".into(),
        kind: "mail_queued".into(),
        detail: format!(
            "{} to {} queued (Message-ID <{}>)",
            mail.kind,
            rcpt_to.join(", "),
            mail.message_id
        ),
    }
}

macro_rules! backend {
    (
        $module:ident,
        $db:ty,
        begin_write = $begin:literal,
        claim_lock = $lock:literal,
        limit_lock = $limit_lock:literal,
        give_back_number = $give_back_number:literal
    ) => {
        pub(super) mod $module {
            use sqlx::{Pool, Row};

            use super::super::{
                AppendMessage, AppendOutcome, AttachmentView, DocumentRequest, EventView,
                MessageView, NewTicket, OutboxRow, OutgoingMail, Participant,
                QuarantineRow, Result, StoreError, StoredMessageRef, TicketDetail, TicketFilter,
                TicketRow, TicketState, TicketUpdate,
            };
            use super::super::Pending;
            use super::join_addresses;
            use crate::parse::ParsedMail;
            use crate::route::Key;

            type Db = $db;

            pub(in crate::store) async fn begin(pool: &Pool<Db>) -> Result<sqlx::Transaction<'static, Db>> {
                if $begin.is_empty() {
                    Ok(pool.begin().await?)
                } else {
                    Ok(pool.begin_with($begin).await?)
                }
            }

            /// What queries run on: the pool (each statement takes a
            /// connection) or one connection, inside a transaction.
            pub trait Exec<'e>: sqlx::Executor<'e, Database = Db> {}
            impl<'e, E: sqlx::Executor<'e, Database = Db>> Exec<'e> for E {}

            /// A transaction or a connection in one (the write helpers run
            /// inside a transaction of their own and inside a batch's alike).
            pub trait Conn: std::ops::DerefMut<Target = <Db as sqlx::Database>::Connection> + Send {}
            impl<T: std::ops::DerefMut<Target = <Db as sqlx::Database>::Connection> + Send> Conn for T {}

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

            /// A new ticket with its first message, inside the caller's
            /// transaction. `None` when the message is already stored (its
            /// dedupe key taken): then nothing of it stays written. Its
            /// mails and history lines wait in `pending` for the commit.
            pub async fn create_ticket(
                mut tx: &mut <Db as sqlx::Database>::Connection,
                new: &NewTicket<'_>,
                pending: &mut Pending,
            ) -> Result<Option<i64>> {
                let mail = new.mail;
                let route = new.route;
                let tags = serde_json::to_string(&route.tags)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let ticket: i64 = sqlx::query(
                    "INSERT INTO tickets (subject, state, pipeline, owner, priority, ticket_type, \
                     category, area, tags, requester, requester_name, mailbox, due_at, \
                     created_at, updated_at, needs_review, linked_ticket, fields, \
                     due_business, first_response_due_at, first_response_business, channel) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, \
                     $15, $16, $17, $18, $19, $20, $21) RETURNING id",
                )
                .bind(&mail.subject)
                .bind(route.state.as_str())
                .bind(&route.pipeline)
                .bind(&route.owner)
                .bind(route.priority.as_str())
                .bind(&route.ticket_type)
                .bind(&route.category)
                .bind(&route.area)
                .bind(tags)
                .bind(mail.from.as_ref().map(|a| a.address.clone()))
                .bind(mail.from.as_ref().and_then(|a| a.name.clone()))
                .bind(new.mailbox)
                .bind(new.deadlines.due_at)
                .bind(new.now)
                .bind(i64::from(new.needs_review))
                .bind(new.linked_ticket)
                .bind(
                    serde_json::to_string(&route.fields)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .bind(i64::from(new.deadlines.due_business))
                .bind(new.deadlines.first_response_due_at)
                .bind(i64::from(new.deadlines.first_response_business))
                .bind(new.channel.as_str())
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;

                let inserted = insert_inbound(
                    &mut tx, ticket, new.mailbox, new.raw, mail, new.automatic, new.now, pending,
                )
                .await?;
                if inserted.is_none() {
                    take_back_ticket(&mut *tx, ticket).await?;
                    return Ok(None);
                }
                pending
                    .participants
                    .extend(new.participants.iter().map(|p| (ticket, p.clone())));

                for key in &route.keys {
                    sqlx::query(
                        "INSERT INTO ticket_keys (ticket_id, name, value) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(ticket)
                    .bind(&key.name)
                    .bind(&key.value)
                    .execute(&mut *tx)
                    .await?;
                }

                pending.push(ticket, new.now, new.events.clone(), (new.outgoing)(ticket));
                Ok(Some(ticket))
            }

            /// The inbound message with its attachments, its mailbox arrival
            /// left in `pending`; `None` when the message is already stored
            /// (dedupe key taken).
            #[allow(clippy::too_many_arguments)]
            async fn insert_inbound(
                tx: &mut impl Conn,
                ticket: i64,
                mailbox: &str,
                raw: &[u8],
                mail: &ParsedMail,
                automatic: Option<&crate::classify::Automatic>,
                now: i64,
                pending: &mut Pending,
            ) -> Result<Option<i64>> {
                let message: Option<i64> = sqlx::query(
                    "INSERT INTO messages (ticket_id, direction, dedupe_key, message_id, \
                     in_reply_to, refs, from_addr, from_name, to_addrs, cc_addrs, subject, \
                     body_text, automatic, warnings, raw, raw_sha256, size, created_at) \
                     VALUES ($1, 'in', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                     $14, $15, $16, $17) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                )
                .bind(ticket)
                .bind(mail.dedupe_key())
                .bind(&mail.message_id)
                .bind(mail.in_reply_to.join(" "))
                .bind(mail.references.join(" "))
                .bind(mail.from.as_ref().map(|a| a.address.clone()))
                .bind(mail.from.as_ref().and_then(|a| a.name.clone()))
                .bind(join_addresses(&mail.to))
                .bind(join_addresses(&mail.cc))
                .bind(&mail.subject)
                .bind(&mail.text)
                .bind(automatic.map(|a| a.kind.as_str()))
                .bind(mail.warnings.join("\n"))
                .bind(raw)
                .bind(&mail.raw_sha256)
                .bind(mail.size as i64)
                .bind(now)
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get("id"))
                .transpose()?;
                let Some(message) = message else {
                    return Ok(None);
                };
                pending.arrivals.push((message, mailbox.to_string(), now));
                for chunk in mail.attachments.chunks(super::ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(
                        "INSERT INTO attachments (message_id, name, content_type, size, sha256, content) ",
                    );
                    q.push_values(chunk, |mut row, a| {
                        row.push_bind(message)
                            .push_bind(&a.name)
                            .push_bind(&a.content_type)
                            .push_bind(a.size as i64)
                            .push_bind(&a.sha256)
                            .push_bind(&a.content);
                    });
                    q.build().execute(&mut **tx).await?;
                }
                Ok(Some(message))
            }

            /// The participants and mailbox arrivals waiting in `pending`,
            /// a multi-row statement each (per `ROWS_PER_STATEMENT`).
            pub async fn write_rows(
                tx: &mut <Db as sqlx::Database>::Connection,
                pending: &mut Pending,
            ) -> Result<()> {
                for chunk in pending.participants.chunks(super::ROWS_PER_STATEMENT) {
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
                for chunk in pending.arrivals.chunks(super::ROWS_PER_STATEMENT) {
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

            /// Removes the ticket of a mail found already stored. It is
            /// written before the message whose insert dedupes, and nothing
            /// refers to it yet. A delete on this rare path costs nothing on
            /// the common one, where a savepoint around every new ticket
            /// cost two statements (a fifth to a third of the intake rate,
            /// measured); the number is given back where the database can
            /// (SQLite).
            async fn take_back_ticket(
                tx: &mut <Db as sqlx::Database>::Connection,
                ticket: i64,
            ) -> Result<()> {
                sqlx::query("DELETE FROM tickets WHERE id = $1")
                    .bind(ticket)
                    .execute(&mut *tx)
                    .await?;
                if !$give_back_number.is_empty() {
                    sqlx::query($give_back_number)
                        .bind(ticket)
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(())
            }

            /// Queues a mail in the outbox and records it on the ticket as an
            /// outgoing message, so replies to it thread by its Message-ID.
            /// Returns the history lines to write (with the others, in one
            /// statement): `mail_queued`, or why the limit on automatic mail
            /// held a recipient back.
            pub(in crate::store) async fn insert_outgoing(
                tx: &mut sqlx::Transaction<'static, Db>,
                ticket: i64,
                mail_out: &OutgoingMail,
                now: i64,
            ) -> Result<Vec<super::super::NewEvent>> {
                let mut lines = queue_mails(&mut **tx, &[(ticket, now, mail_out)]).await?;
                Ok(lines.pop().unwrap_or_default())
            }

            /// `insert_outgoing` for the mails of several tickets (`(ticket,
            /// now, mail)`) at once: the limit counted once for all their
            /// recipients, then one statement per table. Returns each mail's
            /// history lines, in order.
            async fn queue_mails(
                tx: &mut <Db as sqlx::Database>::Connection,
                mails: &[(i64, i64, &OutgoingMail)],
            ) -> Result<Vec<Vec<super::super::NewEvent>>> {
                let mut sent = auto_mail_counts(&mut *tx, mails).await?;
                let mut lines = Vec::with_capacity(mails.len());
                let mut queued = Vec::new();
                for &(ticket, now, mail) in mails {
                    let mut events = Vec::new();
                    let rcpt_to = match mail.auto_limit_per_hour {
                        Some(limit) => super::under_auto_limit(mail, limit, &mut sent, &mut events),
                        None => mail.rcpt_to.clone(),
                    };
                    if !rcpt_to.is_empty() {
                        events.push(super::queued_line(mail, &rcpt_to));
                        queued.push(super::Queued { ticket, now, mail, rcpt_to });
                    }
                    lines.push(events);
                }
                for chunk in queued.chunks(super::ROWS_PER_STATEMENT) {
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
                tx: &mut <Db as sqlx::Database>::Connection,
                mails: &[(i64, i64, &OutgoingMail)],
            ) -> Result<std::collections::HashMap<String, i64>> {
                let mut counts = std::collections::HashMap::new();
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
                if !$limit_lock.is_empty() {
                    // Addresses never contain a line break.
                    sqlx::query($limit_lock)
                        .bind(addresses.join("\n"))
                        .execute(&mut *tx)
                        .await?;
                }
                for chunk in addresses.chunks(super::ROWS_PER_STATEMENT) {
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
            /// tickets: one statement each.
            async fn insert_queued(
                tx: &mut <Db as sqlx::Database>::Connection,
                queued: &[super::Queued<'_>],
            ) -> Result<()> {
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
                        .push_bind(&m.mail.raw)
                        .push("'queued'")
                        .push("0")
                        .push_bind(m.now)
                        .push_bind(m.now);
                });
                q.push(" RETURNING id, message_id");
                let mut outbox_ids = std::collections::HashMap::new();
                for r in q.build().fetch_all(&mut *tx).await? {
                    outbox_ids.insert(r.try_get::<String, _>("message_id")?, r.try_get::<i64, _>("id")?);
                }
                let mut log = Vec::new();
                for m in queued.iter().filter(|m| m.mail.auto_limit_per_hour.is_some()) {
                    let id = *outbox_ids.get(&m.mail.message_id).ok_or_else(|| {
                        StoreError::Corrupt(format!("outbox row of <{}> missing", m.mail.message_id))
                    })?;
                    log.extend(m.rcpt_to.iter().map(|a| (a.to_ascii_lowercase(), id, m.now)));
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
            pub async fn flush_pending(
                tx: &mut <Db as sqlx::Database>::Connection,
                pending: &Pending,
            ) -> Result<std::collections::BTreeMap<i64, Vec<String>>> {
                let mails: Vec<(i64, i64, &OutgoingMail)> = pending
                    .changes
                    .iter()
                    .flat_map(|c| c.outgoing.iter().map(move |m| (c.ticket, c.now, m)))
                    .collect();
                let lines = queue_mails(&mut *tx, &mails).await?;
                let mut lines = lines.iter();
                let mut events = Vec::new();
                let mut queued = std::collections::BTreeMap::<i64, Vec<String>>::new();
                for c in &pending.changes {
                    events.extend(c.events.iter().map(|e| (c.ticket, c.now, e)));
                    for (mail, written) in c.outgoing.iter().zip(lines.by_ref()) {
                        if written.iter().any(|e| e.kind == "mail_queued") {
                            queued.entry(c.ticket).or_default().push(mail.kind.clone());
                        }
                        events.extend(written.iter().map(|e| (c.ticket, c.now, e)));
                    }
                }
                insert_events_of(&mut *tx, &events).await?;
                Ok(queued)
            }

            /// A follow-up on its ticket, inside the caller's transaction;
            /// its mails and history lines wait in `pending` for the commit.
            pub async fn append_message(
                mut tx: &mut <Db as sqlx::Database>::Connection,
                add: &AppendMessage<'_>,
                pending: &mut Pending,
            ) -> Result<AppendOutcome> {
                // The message first: a duplicate is known before anything
                // is written, so there is nothing to take back.
                let inserted = insert_inbound(
                    &mut tx, add.ticket, add.mailbox, add.raw, add.mail, add.automatic, add.now,
                    pending,
                )
                .await?;
                if inserted.is_none() {
                    return Ok(AppendOutcome::Duplicate);
                }
                pending
                    .participants
                    .extend(add.participants.iter().map(|p| (add.ticket, p.clone())));
                let state = add.new_state.map(|s| s.as_str());
                sqlx::query(
                    "UPDATE tickets SET updated_at = $2, state = COALESCE($3, state), \
                     outcome = CASE WHEN $3 IS NULL THEN outcome ELSE NULL END WHERE id = $1",
                )
                .bind(add.ticket)
                .bind(add.now)
                .bind(state)
                .execute(&mut *tx)
                .await?;
                if let Some(clock) = &add.clock {
                    super::super::deadlines::$module::apply_clock(&mut *tx, add.ticket, clock).await?;
                }
                pending.push(add.ticket, add.now, add.events.clone(), add.outgoing.clone());
                Ok(AppendOutcome::Appended)
            }

            pub async fn update_ticket(
                pool: &Pool<Db>,
                number: i64,
                change: &TicketUpdate,
            ) -> Result<()> {
                let mut tx = begin(pool).await?;
                let state = change.state.map(|s| s.as_str());
                let closing = change.state == Some(crate::ticket::State::Done);
                let done = sqlx::query(
                    "UPDATE tickets SET updated_at = $2, owner = COALESCE($3, owner), \
                     state = COALESCE($4, state), \
                     outcome = CASE WHEN $4 IS NULL THEN outcome ELSE $5 END, \
                     closed_at = CASE WHEN $6 = 1 THEN $2 ELSE closed_at END WHERE id = $1",
                )
                .bind(number)
                .bind(change.now)
                .bind(&change.owner)
                .bind(state)
                .bind(change.outcome.map(|o| o.as_str()))
                .bind(i64::from(closing))
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Err(StoreError::NotFound(format!("ticket {number}")));
                }
                if let Some(clock) = &change.clock {
                    super::super::deadlines::$module::apply_clock(&mut *tx, number, clock).await?;
                }
                if change.first_response {
                    super::super::deadlines::$module::first_response(&mut *tx, number, change.now).await?;
                }
                if let Some(c) = &change.classify {
                    let fields = c
                        .fields
                        .as_ref()
                        .map(serde_json::to_string)
                        .transpose()
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    sqlx::query(
                        "UPDATE tickets SET priority = COALESCE($2, priority), \
                         ticket_type = COALESCE($3, ticket_type), category = COALESCE($4, category), \
                         area = COALESCE($5, area), pipeline = COALESCE($6, pipeline), \
                         fields = COALESCE($7, fields) WHERE id = $1",
                    )
                    .bind(number)
                    .bind(c.priority.map(|p| p.as_str()))
                    .bind(&c.ticket_type)
                    .bind(&c.category)
                    .bind(&c.area)
                    .bind(&c.pipeline)
                    .bind(fields)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some((target, at)) = change.due {
                    super::super::deadlines::$module::move_due(&mut *tx, number, target, at, change.now)
                        .await?;
                }
                if closing {
                    super::super::deadlines::$module::clear_alerts(&mut *tx, number, None, "done", change.now)
                        .await?;
                }
                if let Some(internal) = change.internal {
                    sqlx::query("UPDATE tickets SET internal = $2 WHERE id = $1")
                        .bind(number)
                        .bind(i64::from(internal))
                        .execute(&mut *tx)
                        .await?;
                }
                for item in &change.request_items {
                    sqlx::query(
                        "INSERT INTO document_requests (ticket_id, item, status, requested_at) \
                         VALUES ($1, $2, 'requested', $3)",
                    )
                    .bind(number)
                    .bind(item)
                    .bind(change.now)
                    .execute(&mut *tx)
                    .await?;
                }
                if let Some(item) = &change.received_item {
                    let marked = sqlx::query(
                        "UPDATE document_requests SET status = 'received', received_at = $3 \
                         WHERE ticket_id = $1 AND item = $2 AND status = 'requested'",
                    )
                    .bind(number)
                    .bind(item)
                    .bind(change.now)
                    .execute(&mut *tx)
                    .await?;
                    if marked.rows_affected() == 0 {
                        tx.rollback().await?;
                        return Err(StoreError::NotFound(format!(
                            "an open request for '{item}' on ticket {number}"
                        )));
                    }
                }
                let mut events = change.events.clone();
                for mail_out in &change.outgoing {
                    events.extend(insert_outgoing(&mut tx, number, mail_out, change.now).await?);
                }
                insert_events(&mut tx, number, change.now, &events).await?;
                tx.commit().await?;
                Ok(())
            }

            /// The ticket holding any of these Message-IDs (inbound or ours):
            /// the first id, in the order given, that is stored (its oldest
            /// message). One statement, however long the References chain.
            pub async fn ticket_for_message_ids(
                pool: impl Exec<'_>,
                ids: &[String],
            ) -> Result<Option<i64>> {
                let ids = &ids[..ids.len().min(super::ROWS_PER_STATEMENT)];
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

            pub async fn ticket_state(pool: impl Exec<'_>, number: i64) -> Result<Option<TicketState>> {
                let row = sqlx::query(
                    "SELECT state, closed_at, requester, subject, owner, pipeline, priority, mailbox, \
                     due_at, due_business, first_response_due_at, first_response_business, \
                     first_response_at, paused_at FROM tickets WHERE id = $1",
                )
                .bind(number)
                .fetch_optional(pool)
                .await?;
                Ok(match row {
                    Some(r) => Some(TicketState {
                        state: r.try_get("state")?,
                        closed_at: r.try_get("closed_at")?,
                        requester: r.try_get("requester")?,
                        subject: r.try_get("subject")?,
                        owner: r.try_get("owner")?,
                        pipeline: r.try_get("pipeline")?,
                        priority: r.try_get("priority")?,
                        mailbox: r.try_get("mailbox")?,
                        deadlines: super::super::Deadlines {
                            due_at: r.try_get("due_at")?,
                            due_business: r.try_get::<i64, _>("due_business")? != 0,
                            first_response_due_at: r.try_get("first_response_due_at")?,
                            first_response_business: r
                                .try_get::<i64, _>("first_response_business")?
                                != 0,
                        },
                        first_response_at: r.try_get("first_response_at")?,
                        paused_at: r.try_get("paused_at")?,
                    }),
                    None => None,
                })
            }

            /// The newest open ticket with this key, from this requester (or,
            /// when `domain` is given, from anyone at that domain).
            pub async fn open_ticket_for_key(
                pool: impl Exec<'_>,
                name: &str,
                value: &str,
                requester: &str,
                domain: Option<&str>,
            ) -> Result<Option<i64>> {
                let row = sqlx::query(
                    "SELECT t.id FROM tickets t JOIN ticket_keys k ON k.ticket_id = t.id \
                     WHERE k.name = $1 AND k.value = $2 AND t.state <> 'done' \
                     AND (t.requester = $3 OR ($4 IS NOT NULL AND t.requester LIKE $4)) \
                     ORDER BY t.id DESC LIMIT 1",
                )
                .bind(name)
                .bind(value)
                .bind(requester)
                .bind(domain.map(|d| format!("%@{d}")))
                .fetch_optional(pool)
                .await?;
                Ok(match row {
                    Some(r) => Some(r.try_get("id")?),
                    None => None,
                })
            }

            pub async fn is_participant(pool: impl Exec<'_>, ticket: i64, address: &str) -> Result<bool> {
                let row = sqlx::query(
                    "SELECT 1 AS one FROM participants WHERE ticket_id = $1 AND address = $2",
                )
                .bind(ticket)
                .bind(address)
                .fetch_optional(pool)
                .await?;
                Ok(row.is_some())
            }

            /// A deployment setting, created with `make` the first time.
            pub async fn setting_or_create(
                pool: &Pool<Db>,
                name: &str,
                make: String,
            ) -> Result<String> {
                sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(name)
                    .bind(make)
                    .execute(pool)
                    .await?;
                let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
                    .bind(name)
                    .fetch_one(pool)
                    .await?;
                Ok(row.try_get("value")?)
            }

            pub async fn checkpoint(
                pool: &Pool<Db>,
                account: &str,
                folder: &str,
            ) -> Result<Option<(i64, i64)>> {
                let row = sqlx::query(
                    "SELECT uidvalidity, last_uid FROM imap_checkpoints WHERE account = $1 AND folder = $2",
                )
                .bind(account)
                .bind(folder)
                .fetch_optional(pool)
                .await?;
                Ok(match row {
                    Some(r) => Some((r.try_get("uidvalidity")?, r.try_get("last_uid")?)),
                    None => None,
                })
            }

            pub async fn set_checkpoint(
                pool: &Pool<Db>,
                account: &str,
                folder: &str,
                uidvalidity: i64,
                last_uid: i64,
                now: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO imap_checkpoints (account, folder, uidvalidity, last_uid, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, folder) DO UPDATE SET \
                     uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, \
                     updated_at = excluded.updated_at",
                )
                .bind(account)
                .bind(folder)
                .bind(uidvalidity)
                .bind(last_uid)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(())
            }

            /// Takes or renews the lease; false while another holder's lease runs.
            pub async fn acquire_lease(
                pool: &Pool<Db>,
                name: &str,
                holder: &str,
                now: i64,
                until: i64,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO folder_leases (name, holder, lease_until) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     lease_until = excluded.lease_until \
                     WHERE folder_leases.lease_until < $4 OR folder_leases.holder = excluded.holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            pub async fn release_lease(pool: &Pool<Db>, name: &str, holder: &str) -> Result<()> {
                sqlx::query("DELETE FROM folder_leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(pool)
                    .await?;
                Ok(())
            }

            /// Open tickets of an owner, and the id of the newest ticket
            /// given to them (for round-robin and least-open groups).
            pub async fn owner_load(pool: impl Exec<'_>, owner: &str) -> Result<(i64, Option<i64>)> {
                let row = sqlx::query(
                    "SELECT COUNT(CASE WHEN state <> 'done' THEN 1 END) AS open, MAX(id) AS newest \
                     FROM tickets WHERE owner = $1",
                )
                .bind(owner)
                .fetch_one(pool)
                .await?;
                Ok((row.try_get("open")?, row.try_get("newest")?))
            }

            /// All history lines of a change in one statement (each
            /// statement is a round trip to the database).
            pub(in crate::store) async fn insert_events(
                tx: &mut sqlx::Transaction<'static, Db>,
                ticket: i64,
                at: i64,
                events: &[super::super::NewEvent],
            ) -> Result<()> {
                let rows: Vec<_> = events.iter().map(|e| (ticket, at, e)).collect();
                insert_events_of(&mut **tx, &rows).await
            }

            /// History lines of several tickets (`(ticket, at, line)`), in
            /// one statement per few hundred.
            async fn insert_events_of(
                tx: &mut <Db as sqlx::Database>::Connection,
                events: &[(i64, i64, &super::super::NewEvent)],
            ) -> Result<()> {
                for chunk in events.chunks(super::ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(
                        "INSERT INTO events (ticket_id, at, actor, kind, detail) ",
                    );
                    q.push_values(chunk, |mut row, (ticket, at, e)| {
                        row.push_bind(*ticket)
                            .push_bind(*at)
                            .push_bind(&e.actor)
                            .push_bind(&e.kind)
                            .push_bind(&e.detail);
                    });
                    q.build().execute(&mut *tx).await?;
                }
                Ok(())
            }

            pub async fn quarantine(
                pool: &Pool<Db>,
                mailbox: &str,
                reason: &str,
                raw: &[u8],
                now: i64,
            ) -> Result<i64> {
                let row = sqlx::query(
                    "INSERT INTO quarantine (mailbox, reason, raw, raw_sha256, size, status, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'held', $6, $6) \
                     ON CONFLICT (raw_sha256) DO UPDATE SET updated_at = excluded.updated_at \
                     RETURNING id",
                )
                .bind(mailbox)
                .bind(reason)
                .bind(raw)
                .bind(crate::parse::sha256_hex(raw))
                .bind(raw.len() as i64)
                .bind(now)
                .fetch_one(pool)
                .await?;
                Ok(row.try_get("id")?)
            }

            pub async fn quarantine_list(pool: &Pool<Db>) -> Result<Vec<QuarantineRow>> {
                let rows = sqlx::query(
                    "SELECT id, mailbox, reason, size, status, ticket_id, created_at, updated_at \
                     FROM quarantine ORDER BY id",
                )
                .fetch_all(pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(QuarantineRow {
                            id: r.try_get("id")?,
                            mailbox: r.try_get("mailbox")?,
                            reason: r.try_get("reason")?,
                            size: r.try_get("size")?,
                            status: r.try_get("status")?,
                            ticket: r.try_get("ticket_id")?,
                            created_at: r.try_get("created_at")?,
                            updated_at: r.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }

            pub async fn quarantine_raw(pool: &Pool<Db>, id: i64) -> Result<(String, Vec<u8>)> {
                let row = sqlx::query("SELECT mailbox, raw FROM quarantine WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("quarantined mail {id}")))?;
                Ok((row.try_get("mailbox")?, row.try_get("raw")?))
            }

            pub async fn quarantine_update(
                pool: &Pool<Db>,
                id: i64,
                status: &str,
                reason: &str,
                ticket: Option<i64>,
                now: i64,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE quarantine SET status = $2, reason = $3, ticket_id = $4, updated_at = $5 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(reason)
                .bind(ticket)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(())
            }

            const TICKET_COLUMNS: &str = "t.id, t.subject, t.state, t.outcome, t.pipeline, \
                t.owner, t.priority, t.ticket_type, t.category, t.area, t.tags, t.requester, \
                t.requester_name, t.mailbox, t.needs_review, t.linked_ticket, t.due_at, \
                t.created_at, t.updated_at, t.fields, t.internal, t.first_response_due_at, \
                t.first_response_at, t.paused_at, \
                (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count";

            pub async fn list_tickets(
                pool: &Pool<Db>,
                filter: &TicketFilter,
            ) -> Result<Vec<TicketRow>> {
                // Optional filters as `($n IS NULL OR col = $n)` keep one
                // static query text for every combination.
                let sql = format!(
                    "SELECT {TICKET_COLUMNS} FROM tickets t \
                     WHERE ($1 IS NULL OR $1 LIKE '%,' || t.state || ',%') \
                     AND ($2 IS NULL OR t.pipeline = $2) \
                     AND ($3 IS NULL OR LOWER(t.owner) = LOWER($3)) \
                     AND ($4 IS NULL OR t.priority = $4) \
                     AND ($5 IS NULL OR EXISTS (SELECT 1 FROM ticket_keys k \
                          WHERE k.ticket_id = t.id AND k.name = $5 AND k.value = $6)) \
                     AND ($8 IS NULL OR (t.state <> 'done' AND {due} <= COALESCE(t.paused_at, $8))) \
                     ORDER BY CASE WHEN $8 IS NULL THEN t.id ELSE {due} END, t.id LIMIT $7",
                    due = super::super::deadlines::EFFECTIVE_DUE,
                );
                let (key_name, key_value) = match &filter.key {
                    Some((n, v)) => (Some(n.clone()), Some(v.clone())),
                    None => (None, None),
                };
                // The states as ",new,open," (one parameter on both backends).
                let states = (!filter.states.is_empty()).then(|| {
                    let names: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
                    format!(",{},", names.join(","))
                });
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(states)
                    .bind(&filter.pipeline)
                    .bind(&filter.owner)
                    .bind(&filter.priority)
                    .bind(key_name)
                    .bind(key_value)
                    .bind(filter.limit.unwrap_or(i64::MAX))
                    .bind(filter.overdue_at)
                    .fetch_all(pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push(ticket_row(pool, r).await?);
                }
                Ok(out)
            }

            /// `buzon report`: tickets created in [from, to) (Unix ms) with
            /// the time they were first answered: the ticket's
            /// `first_response_at` (what `deadlines.first_response_met_by`
            /// counts), else, for tickets from before that column, their
            /// first agent reply (outbox kind `reply`). Acknowledgements and
            /// notifications are automatic, not a response.
            pub async fn report_rows(
                pool: &Pool<Db>,
                from: i64,
                to: i64,
            ) -> Result<Vec<super::super::ReportRow>> {
                let sql = format!(
                    "SELECT {TICKET_COLUMNS}, t.channel, t.closed_at, \
                     (SELECT MIN(m.created_at) FROM messages m \
                      JOIN outbox o ON o.message_id = m.message_id \
                      WHERE m.ticket_id = t.id AND m.direction = 'out' AND o.kind = 'reply') \
                     AS first_reply_at \
                     FROM tickets t WHERE t.created_at >= $1 AND t.created_at < $2 ORDER BY t.id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(from)
                    .bind(to)
                    .fetch_all(pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let mut ticket = ticket_row(pool, r).await?;
                    let first_reply_at: Option<i64> = r.try_get("first_reply_at")?;
                    ticket.first_response_at = ticket.first_response_at.or(first_reply_at);
                    out.push(super::super::ReportRow {
                        first_response_at: ticket.first_response_at,
                        ticket,
                        channel: r.try_get("channel")?,
                        closed_at: r.try_get("closed_at")?,
                    });
                }
                Ok(out)
            }

            async fn ticket_row(pool: &Pool<Db>, r: &<Db as sqlx::Database>::Row) -> Result<TicketRow> {
                let number: i64 = r.try_get("id")?;
                let tags: String = r.try_get("tags")?;
                let fields: String = r.try_get("fields")?;
                let keys = sqlx::query(
                    "SELECT name, value FROM ticket_keys WHERE ticket_id = $1 ORDER BY name, value",
                )
                .bind(number)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|k| {
                    Ok(Key {
                        name: k.try_get("name")?,
                        value: k.try_get("value")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                Ok(TicketRow {
                    number,
                    subject: r.try_get("subject")?,
                    state: r.try_get("state")?,
                    outcome: r.try_get("outcome")?,
                    pipeline: r.try_get("pipeline")?,
                    owner: r.try_get("owner")?,
                    priority: r.try_get("priority")?,
                    ticket_type: r.try_get("ticket_type")?,
                    category: r.try_get("category")?,
                    area: r.try_get("area")?,
                    tags: serde_json::from_str(&tags)
                        .map_err(|e| StoreError::Corrupt(format!("tags of ticket {number}: {e}")))?,
                    fields: serde_json::from_str(&fields).map_err(|e| {
                        StoreError::Corrupt(format!("fields of ticket {number}: {e}"))
                    })?,
                    keys,
                    requester: r.try_get("requester")?,
                    requester_name: r.try_get("requester_name")?,
                    mailbox: r.try_get("mailbox")?,
                    needs_review: r.try_get::<i64, _>("needs_review")? != 0,
                    internal: r.try_get::<i64, _>("internal")? != 0,
                    linked_ticket: r.try_get("linked_ticket")?,
                    due_at: r.try_get("due_at")?,
                    first_response_due_at: r.try_get("first_response_due_at")?,
                    first_response_at: r.try_get("first_response_at")?,
                    paused_at: r.try_get("paused_at")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                    message_count: r.try_get("message_count")?,
                })
            }

            pub async fn ticket_detail(pool: &Pool<Db>, number: i64) -> Result<TicketDetail> {
                let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(number)
                    .fetch_optional(pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("ticket {number}")))?;
                let ticket = ticket_row(pool, &row).await?;
                let participants = sqlx::query(
                    "SELECT address, name, role FROM participants WHERE ticket_id = $1 ORDER BY address",
                )
                .bind(number)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(Participant {
                        address: r.try_get("address")?,
                        name: r.try_get("name")?,
                        role: r.try_get("role")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                let mut messages = Vec::new();
                for r in sqlx::query(
                    "SELECT id, direction, message_id, from_addr, from_name, to_addrs, cc_addrs, \
                     subject, body_text, automatic, warnings, created_at \
                     FROM messages WHERE ticket_id = $1 ORDER BY id",
                )
                .bind(number)
                .fetch_all(pool)
                .await?
                {
                    let id: i64 = r.try_get("id")?;
                    messages.push(MessageView {
                        id,
                        direction: r.try_get("direction")?,
                        message_id: r.try_get("message_id")?,
                        from: r.try_get("from_addr")?,
                        from_name: r.try_get("from_name")?,
                        to: r.try_get("to_addrs")?,
                        cc: r.try_get("cc_addrs")?,
                        subject: r.try_get("subject")?,
                        body_text: r.try_get("body_text")?,
                        automatic: r.try_get("automatic")?,
                        warnings: r.try_get("warnings")?,
                        mailboxes: mailboxes_of(pool, id).await?,
                        attachments: attachments_of(pool, id).await?,
                        created_at: r.try_get("created_at")?,
                    });
                }
                let events = sqlx::query(
                    "SELECT at, actor, kind, detail FROM events WHERE ticket_id = $1 ORDER BY id",
                )
                .bind(number)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(EventView {
                        at: r.try_get("at")?,
                        actor: r.try_get("actor")?,
                        kind: r.try_get("kind")?,
                        detail: r.try_get("detail")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                let requests = sqlx::query(
                    "SELECT item, status, requested_at, received_at FROM document_requests \
                     WHERE ticket_id = $1 ORDER BY id",
                )
                .bind(number)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(DocumentRequest {
                        item: r.try_get("item")?,
                        status: r.try_get("status")?,
                        requested_at: r.try_get("requested_at")?,
                        received_at: r.try_get("received_at")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
                Ok(TicketDetail {
                    ticket,
                    requests,
                    participants,
                    messages,
                    events,
                    alerts: Vec::new(),
                })
            }

            async fn mailboxes_of(pool: &Pool<Db>, message: i64) -> Result<Vec<String>> {
                sqlx::query(
                    "SELECT mailbox FROM message_mailboxes WHERE message_id = $1 ORDER BY arrived_at, mailbox",
                )
                .bind(message)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok(r.try_get("mailbox")?))
                .collect()
            }

            async fn attachments_of(pool: &Pool<Db>, message: i64) -> Result<Vec<AttachmentView>> {
                sqlx::query(
                    "SELECT name, content_type, size, sha256 FROM attachments WHERE message_id = $1 ORDER BY id",
                )
                .bind(message)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(AttachmentView {
                        name: r.try_get("name")?,
                        content_type: r.try_get("content_type")?,
                        size: r.try_get("size")?,
                        sha256: r.try_get("sha256")?,
                    })
                })
                .collect()
            }

            const OUTBOX_COLUMNS: &str = "id, ticket_id, kind, message_id, mail_from, rcpt_to, raw, \
                status, attempts, next_attempt_at, last_error, created_at, sent_at, requeued_at";

            fn outbox_row(r: &<Db as sqlx::Database>::Row) -> Result<OutboxRow> {
                let rcpt: String = r.try_get("rcpt_to")?;
                Ok(OutboxRow {
                    id: r.try_get("id")?,
                    ticket: r.try_get("ticket_id")?,
                    kind: r.try_get("kind")?,
                    message_id: r.try_get("message_id")?,
                    mail_from: r.try_get("mail_from")?,
                    rcpt_to: rcpt
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    raw: r.try_get("raw")?,
                    status: r.try_get("status")?,
                    attempts: r.try_get("attempts")?,
                    next_attempt_at: r.try_get("next_attempt_at")?,
                    last_error: r.try_get("last_error")?,
                    created_at: r.try_get("created_at")?,
                    sent_at: r.try_get("sent_at")?,
                    requeued_at: r.try_get("requeued_at")?,
                })
            }

            pub async fn outbox_claim(
                pool: &Pool<Db>,
                now: i64,
                lease_until: i64,
                limit: i64,
            ) -> Result<Vec<OutboxRow>> {
                let mut tx = begin(pool).await?;
                // Order per ticket: a mail waits while an earlier one of its
                // ticket is still queued (due later, or leased by another
                // worker), so one claim holds at most one mail per ticket and
                // the mails of different tickets may be sent concurrently.
                let sql = format!(
                    "UPDATE outbox SET lease_until = $1, attempts = attempts + 1 WHERE id IN \
                     (SELECT o.id FROM outbox o WHERE o.status = 'queued' AND o.next_attempt_at <= $2 \
                      AND (o.lease_until IS NULL OR o.lease_until < $2) \
                      AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.status = 'queued' \
                      AND e.ticket_id = o.ticket_id AND e.id < o.id) \
                      ORDER BY o.id LIMIT $3{}) \
                     RETURNING {OUTBOX_COLUMNS}",
                    $lock
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                let mut out = rows.iter().map(outbox_row).collect::<Result<Vec<_>>>()?;
                out.sort_by_key(|r| r.id);
                Ok(out)
            }

            /// Marks the mails of one delivery round sent, in one statement
            /// (one commit, one sync of the database file per round).
            pub async fn outbox_sent(pool: &Pool<Db>, ids: &[i64], now: i64) -> Result<()> {
                for chunk in ids.chunks(super::ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::<Db>::new(
                        "UPDATE outbox SET status = 'sent', lease_until = NULL, last_error = NULL, sent_at = ",
                    );
                    q.push_bind(now).push(" WHERE id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    q.build().execute(pool).await?;
                }
                Ok(())
            }

            pub async fn outbox_failed(
                pool: &Pool<Db>,
                id: i64,
                error: &str,
                next: Option<i64>,
            ) -> Result<()> {
                let (status, next_at) = match next {
                    Some(at) => ("queued", Some(at)),
                    None => ("failed", None),
                };
                sqlx::query(
                    "UPDATE outbox SET status = $2, last_error = $3, lease_until = NULL, \
                     next_attempt_at = COALESCE($4, next_attempt_at) WHERE id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(error)
                .bind(next_at)
                .execute(pool)
                .await?;
                Ok(())
            }

            pub async fn outbox_list(
                pool: &Pool<Db>,
                status: Option<&str>,
            ) -> Result<Vec<OutboxRow>> {
                let sql = format!(
                    "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 IS NULL OR status = $1) ORDER BY id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(status)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(outbox_row).collect()
            }

            pub async fn outbox_get(pool: &Pool<Db>, id: i64) -> Result<Option<OutboxRow>> {
                let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
                row.as_ref().map(outbox_row).transpose()
            }

            /// Makes a queued or failed row due now, with a fresh retry
            /// schedule and maximum age. A sent row is left alone (false).
            pub async fn outbox_requeue(pool: &Pool<Db>, id: i64, now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE outbox SET status = 'queued', next_attempt_at = $2, requeued_at = $2, \
                     attempts = 0, lease_until = NULL WHERE id = $1 AND status <> 'sent'",
                )
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            /// Automatic mails queued to `address` since `since` (the count
            /// behind `outbox.auto_reply_limit_per_hour`).
            pub async fn auto_mail_count(pool: &Pool<Db>, address: &str, since: i64) -> Result<i64> {
                Ok(sqlx::query(
                    "SELECT COUNT(*) AS n FROM auto_mail_log WHERE address = $1 AND queued_at > $2",
                )
                .bind(address.to_ascii_lowercase())
                .bind(since)
                .fetch_one(pool)
                .await?
                .try_get("n")?)
            }
        }
    };
}

// SQLite: take the write lock up front so two writers queue on the busy
// timeout instead of deadlocking on a read→write upgrade (which also makes
// the count behind the limit on automatic mail exact). AUTOINCREMENT keeps
// its counter in `sqlite_sequence`, where a number taken back is given back.
backend!(
    sqlite,
    sqlx::Sqlite,
    begin_write = "BEGIN IMMEDIATE",
    claim_lock = "",
    limit_lock = "",
    give_back_number =
        "UPDATE sqlite_sequence SET seq = $1 - 1 WHERE name = 'tickets' AND seq = $1"
);
// PostgreSQL: row locks let several instances claim disjoint outbox rows; an
// advisory lock per address makes the automatic-mail count exact. Identity
// numbers are never given back (a rolled back insert left the same gap).
backend!(
    postgres,
    sqlx::Postgres,
    begin_write = "",
    claim_lock = " FOR UPDATE SKIP LOCKED",
    limit_lock = "SELECT pg_advisory_xact_lock(hashtext(a)) \
                  FROM unnest(string_to_array($1, chr(10))) AS a",
    give_back_number = ""
);
