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

/// The versions of the migrations applied (sqlx's own table), none when
/// the database was never migrated.
pub async fn applied_migrations(pool: &Pool<Db>) -> Result<Vec<i64>> {
    let rows = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await;
    match rows {
        Ok(rows) => Ok(rows
            .iter()
            .map(|r| r.try_get::<i64, _>("version"))
            .collect::<std::result::Result<_, _>>()?),
        Err(sqlx::Error::Database(e))
            if e.message().contains("no such table") || e.message().contains("does not exist") =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}
