//! Agents' replies by mail waiting to be carried out, step by step.

use sqlx::Pool;

use super::{Conn, Db};
use crate::store::{JobStep, Result, StaffJob};

/// Queues an agent's mail (inside the ingest transaction that stores it).
pub async fn queue_staff_mail(
    tx: &mut Conn,
    key: &str,
    ticket: i64,
    person: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO staff_mail_jobs (message_key, ticket_id, person, created_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(key)
    .bind(ticket)
    .bind(person)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The jobs not finished, oldest first, with the agent's text.
pub async fn pending_staff_mail(pool: &Pool<Db>) -> Result<Vec<StaffJob>> {
    Ok(sqlx::query_as(
        "SELECT j.message_key, j.ticket_id, j.person, j.steps_done, m.body_text, \
         m.id AS message_row \
         FROM staff_mail_jobs j JOIN messages m ON m.dedupe_key = j.message_key \
         WHERE j.done_at IS NULL ORDER BY j.created_at, j.message_key",
    )
    .fetch_all(pool)
    .await?)
}

/// Counts one step of a job, in the transaction of its change: `false` when
/// the step was already counted (another instance, or before a crash).
pub async fn count_step(tx: &mut Conn, step: &JobStep, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE staff_mail_jobs SET steps_done = steps_done + 1, \
         done_at = CASE WHEN $3 = 1 THEN $4 ELSE done_at END \
         WHERE message_key = $1 AND steps_done = $2 AND done_at IS NULL",
    )
    .bind(&step.key)
    .bind(step.index)
    .bind(i64::from(step.last))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Finishes a job with nothing more to do.
pub async fn finish_staff_mail(pool: &Pool<Db>, key: &str, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE staff_mail_jobs SET done_at = $2 WHERE message_key = $1 AND done_at IS NULL",
    )
    .bind(key)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}
