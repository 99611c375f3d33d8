//! Tickets: opening one (with its first message), a follow-up, an agent's
//! change, and the lookups threading and routing make.

use sqlx::{Pool, Row};

use super::events::insert_events;
use super::messages::{
    INBOUND_COLUMNS, bind_inbound, inbound_stored, inbound_values, insert_attachments,
    insert_inbound,
};
use super::outbox::insert_outgoing;
use super::{
    Binds, Conn, Db, Exec, GIVE_BACK_NUMBER, MESSAGE_WITH_TICKET, NEXT_TICKET_NUMBER,
    RESERVE_TICKET_NUMBERS, ROW_LOCK, TICKET_NUMBERS_COUNTED, begin, deadlines,
};
use crate::store::sql::{ROWS_PER_STATEMENT, decode};
use crate::store::{
    AppendMessage, AppendOutcome, NewTicket, Pending, PendingTicket, Result, StoreError,
    TicketUpdate, hook_message,
};
use crate::ticket::{Deadlines, HookKind, NewHookEvent, State, TicketState};

/// A new ticket with its first message, inside the caller's
/// transaction. `None` when the message is already stored (its
/// dedupe key taken): then nothing of it stays written. Its
/// mails and history lines wait in `pending` for the commit.
pub async fn create_ticket(
    tx: &mut Conn,
    new: &NewTicket<'_>,
    pending: &mut Pending,
) -> Result<Option<i64>> {
    let mail = new.mail;
    let (ticket, message) = if MESSAGE_WITH_TICKET {
        // Ticket and message in one statement: one round trip a new mail.
        // The message's foreign key is checked at the statement's end,
        // when the ticket is there.
        let sql = format!(
            "WITH t AS ({TICKET_INSERT} RETURNING id), \
             m AS (INSERT INTO messages ({INBOUND_COLUMNS}) SELECT t.id, {} FROM t \
             ON CONFLICT (dedupe_key) DO NOTHING RETURNING id) \
             SELECT t.id AS id, m.id AS message FROM t LEFT JOIN m ON TRUE",
            inbound_values(23)
        );
        let q = bind_ticket(sqlx::query(sqlx::AssertSqlSafe(sql)), new)?;
        let row = bind_inbound(q, new.raw, mail, new.automatic, new.now)
            .fetch_one(&mut *tx)
            .await?;
        let ticket: i64 = row.try_get("id")?;
        let message: Option<i64> = row.try_get("message")?;
        if let Some(message) = message {
            inbound_stored(&mut *tx, message, new.mailbox, mail, new.now, pending).await?;
        }
        (ticket, message)
    } else {
        let sql = format!("{TICKET_INSERT} RETURNING id");
        let ticket: i64 = bind_ticket(sqlx::query(sqlx::AssertSqlSafe(sql)), new)?
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
        let message = insert_inbound(
            &mut *tx,
            ticket,
            new.mailbox,
            new.raw,
            mail,
            new.automatic,
            new.now,
            pending,
        )
        .await?;
        (ticket, message)
    };
    if message.is_none() {
        take_back_ticket(&mut *tx, ticket).await?;
        return Ok(None);
    }
    pending
        .participants
        .extend(new.participants.iter().map(|p| (ticket, p.clone())));

    let keys: Vec<_> = new.route.keys.iter().map(|k| (ticket, k)).collect();
    insert_keys(&mut *tx, &keys).await?;

    pending.push(ticket, new.now, new.events.clone(), (new.outgoing)(ticket));
    pending.hooks.push((
        ticket,
        new.now,
        NewHookEvent::new(
            HookKind::TicketCreated,
            hook_message(mail, Some(new.channel)),
        ),
    ));
    Ok(Some(ticket))
}

/// The columns of a new ticket, in the order [`bind_ticket_columns`]
/// binds them.
const TICKET_COLUMNS: &str = "subject, state, pipeline, owner, priority, \
     ticket_type, category, area, tags, requester, requester_name, mailbox, due_at, \
     created_at, updated_at, needs_review, linked_ticket, fields, \
     due_business, first_response_due_at, first_response_business, channel";

/// A new ticket's row, its values `$1` ... `$22` (see [`bind_ticket`]).
const TICKET_INSERT: &str = "INSERT INTO tickets (subject, state, pipeline, owner, priority, \
     ticket_type, category, area, tags, requester, requester_name, mailbox, due_at, \
     created_at, updated_at, needs_review, linked_ticket, fields, \
     due_business, first_response_due_at, first_response_business, channel) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
     $16, $17, $18, $19, $20, $21, $22)";

/// Binds the values of [`TICKET_INSERT`].
fn bind_ticket<'q>(
    q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
    new: &'q NewTicket<'_>,
) -> Result<sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>> {
    bind_ticket_columns(
        q,
        TicketColumns {
            mailbox: new.mailbox,
            channel: new.channel,
            mail: new.mail,
            route: new.route,
            needs_review: new.needs_review,
            linked_ticket: new.linked_ticket,
            deadlines: new.deadlines,
            now: new.now,
        },
    )
}

/// What a new ticket's row holds, whoever keeps it (a `NewTicket` written
/// at once, or a `PendingTicket` written with the batch).
struct TicketColumns<'q> {
    mailbox: &'q str,
    channel: crate::ticket::Channel,
    mail: &'q crate::parse::ParsedMail,
    route: &'q crate::route::Route,
    needs_review: bool,
    linked_ticket: Option<i64>,
    deadlines: Deadlines,
    now: i64,
}

impl<'q> TicketColumns<'q> {
    fn of(t: &'q PendingTicket) -> TicketColumns<'q> {
        TicketColumns {
            mailbox: &t.mailbox,
            channel: t.channel,
            mail: &t.mail,
            route: &t.route,
            needs_review: t.needs_review,
            linked_ticket: t.linked_ticket,
            deadlines: t.deadlines,
            now: t.now,
        }
    }
}

/// Binds the values of [`TICKET_COLUMNS`] from a ticket's columns.
fn bind_ticket_columns<'q, B: Binds<'q>>(q: B, new: TicketColumns<'q>) -> Result<B> {
    let mail = new.mail;
    let route = new.route;
    let tags =
        serde_json::to_string(&route.tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let fields =
        serde_json::to_string(&route.fields).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(q.value(&mail.subject)
        .value(route.state.as_str())
        .value(&route.pipeline)
        .value(&route.owner)
        .value(route.priority.as_str())
        .value(&route.ticket_type)
        .value(&route.category)
        .value(&route.area)
        .value(tags)
        .value(mail.from.as_ref().map(|a| a.address.clone()))
        .value(mail.from.as_ref().and_then(|a| a.name.clone()))
        .value(new.mailbox)
        .value(new.deadlines.due_at)
        .value(new.now)
        .value(new.now)
        .value(i64::from(new.needs_review))
        .value(new.linked_ticket)
        .value(fields)
        .value(i64::from(new.deadlines.due_business))
        .value(new.deadlines.first_response_due_at)
        .value(i64::from(new.deadlines.first_response_business))
        .value(new.channel.as_str()))
}

/// Removes the ticket of a mail found already stored. It is
/// written before the message whose insert dedupes, and nothing
/// refers to it yet. A delete on this rare path costs nothing on
/// the common one, where a savepoint around every new ticket
/// cost two statements (a fifth to a third of the intake rate,
/// measured); the number is given back where the database can
/// (SQLite).
async fn take_back_ticket(tx: &mut Conn, ticket: i64) -> Result<()> {
    sqlx::query("DELETE FROM tickets WHERE id = $1")
        .bind(ticket)
        .execute(&mut *tx)
        .await?;
    if !GIVE_BACK_NUMBER.is_empty() {
        sqlx::query(GIVE_BACK_NUMBER)
            .bind(ticket)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// A follow-up on its ticket, inside the caller's transaction;
/// its mails and history lines wait in `pending` for the commit.
pub async fn append_message(
    tx: &mut Conn,
    add: &AppendMessage<'_>,
    pending: &mut Pending,
) -> Result<AppendOutcome> {
    // The message first: a duplicate is known before anything
    // is written, so there is nothing to take back.
    let inserted = insert_inbound(
        &mut *tx,
        add.ticket,
        add.mailbox,
        add.raw,
        add.mail,
        add.automatic,
        add.now,
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
    // The state it had, for the webhook's `ticket.updated` (read only when
    // the mail changes it).
    let state_was: Option<String> = match state {
        Some(_) => {
            let sql = format!("SELECT state FROM tickets WHERE id = $1{ROW_LOCK}");
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(add.ticket)
                .fetch_optional(&mut *tx)
                .await?
        }
        None => None,
    };
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
        deadlines::apply_clock(&mut *tx, add.ticket, clock).await?;
    }
    pending.push(
        add.ticket,
        add.now,
        add.events.clone(),
        add.outgoing.clone(),
    );
    pending.hooks.push((
        add.ticket,
        add.now,
        NewHookEvent::new(HookKind::MessageReceived, hook_message(add.mail, None)),
    ));
    if let (Some(from), Some(to)) = (state_was, state)
        && from != to
    {
        pending.hooks.push((
            add.ticket,
            add.now,
            NewHookEvent::new(
                HookKind::TicketUpdated,
                serde_json::json!({ "changes": { "state": { "from": from, "to": to } } }),
            ),
        ));
    }
    Ok(AppendOutcome::Appended)
}

/// `hooks_wanted`: whether it writes its webhook events (see
/// `Store::webhook_events`).
pub async fn update_ticket(
    pool: &Pool<Db>,
    number: i64,
    change: &TicketUpdate,
    hooks_wanted: bool,
) -> Result<()> {
    let mut tx = begin(pool).await?;
    // The row is locked until commit (PostgreSQL; SQLite's write lock is
    // already held): the owner cannot change between here and the update,
    // and the webhook event's "from" values are the ones this change saw.
    let sql = format!(
        "SELECT state, owner, priority, pipeline, ticket_type, fields FROM tickets \
         WHERE id = $1{ROW_LOCK}"
    );
    let before: Option<Before> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(number)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(before) = before else {
        tx.rollback().await?;
        return Err(StoreError::NotFound(format!("ticket {number}")));
    };
    if let Some(expected) = &change.owner_was
        && before.owner != *expected
    {
        tx.rollback().await?;
        return Err(StoreError::Conflict(format!(
            "el ticket cambió de responsable mientras tanto (ahora: {}); vuelva a cargarlo",
            before.owner.as_deref().unwrap_or("nadie")
        )));
    }
    let state = change.state.map(|s| s.as_str());
    let closing = change.state == Some(State::Done);
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
    if let Some(step) = &change.step
        && !super::staff_mail::count_step(&mut tx, step, change.now).await?
    {
        tx.rollback().await?;
        return Err(StoreError::Stale(format!(
            "step {} of the agent's mail {}",
            step.index + 1,
            step.key
        )));
    }
    if let Some(clock) = &change.clock {
        deadlines::apply_clock(&mut tx, number, clock).await?;
    }
    if change.first_response {
        deadlines::first_response(&mut tx, number, change.now).await?;
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
        deadlines::move_due(&mut tx, number, target, at, change.now).await?;
    }
    if closing {
        deadlines::clear_alerts(&mut tx, number, None, "done", change.now).await?;
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
    if hooks_wanted {
        let hooks = before.hooks(change)?;
        let hooks: Vec<_> = hooks.iter().map(|e| (number, change.now, e)).collect();
        super::webhooks::insert_hook_events(&mut tx, &hooks).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The columns a `ticket.updated` event reports, before the change.
#[derive(sqlx::FromRow)]
struct Before {
    state: String,
    owner: Option<String>,
    priority: String,
    pipeline: String,
    ticket_type: Option<String>,
    fields: String,
}

impl Before {
    /// The webhook events of `change`: `ticket.updated` with what changed
    /// (`{"state": {"from": .., "to": ..}, ...}`) when something did, and
    /// `ticket.closed` with the outcome when the ticket was finished.
    fn hooks(&self, change: &TicketUpdate) -> Result<Vec<NewHookEvent>> {
        use serde_json::{Value, json};
        let fields: Value =
            serde_json::from_str(&self.fields).map_err(|_| StoreError::Invalid {
                column: "tickets.fields",
                value: self.fields.clone(),
            })?;
        let mut changes = serde_json::Map::new();
        let mut note = |key: &str, from: Value, to: Option<Value>| {
            if let Some(to) = to
                && to != from
            {
                changes.insert(key.into(), json!({ "from": from, "to": to }));
            }
        };
        note(
            "state",
            json!(self.state),
            change.state.map(|s| json!(s.as_str())),
        );
        note(
            "owner",
            json!(self.owner),
            change.owner.as_ref().map(|o| json!(o)),
        );
        if let Some(c) = &change.classify {
            note(
                "priority",
                json!(self.priority),
                c.priority.map(|p| json!(p.as_str())),
            );
            note(
                "pipeline",
                json!(self.pipeline),
                c.pipeline.as_ref().map(|p| json!(p)),
            );
            note(
                "type",
                json!(self.ticket_type),
                c.ticket_type.as_ref().map(|t| json!(t)),
            );
            note("fields", fields, c.fields.as_ref().map(|f| json!(f)));
        }
        let mut hooks = Vec::new();
        if !changes.is_empty() {
            hooks.push(NewHookEvent::new(
                HookKind::TicketUpdated,
                json!({ "changes": changes }),
            ));
        }
        if change.state == Some(State::Done) {
            hooks.push(NewHookEvent::new(
                HookKind::TicketClosed,
                json!({ "outcome": change.outcome.map(|o| o.as_str()) }),
            ));
        }
        Ok(hooks)
    }
}

/// The parts of a ticket threading needs, as stored.
#[derive(sqlx::FromRow)]
struct StoredState {
    state: String,
    closed_at: Option<i64>,
    requester: Option<String>,
    subject: String,
    owner: Option<String>,
    pipeline: String,
    priority: String,
    mailbox: String,
    due_at: Option<i64>,
    due_business: i64,
    first_response_due_at: Option<i64>,
    first_response_business: i64,
    first_response_at: Option<i64>,
    paused_at: Option<i64>,
}

impl StoredState {
    fn decode(self) -> Result<TicketState> {
        Ok(TicketState {
            state: decode("tickets.state", self.state)?,
            closed_at: self.closed_at,
            requester: self.requester,
            subject: self.subject,
            owner: self.owner,
            pipeline: self.pipeline,
            priority: decode("tickets.priority", self.priority)?,
            mailbox: self.mailbox,
            deadlines: Deadlines {
                due_at: self.due_at,
                due_business: self.due_business != 0,
                first_response_due_at: self.first_response_due_at,
                first_response_business: self.first_response_business != 0,
            },
            first_response_at: self.first_response_at,
            paused_at: self.paused_at,
        })
    }
}

pub async fn ticket_state(pool: impl Exec<'_>, number: i64) -> Result<Option<TicketState>> {
    let stored: Option<StoredState> = sqlx::query_as(
        "SELECT state, closed_at, requester, subject, owner, pipeline, priority, mailbox, \
         due_at, due_business, first_response_due_at, first_response_business, \
         first_response_at, paused_at FROM tickets WHERE id = $1",
    )
    .bind(number)
    .fetch_optional(pool)
    .await?;
    stored.map(StoredState::decode).transpose()
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
    // The domain is compared as the address's end, not with `LIKE $4`:
    // SQLite prepares a statement again whenever the pattern bound to a
    // LIKE changes (it may plan it as a range), which was a tenth of the
    // intake's time with keys in the rules.
    let row = sqlx::query(
        "SELECT t.id FROM tickets t JOIN ticket_keys k ON k.ticket_id = t.id \
         WHERE k.name = $1 AND k.value = $2 AND t.state <> 'done' \
         AND (t.requester = $3 OR ($4 IS NOT NULL \
              AND substr(t.requester, length(t.requester) - length($4) + 1) = $4)) \
         ORDER BY t.id DESC LIMIT 1",
    )
    .bind(name)
    .bind(value)
    .bind(requester)
    .bind(domain.map(|d| format!("@{d}")))
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("id")?),
        None => None,
    })
}

pub async fn is_participant(pool: impl Exec<'_>, ticket: i64, address: &str) -> Result<bool> {
    let row =
        sqlx::query("SELECT 1 AS one FROM participants WHERE ticket_id = $1 AND address = $2")
            .bind(ticket)
            .bind(address)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
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

/// The number of the next ticket, asked of the database: on SQLite once a
/// transaction (it holds the write lock, so the numbers after it are
/// counted here), on PostgreSQL for every ticket (its sequence is shared).
pub async fn next_ticket_number(tx: &mut Conn) -> Result<i64> {
    Ok(sqlx::query_scalar(NEXT_TICKET_NUMBER)
        .fetch_one(&mut *tx)
        .await?)
}

/// Writes the new tickets waiting in `pending` (see `StoreTx::create_ticket`)
/// with one multi-row statement per table: the tickets, their first
/// messages (the conditional insert that dedupes), the attachments and the
/// keys. A ticket whose message another writer stored since the batch
/// looked (PostgreSQL: a second instance) is deleted again, and its mails,
/// history lines and participants leave `pending`; those are returned with
/// the message's dedupe key, mailbox and time, for the caller to record as
/// one more arrival.
pub async fn flush_new_tickets(
    tx: &mut Conn,
    pending: &mut Pending,
) -> Result<Vec<(i64, String, String, i64)>> {
    let tickets = std::mem::take(&mut pending.tickets);
    let rows = ROWS_PER_STATEMENT / 2;
    for chunk in tickets.chunks(rows) {
        let sql = format!("INSERT INTO tickets (id, {TICKET_COLUMNS}) ");
        let mut q = sqlx::QueryBuilder::<Db>::new(sql);
        let mut bad = None;
        q.push_values(chunk, |mut row, t| {
            if let Err(e) = bind_ticket_columns(row.push_bind(t.id), TicketColumns::of(t)) {
                bad = Some(e);
            }
        });
        if let Some(e) = bad {
            return Err(e);
        }
        q.build().execute(&mut *tx).await?;
    }
    let mut stored: std::collections::HashMap<String, i64> = Default::default();
    for chunk in tickets.chunks(rows) {
        let sql = format!("INSERT INTO messages ({INBOUND_COLUMNS}) ");
        let mut q = sqlx::QueryBuilder::<Db>::new(sql);
        q.push_values(chunk, |mut row, t| {
            row.push_bind(t.id).push("'in'");
            bind_inbound(&mut row, &t.raw, &t.mail, t.automatic.as_ref(), t.now);
        });
        q.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key");
        for row in q.build().fetch_all(&mut *tx).await? {
            stored.insert(row.try_get("dedupe_key")?, row.try_get("id")?);
        }
    }
    let mut attachments = Vec::new();
    let mut keys = Vec::new();
    let mut taken_back = Vec::new();
    for t in &tickets {
        match stored.get(&t.dedupe_key) {
            Some(message) => {
                pending.arrivals.push((*message, t.mailbox.clone(), t.now));
                attachments.extend(t.mail.attachments.iter().map(|a| (*message, a)));
                keys.extend(t.route.keys.iter().map(|k| (t.id, k)));
            }
            None => taken_back.push((t.id, t.dedupe_key.clone(), t.mailbox.clone(), t.now)),
        }
    }
    insert_attachments(&mut *tx, &attachments).await?;
    insert_keys(&mut *tx, &keys).await?;
    // Newest first, so that each number given back is the last one taken.
    for (ticket, ..) in taken_back.iter().rev() {
        take_back_ticket(&mut *tx, *ticket).await?;
    }
    if !taken_back.is_empty() {
        let gone: std::collections::HashSet<i64> = taken_back.iter().map(|t| t.0).collect();
        pending.changes.retain(|c| !gone.contains(&c.ticket));
        pending.participants.retain(|(t, _)| !gone.contains(t));
        pending.hooks.retain(|(t, ..)| !gone.contains(t));
    }
    Ok(taken_back)
}

/// `count` ticket numbers from the sequence at once, ascending
/// (PostgreSQL; see `StoreTx::reserve_numbers`).
pub async fn reserve_ticket_numbers(tx: &mut Conn, count: usize) -> Result<Vec<i64>> {
    if TICKET_NUMBERS_COUNTED {
        return Ok(Vec::new());
    }
    let mut numbers: Vec<i64> = sqlx::query_scalar(RESERVE_TICKET_NUMBERS)
        .bind(count as i64)
        .fetch_all(&mut *tx)
        .await?;
    numbers.sort_unstable();
    Ok(numbers)
}

/// Tickets' keys, one statement per `ROWS_PER_STATEMENT`: one hop, and
/// on PostgreSQL one rewrite of each ticket's search document instead of
/// one per key.
async fn insert_keys(tx: &mut Conn, keys: &[(i64, &crate::route::Key)]) -> Result<()> {
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut q =
            sqlx::QueryBuilder::<Db>::new("INSERT INTO ticket_keys (ticket_id, name, value) ");
        q.push_values(chunk, |mut row, (ticket, key)| {
            row.push_bind(*ticket)
                .push_bind(&key.name)
                .push_bind(&key.value);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Whether the transaction counts ticket numbers itself after asking once
/// (see `NEXT_TICKET_NUMBER`).
pub fn numbers_counted() -> bool {
    TICKET_NUMBERS_COUNTED
}
