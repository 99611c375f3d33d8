//! Delivers queued outbox rows through a transport.
//!
//! Rows are claimed with a lease (a crash while sending only means the row is
//! retried when the lease expires; on PostgreSQL `FOR UPDATE SKIP LOCKED`
//! lets several instances claim disjoint rows) and the transport runs
//! outside any database transaction. A transient failure is rescheduled on
//! the retry schedule (`outbox.retry_schedule`, the last step repeating); a
//! permanent one, or one past `outbox.max_age`, marks the row failed with
//! its last error.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use tracing::Instrument;

use super::smtp::{SendFailure, SmtpSender, SmtpSetupError};

use crate::config::Config;
use crate::store::{Store, StoreError};
use crate::ticket::{HookKind, NewHookEvent, OutboxRow};

/// How long a claimed row stays ours before another worker may retry it.
/// Longer than any SMTP exchange can take with the command timeout.
pub const LEASE_MS: i64 = 2 * 60 * 1000;

/// Default retry delays after the 1st, 2nd, ... failure; the last repeats.
pub const DEFAULT_SCHEDULE_SECS: &[i64] = &[120, 300, 600, 900, 1800, 3600, 7200];

/// Default: give up on a mail this long after it was queued.
pub const DEFAULT_MAX_AGE_MS: i64 = 3 * 24 * 3600 * 1000;

/// Rows claimed per round: enough to keep every SMTP connection busy.
const CLAIM_BATCH: i64 = 200;

/// When to retry and when to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delays in ms after the 1st, 2nd, ... failure; the last repeats.
    pub schedule_ms: Vec<i64>,
    pub max_age_ms: i64,
    /// How long a claimed row stays ours (a crash means a retry after it).
    pub lease_ms: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            schedule_ms: DEFAULT_SCHEDULE_SECS.iter().map(|s| s * 1000).collect(),
            max_age_ms: DEFAULT_MAX_AGE_MS,
            lease_ms: LEASE_MS,
        }
    }
}

impl RetryPolicy {
    pub fn from_config(config: &Config) -> RetryPolicy {
        let schedule_ms = config.outbox.retry_schedule_ms();
        RetryPolicy {
            schedule_ms: if schedule_ms.is_empty() {
                RetryPolicy::default().schedule_ms
            } else {
                schedule_ms
            },
            max_age_ms: config.outbox.max_age_ms(),
            lease_ms: config.outbox.lease_ms(),
        }
    }
}

/// Where outgoing mail goes.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Write `<dir>/<outbox id>-<kind>.eml` (tests, demo, dry runs).
    Dir(PathBuf),
    /// Submit to an SMTP server.
    Smtp(SmtpSender),
}

/// A sink and its retry policy: everything `drain` needs.
#[derive(Debug, Clone)]
pub struct Transport {
    pub sink: Sink,
    pub retry: RetryPolicy,
}

/// Why one delivery failed, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The transport itself is down: later rows of this drain are not tried.
    #[error("unreachable: {0}")]
    Unreachable(String),
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
    /// `.eml` files in `dir`, with the default retry policy.
    pub fn dir(dir: PathBuf) -> Transport {
        Transport {
            sink: Sink::Dir(dir),
            retry: RetryPolicy::default(),
        }
    }

    /// From the configuration: `outbox.dir` (or `BUZON_OUTBOX_DIR`) when
    /// set, else `[smtp]` when configured, else `None` (mail stays queued).
    pub fn from_config(config: &Config) -> Result<Option<Transport>, SmtpSetupError> {
        Self::from_config_with_env(config, &|k| std::env::var(k).ok())
    }

    /// As `from_config`, with environment lookups injected (tests).
    pub fn from_config_with_env(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Transport>, SmtpSetupError> {
        let sink = match (&config.outbox.dir, &config.smtp) {
            (Some(dir), _) => Sink::Dir(dir.clone()),
            (None, Some(smtp)) => Sink::Smtp(SmtpSender::new(smtp, env)?),
            (None, None) => return Ok(None),
        };
        Ok(Some(Transport {
            sink,
            retry: RetryPolicy::from_config(config),
        }))
    }

    /// How many mails are sent at once: one per pooled SMTP connection;
    /// files one at a time.
    pub fn parallelism(&self) -> usize {
        match &self.sink {
            Sink::Dir(_) => 1,
            Sink::Smtp(s) => s.connections(),
        }
    }

    /// For logs: where mail goes.
    pub fn describe(&self) -> String {
        match &self.sink {
            Sink::Dir(dir) => format!("directory {}", dir.display()),
            Sink::Smtp(s) => format!("SMTP {}", s.server()),
        }
    }

    async fn send(&self, row: &OutboxRow) -> Result<String, DeliveryError> {
        match &self.sink {
            Sink::Dir(dir) => write_eml(dir, row).await,
            Sink::Smtp(smtp) => smtp
                .send(&row.mail_from, &row.rcpt_to, &row.raw)
                .await
                .map_err(|f| match f {
                    SendFailure::Unreachable(e) => DeliveryError::Unreachable(e),
                    SendFailure::Transient(e) => DeliveryError::Transient(e),
                    SendFailure::Permanent(e) => DeliveryError::Permanent(e),
                }),
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
/// `since` is when the row was queued (or requeued by hand). Always later
/// than `now`, so one drain never claims the same row twice.
pub fn next_attempt(since: i64, attempts: i64, now: i64, retry: &RetryPolicy) -> Option<i64> {
    let idx = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    let delay = retry
        .schedule_ms
        .get(idx)
        .or(retry.schedule_ms.last())
        .copied()
        .unwrap_or(7_200_000)
        .max(1);
    let at = now.saturating_add(delay);
    (at - since <= retry.max_age_ms).then_some(at)
}

/// Sends every row due at `now` once. Returns counts; store errors abort
/// the drain (the claimed rows are retried when their lease runs out).
///
/// Each claim holds at most one mail per ticket (the store keeps a ticket's
/// later mail back while an earlier one is queued), so a claimed batch is
/// sent concurrently, up to the transport's [`Transport::parallelism`], in
/// the order of each ticket; one recipient's failure does not hold back
/// another's mail. The mails sent are marked in one statement per round.
pub async fn drain(
    store: &Store,
    transport: &Transport,
    holder: &str,
    now: i64,
) -> Result<DrainReport, StoreError> {
    let mut report = DrainReport::default();
    // Once the server is unreachable, the rest of this round is rescheduled
    // without a connection attempt each: with a server that hangs, one
    // timeout per drain instead of one per queued mail.
    let unreachable: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    loop {
        let rows = store
            .outbox_claim(now, now + transport.retry.lease_ms, CLAIM_BATCH, holder)
            .await?;
        if rows.is_empty() {
            return Ok(report);
        }
        let unreachable = &unreachable;
        // Mails sent over SMTP are marked a few at a time as they go out, not
        // once per round: a crash (SIGKILL, power) repeats at most about two
        // connections' worth of mails, never a whole round of 200. A file
        // written again replaces itself, so files are marked per round.
        let mark_every = match &transport.sink {
            Sink::Dir(_) => CLAIM_BATCH as usize,
            Sink::Smtp(_) => transport.parallelism().max(1),
        };
        let mut results = futures::stream::iter(rows)
                .map(|row| async move {
                    let span = tracing::info_span!("outbox", id = row.id, kind = %row.kind, ticket = ?row.ticket);
                    let down = unreachable.lock().ok().and_then(|u| u.clone());
                    let result = match down {
                        Some(error) => Err(DeliveryError::Transient(format!(
                            "{error} (not tried again in this round)"
                        ))),
                        None => transport.send(&row).instrument(span).await,
                    };
                    if let Err(DeliveryError::Unreachable(error)) = &result
                        && let Ok(mut u) = unreachable.lock()
                    {
                        u.get_or_insert_with(|| error.clone());
                    }
                    (row, result)
                })
                .buffer_unordered(transport.parallelism());
        let mut sent = Vec::new();
        while let Some((row, result)) = results.next().await {
            let span =
                tracing::info_span!("outbox", id = row.id, kind = %row.kind, ticket = ?row.ticket);
            match result {
                Ok(receipt) => {
                    tracing::info!(parent: &span, %receipt, "Mail delivered.");
                    sent.push((row.id, row.ticket.map(|t| (t, sent_event(&row)))));
                    if sent.len() >= mark_every {
                        store.outbox_sent(&sent, crate::store::now_ms()).await?;
                        report.sent += sent.len();
                        sent.clear();
                    }
                }
                Err(DeliveryError::Store(e)) => return Err(e),
                Err(DeliveryError::Transient(error) | DeliveryError::Unreachable(error)) => {
                    let since = row
                        .requeued_at
                        .unwrap_or(row.created_at)
                        .max(row.created_at);
                    let next = next_attempt(since, row.attempts, now, &transport.retry);
                    store.outbox_failed(row.id, &error, next).await?;
                    if next.is_some() {
                        tracing::warn!(parent: &span, %error, attempts = row.attempts, "Delivery failed; will retry.");
                        report.retrying += 1;
                    } else {
                        tracing::error!(parent: &span, %error, attempts = row.attempts, "Delivery failed past the maximum age; giving up.");
                        report.failed += 1;
                    }
                }
                Err(DeliveryError::Permanent(error)) => {
                    store.outbox_failed(row.id, &error, None).await?;
                    tracing::error!(parent: &span, %error, "Delivery failed permanently.");
                    report.failed += 1;
                }
            }
        }
        store.outbox_sent(&sent, crate::store::now_ms()).await?;
        report.sent += sent.len();
    }
}

/// The `message.sent` webhook event of a mail that left.
fn sent_event(row: &OutboxRow) -> NewHookEvent {
    NewHookEvent::new(
        HookKind::MessageSent,
        serde_json::json!({ "message": {
            "kind": row.kind,
            "message_id": row.message_id,
            "to": row.rcpt_to,
        }}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_steps_then_repeats_then_gives_up() {
        let r = RetryPolicy::default();
        assert_eq!(next_attempt(0, 1, 0, &r), Some(120_000));
        assert_eq!(next_attempt(0, 2, 0, &r), Some(300_000));
        assert_eq!(next_attempt(0, 20, 0, &r), Some(7_200_000));
        assert_eq!(next_attempt(0, 3, DEFAULT_MAX_AGE_MS, &r), None);
    }

    #[tokio::test]
    async fn the_configuration_picks_the_transport() {
        use crate::config::{Smtp, SmtpTls};
        let mut config = Config::with_defaults("sqlite::memory:".into());
        let none = |_: &str| None;
        assert!(
            Transport::from_config_with_env(&config, &none)
                .unwrap()
                .is_none()
        );
        config.smtp = Some(Smtp {
            host: "127.0.0.1".into(),
            port: Some(2525),
            tls: SmtpTls::None,
            username: Some("soporte".into()),
            password_file: None,
            password_env: Some("SMTP_PASS".into()),
            ca_file: None,
            pool_size: 2,
            timeout: "5s".into(),
        });
        config.outbox.retry_schedule.0 = vec!["1m".into()];
        let missing = Transport::from_config_with_env(&config, &none).unwrap_err();
        assert!(missing.to_string().contains("SMTP_PASS"), "{missing}");
        let secret = |k: &str| (k == "SMTP_PASS").then(|| "s3cret".to_string());
        let smtp = Transport::from_config_with_env(&config, &secret)
            .unwrap()
            .unwrap();
        assert_eq!(smtp.describe(), "SMTP 127.0.0.1:2525 (plain)");
        assert_eq!(smtp.retry.schedule_ms, vec![60_000]);
        assert!(!format!("{smtp:?}").contains("s3cret"));
        config.outbox.dir = Some(PathBuf::from("out"));
        let dir = Transport::from_config_with_env(&config, &none)
            .unwrap()
            .unwrap();
        assert_eq!(dir.describe(), "directory out");
    }

    #[test]
    fn a_requeue_restarts_the_age_and_a_retry_is_never_now() {
        let r = RetryPolicy {
            schedule_ms: vec![1000],
            max_age_ms: 5000,
            lease_ms: LEASE_MS,
        };
        assert_eq!(next_attempt(0, 1, 4500, &r), None);
        assert_eq!(next_attempt(4000, 1, 4500, &r), Some(5500));
        let zero = RetryPolicy {
            schedule_ms: vec![0],
            max_age_ms: 5000,
            lease_ms: LEASE_MS,
        };
        assert_eq!(next_attempt(0, 1, 10, &zero), Some(11));
    }
}
