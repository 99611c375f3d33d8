//! IMAP checkpoints (UIDVALIDITY, last UID per folder) and folder leases.

use sqlx::{Pool, Row};

use super::{Db, Exec};
use crate::store::Result;

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
    pool: impl Exec<'_>,
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
    pool: impl Exec<'_>,
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
