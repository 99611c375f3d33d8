//! The web workspace's records: people's password hashes (argon2id, made
//! by the caller), sessions (the SHA-256 of the cookie) and failed logins;
//! an attachment's content for download.

use sqlx::{Pool, Row};

use super::Db;
use crate::store::{AttachmentContent, Result, WebSession};

/// Sets (or replaces) a person's password hash.
pub async fn set_password(pool: &Pool<Db>, person: &str, hash: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO staff_passwords (person, hash, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (person) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
    )
    .bind(person)
    .bind(hash)
    .bind(now)
    .execute(pool)
    .await?;
    // A new password ends the sessions opened with the old one.
    sqlx::query("DELETE FROM web_sessions WHERE person = $1")
        .bind(person)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn password_hash(pool: &Pool<Db>, person: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT hash FROM staff_passwords WHERE person = $1")
        .bind(person)
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("hash")?),
        None => None,
    })
}

pub async fn create_session(
    pool: &Pool<Db>,
    id_hash: &str,
    session: &WebSession,
    now: i64,
) -> Result<()> {
    // Expired sessions go when someone signs in: no separate sweeper.
    sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, person, csrf, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(&session.person)
    .bind(&session.csrf)
    .bind(now)
    .bind(session.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The live session with this cookie hash, if any.
pub async fn session(pool: &Pool<Db>, id_hash: &str, now: i64) -> Result<Option<WebSession>> {
    let row = sqlx::query(
        "SELECT person, csrf, expires_at FROM web_sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(r) => Some(WebSession {
            person: r.try_get("person")?,
            csrf: r.try_get("csrf")?,
            expires_at: r.try_get("expires_at")?,
        }),
        None => None,
    })
}

pub async fn end_session(pool: &Pool<Db>, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn record_login_failure(
    pool: &Pool<Db>,
    person: &str,
    address: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO login_failures (person, address, at) VALUES ($1, $2, $3)")
        .bind(person)
        .bind(address)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// Failed logins since `since` for this person and from this address.
pub async fn login_failures(
    pool: &Pool<Db>,
    person: &str,
    address: &str,
    since: i64,
) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM login_failures WHERE person = $1 AND at > $3) AS by_person, \
         (SELECT COUNT(*) FROM login_failures WHERE address = $2 AND at > $3) AS by_address",
    )
    .bind(person)
    .bind(address)
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok((row.try_get("by_person")?, row.try_get("by_address")?))
}

/// The `index`-th attachment (in stored order) of message `message` of
/// ticket `ticket`: both must match, so a URL cannot reach another
/// ticket's files.
pub async fn attachment(
    pool: &Pool<Db>,
    ticket: i64,
    message: i64,
    index: i64,
) -> Result<Option<AttachmentContent>> {
    let row = sqlx::query(
        "SELECT a.name, a.content_type, a.content FROM attachments a \
         JOIN messages m ON m.id = a.message_id \
         WHERE m.ticket_id = $1 AND a.message_id = $2 ORDER BY a.id LIMIT 1 OFFSET $3",
    )
    .bind(ticket)
    .bind(message)
    .bind(index)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(r) => Some(AttachmentContent {
            name: r.try_get("name")?,
            content_type: r.try_get("content_type")?,
            content: r.try_get("content")?,
        }),
        None => None,
    })
}
