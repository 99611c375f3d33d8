//! Deployment settings kept in the database (the key that signs our
//! Message-IDs).

use sqlx::{Pool, Row};

use super::Db;
use crate::store::Result;

/// A deployment setting, created with `make` the first time.
pub async fn setting_or_create(pool: &Pool<Db>, name: &str, make: String) -> Result<String> {
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
