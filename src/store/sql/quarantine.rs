//! Mail that could not be ticketed, with its raw bytes and the reason.

use sqlx::{Pool, Row};

use super::Db;
use crate::store::{QuarantineRow, Result, StoreError};

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
    Ok(sqlx::query_as(
        "SELECT id, mailbox, reason, size, status, ticket_id, created_at, updated_at \
         FROM quarantine ORDER BY id",
    )
    .fetch_all(pool)
    .await?)
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
