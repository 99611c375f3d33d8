//! Delivers queued outbox rows through a transport.
//!
//! Rows are claimed with a lease (a crash while sending only means the row is
//! retried when the lease expires) and the transport runs outside any
//! database transaction. A failed attempt is rescheduled on the retry
//! schedule; a permanent failure, or one past the maximum age, marks the row
//! failed with its last error.

use std::path::{Path, PathBuf};

use crate::store::{OutboxRow, Store, StoreError};

/// How long a claimed row stays ours before another worker may retry it.
pub const LEASE_MS: i64 = 5 * 60 * 1000;

/// Default retry delays after the 1st, 2nd, ... failure; the last repeats.
pub const DEFAULT_SCHEDULE_SECS: &[i64] = &[120, 300, 600, 900, 1800, 3600, 7200];

/// Give up on a mail this long after it was queued.
pub const DEFAULT_MAX_AGE_MS: i64 = 3 * 24 * 3600 * 1000;

/// Where outgoing mail goes.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Write `<dir>/<outbox id>-<kind>.eml` (tests, demo, dry runs).
    Dir(PathBuf),
}

/// Why one delivery failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl Transport {
    async fn send(&self, row: &OutboxRow) -> Result<String, DeliveryError> {
        match self {
            Transport::Dir(dir) => write_eml(dir, row).await,
        }
    }
}

/// The file name is derived from the outbox row, so a retry after a crash
/// rewrites the same file instead of leaving a second copy.
async fn write_eml(dir: &Path, row: &OutboxRow) -> Result<String, DeliveryError> {
    let io = |e: std::io::Error| DeliveryError::Transient(format!("{}: {e}", dir.display()));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    let name = format!("{:06}-{}.eml", row.id, row.kind);
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, &row.raw).await.map_err(io)?;
    tokio::fs::rename(&tmp, dir.join(&name)).await.map_err(io)?;
    Ok(name)
}

/// When to try again after `attempts` failures, or `None` to give up.
pub fn next_attempt(created_at: i64, attempts: i64, now: i64, schedule: &[i64]) -> Option<i64> {
    let idx = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    let delay = schedule
        .get(idx)
        .or(schedule.last())
        .copied()
        .unwrap_or(7200);
    let at = now + delay * 1000;
    (at - created_at <= DEFAULT_MAX_AGE_MS).then_some(at)
}

/// Sends every due row once. Returns counts; store errors abort the drain.
pub async fn drain(
    store: &Store,
    transport: &Transport,
    now: i64,
) -> Result<DrainReport, StoreError> {
    let mut report = DrainReport::default();
    loop {
        let rows = store.outbox_claim(now, now + LEASE_MS, 50).await?;
        if rows.is_empty() {
            return Ok(report);
        }
        for row in rows {
            match transport.send(&row).await {
                Ok(receipt) => {
                    store.outbox_sent(row.id, crate::store::now_ms()).await?;
                    tracing::info!(outbox = row.id, kind = %row.kind, %receipt, "Mail delivered.");
                    report.sent += 1;
                }
                Err(DeliveryError::Store(e)) => return Err(e),
                Err(DeliveryError::Transient(error)) => {
                    let next =
                        next_attempt(row.created_at, row.attempts, now, DEFAULT_SCHEDULE_SECS);
                    store.outbox_failed(row.id, &error, next).await?;
                    tracing::warn!(outbox = row.id, %error, retry = next.is_some(), "Delivery failed.");
                    if next.is_some() {
                        report.retrying += 1;
                    } else {
                        report.failed += 1;
                    }
                }
                Err(DeliveryError::Permanent(error)) => {
                    store.outbox_failed(row.id, &error, None).await?;
                    tracing::warn!(outbox = row.id, %error, "Delivery failed permanently.");
                    report.failed += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_steps_then_repeats_then_gives_up() {
        let s = DEFAULT_SCHEDULE_SECS;
        assert_eq!(next_attempt(0, 1, 0, s), Some(120_000));
        assert_eq!(next_attempt(0, 2, 0, s), Some(300_000));
        assert_eq!(next_attempt(0, 20, 0, s), Some(7_200_000));
        assert_eq!(next_attempt(0, 3, DEFAULT_MAX_AGE_MS, s), None);
    }
}
