//! IMAP checkpoints (UIDVALIDITY, last UID per folder) and folder leases.

use sqlx::{Pool, Row};

use super::Db;
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

/// Gives back the leases `holder` holds on queued outbox rows and webhook
/// deliveries, so they are claimed again at once. Only for the leases of a
/// process that is gone: the daemon calls it at start, before it claims
/// anything, under a name no other live process has (see `instance`).
/// Returns how many mails and deliveries were given back.
pub async fn release_claims(pool: &Pool<Db>, holder: &str) -> Result<(u64, u64)> {
    let mut given = [0u64; 2];
    for (n, table) in ["outbox", "webhook_deliveries"].into_iter().enumerate() {
        let sql = format!(
            "UPDATE {table} SET lease_until = NULL, lease_holder = NULL \
             WHERE lease_holder = $1 AND status = 'queued' AND lease_until IS NOT NULL"
        );
        given[n] = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok((given[0], given[1]))
}
