//! Deadlines and alerts: the clocks of a state change, missed deadlines,
//! the alert rows.
//!
//! A breach is recorded by a conditional insert on the unique key
//! `(ticket, target, due_at)`: whoever inserts first (this instance after a
//! restart, or another instance on the same PostgreSQL) writes the alert, the
//! history line and the outgoing mails in that same transaction; everyone
//! else inserts nothing and rolls back. That is what makes "one alert per
//! breach" hold without any coordination.

use sqlx::Pool;

use super::events::insert_events;
use super::outbox::insert_outgoing;
use super::{Conn, Db, begin};
use crate::store::sql::decode;
use crate::store::{NewBreach, Result, hook_time};
use crate::ticket::{AlertRow, Breach, ClockChange, HookKind, NewHookEvent, Target};

/// Writes a paused or resumed clock with the change that caused it.
pub async fn apply_clock(tx: &mut Conn, ticket: i64, clock: &ClockChange) -> Result<()> {
    match *clock {
        ClockChange::Pause { at } => {
            sqlx::query("UPDATE tickets SET paused_at = COALESCE(paused_at, $2) WHERE id = $1")
                .bind(ticket)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        ClockChange::Resume {
            due_at,
            first_response_due_at,
        } => {
            sqlx::query(
                "UPDATE tickets SET paused_at = NULL, due_at = $2, \
                 first_response_due_at = $3 WHERE id = $1",
            )
            .bind(ticket)
            .bind(due_at)
            .bind(first_response_due_at)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// The client was answered: the first-response target is met
/// (the first time only) and its alert clears.
pub async fn first_response(tx: &mut Conn, ticket: i64, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE tickets SET first_response_at = COALESCE(first_response_at, $2) \
         WHERE id = $1",
    )
    .bind(ticket)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    clear_alerts(
        tx,
        ticket,
        Some(Target::FirstResponse),
        "first response",
        now,
    )
    .await
}

/// Moves one deadline by hand; the alert of the old one clears
/// (a new breach of the new date gets its own alert).
pub async fn move_due(tx: &mut Conn, ticket: i64, target: Target, at: i64, now: i64) -> Result<()> {
    // Two static texts rather than a column name in a string.
    let sql = match target {
        Target::FirstResponse => "UPDATE tickets SET first_response_due_at = $2 WHERE id = $1",
        Target::Resolution => "UPDATE tickets SET due_at = $2 WHERE id = $1",
    };
    sqlx::query(sql)
        .bind(ticket)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    clear_alerts(tx, ticket, Some(target), "due date moved", now).await
}

/// Clears the open alerts of a ticket (of one target, or all).
pub async fn clear_alerts(
    tx: &mut Conn,
    ticket: i64,
    target: Option<Target>,
    by: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE alerts SET cleared_at = $3, cleared_by = $4 \
         WHERE ticket_id = $1 AND cleared_at IS NULL AND ($2 IS NULL OR target = $2)",
    )
    .bind(ticket)
    .bind(target.map(Target::as_str))
    .bind(now)
    .bind(by)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Missed deadlines that have no alert yet, earliest first. A
/// paused clock counts up to the pause: a ticket that was already
/// late when it started waiting is still late.
pub async fn breaches(pool: &Pool<Db>, now: i64, limit: i64) -> Result<Vec<Breach>> {
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT t.id, 'first_response' AS target, t.first_response_due_at AS due \
         FROM tickets t WHERE t.state <> 'done' AND t.first_response_at IS NULL \
         AND t.first_response_due_at <= COALESCE(t.paused_at, $1) \
         AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.ticket_id = t.id \
            AND a.target = 'first_response' AND a.due_at = t.first_response_due_at) \
         UNION ALL \
         SELECT t.id, 'resolution' AS target, t.due_at AS due \
         FROM tickets t WHERE t.state <> 'done' \
         AND t.due_at <= COALESCE(t.paused_at, $1) \
         AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.ticket_id = t.id \
            AND a.target = 'resolution' AND a.due_at = t.due_at) \
         ORDER BY due, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(ticket, target, due_at)| {
            Ok(Breach {
                ticket,
                target: decode("alerts.target", target)?,
                due_at,
            })
        })
        .collect()
}

/// Records one breach with its history line and mails; `false`
/// when it was already recorded (by us before a restart, or by
/// another instance), and then nothing is written.
/// `hooks_wanted`: whether it writes its webhook event (see
/// `Store::webhook_events`).
pub async fn record_breach(pool: &Pool<Db>, new: &NewBreach, hooks_wanted: bool) -> Result<bool> {
    let mut tx = begin(pool).await?;
    // The ticket first, like every change of it (the webhook event's id
    // then follows the ticket's earlier changes).
    super::webhooks::lock_tickets(&mut tx, &[new.breach.ticket]).await?;
    let inserted = sqlx::query(
        "INSERT INTO alerts (ticket_id, target, due_at, breached_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(new.breach.ticket)
    .bind(new.breach.target.as_str())
    .bind(new.breach.due_at)
    .bind(new.now)
    .fetch_optional(&mut *tx)
    .await?;
    if inserted.is_none() {
        tx.rollback().await?;
        return Ok(false);
    }
    let mut events = new.events.clone();
    for mail in &new.outgoing {
        events.extend(insert_outgoing(&mut tx, new.breach.ticket, mail, new.now).await?);
    }
    insert_events(&mut tx, new.breach.ticket, new.now, &events).await?;
    let missed = NewHookEvent::new(
        HookKind::DeadlineMissed,
        serde_json::json!({ "deadline": {
            "target": new.breach.target.as_str(),
            "due_at": hook_time(new.breach.due_at),
        }}),
    );
    if hooks_wanted {
        super::webhooks::insert_hook_events(&mut tx, &[(new.breach.ticket, new.now, &missed)])
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// An alert as stored, with the ticket fields it is listed with.
#[derive(sqlx::FromRow)]
struct StoredAlert {
    id: i64,
    ticket_id: i64,
    target: String,
    due_at: i64,
    breached_at: i64,
    cleared_at: Option<i64>,
    cleared_by: Option<String>,
    subject: String,
    owner: Option<String>,
    pipeline: String,
    priority: String,
    state: String,
}

impl StoredAlert {
    fn decode(self) -> Result<AlertRow> {
        Ok(AlertRow {
            id: self.id,
            ticket: self.ticket_id,
            subject: self.subject,
            owner: self.owner,
            pipeline: self.pipeline,
            priority: decode("tickets.priority", self.priority)?,
            state: decode("tickets.state", self.state)?,
            target: decode("alerts.target", self.target)?,
            due_at: self.due_at,
            breached_at: self.breached_at,
            cleared_at: self.cleared_at,
            cleared_by: self.cleared_by,
        })
    }
}

/// Alerts, most overdue first: open ones, or all with `cleared`;
/// of one owner's tickets (or one ticket's), or everyone's.
pub async fn alerts(
    pool: &Pool<Db>,
    owner: Option<&str>,
    ticket: Option<i64>,
    cleared: bool,
) -> Result<Vec<AlertRow>> {
    let rows: Vec<StoredAlert> = sqlx::query_as(
        "SELECT a.id, a.ticket_id, a.target, a.due_at, a.breached_at, a.cleared_at, \
         a.cleared_by, t.subject, t.owner, t.pipeline, t.priority, t.state \
         FROM alerts a JOIN tickets t ON t.id = a.ticket_id \
         WHERE ($1 IS NULL OR t.owner = $1) AND ($2 = 1 OR a.cleared_at IS NULL) \
         AND ($3 IS NULL OR a.ticket_id = $3) \
         ORDER BY a.due_at, a.id",
    )
    .bind(owner)
    .bind(i64::from(cleared))
    .bind(ticket)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(StoredAlert::decode).collect()
}
