//! People's API tokens: the SHA-256 of each (made by the caller), whose
//! they are, when they expire, when last used, when revoked.

use sqlx::{Pool, Row};

use super::Db;
use crate::store::{ApiToken, NewApiToken, Result};

/// How often a token's `last_used_at` is written: not on every request
/// (a script polling every second would write as often), but close enough
/// to tell a token in use from a forgotten one.
const TOUCH_EVERY_MS: i64 = 60_000;

pub async fn create_token(pool: &Pool<Db>, token: &NewApiToken) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO api_tokens (token_hash, hint, person, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&token.token_hash)
    .bind(&token.hint)
    .bind(&token.person)
    .bind(token.created_at)
    .bind(token.expires_at)
    .fetch_one(pool)
    .await?;
    Ok(row.try_get("id")?)
}

/// The person of the live token with this hash (not revoked, not
/// expired), noting that it was used.
pub async fn token_person(pool: &Pool<Db>, token_hash: &str, now: i64) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT id, person, last_used_at FROM api_tokens WHERE token_hash = $1 \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let last: Option<i64> = row.try_get("last_used_at")?;
    if last.is_none_or(|l| now - l >= TOUCH_EVERY_MS) {
        let id: i64 = row.try_get("id")?;
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
    }
    Ok(Some(row.try_get("person")?))
}

/// Every token (of `person`, when given), newest first.
pub async fn tokens(pool: &Pool<Db>, person: Option<&str>) -> Result<Vec<ApiToken>> {
    let rows = sqlx::query(
        "SELECT id, hint, person, created_at, expires_at, last_used_at, revoked_at \
         FROM api_tokens WHERE ($1 IS NULL OR person = $1) ORDER BY id DESC",
    )
    .bind(person)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ApiToken {
                id: r.try_get("id")?,
                hint: r.try_get("hint")?,
                person: r.try_get("person")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                last_used_at: r.try_get("last_used_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .collect()
}

/// Revokes a token; false when there is none with that id or it was
/// already revoked.
pub async fn revoke_token(pool: &Pool<Db>, id: i64, now: i64) -> Result<bool> {
    let done =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}
