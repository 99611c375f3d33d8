//! The daemon's health and metrics: per-folder state, counters, and a tiny
//! HTTP endpoint on loopback serving `/healthz` (JSON; 503 when a folder
//! has failed for too long) and `/metrics` (Prometheus text format).
//!
//! Hand-written rather than a web framework: two fixed GET routes on a
//! loopback socket do not justify a few dozen more crates.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;
use tokio::net::TcpListener;

/// What a folder worker is doing.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FolderState {
    Starting,
    /// Another instance holds the folder's lease.
    Standby,
    Draining,
    /// Waiting for new mail (IDLE or polling).
    Waiting,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct FolderHealth {
    pub state: FolderState,
    /// When the state became `failed` (Unix ms), for the 503 threshold.
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
    /// Last time a drain of the folder completed (Unix ms).
    pub last_success: Option<i64>,
    /// Mails seen in the folder but not yet stored, at the last look.
    pub lag: i64,
    pub ingested: u64,
    pub quarantined: u64,
    /// When the OAuth token of the last login expires (Unix ms), when the
    /// token says (a JWT's `exp`).
    pub token_expires_at: Option<i64>,
}

/// Shared by every worker; cheap to update.
#[derive(Default)]
pub struct Health {
    folders: Mutex<BTreeMap<String, FolderHealth>>,
    pub mails_ingested: AtomicU64,
    pub mails_duplicate: AtomicU64,
    pub mails_quarantined: AtomicU64,
    pub outbox_sent: AtomicU64,
    pub outbox_failed: AtomicU64,
    pub outbox_depth: AtomicI64,
    /// Missed deadlines recorded by this instance.
    pub deadlines_missed: AtomicU64,
    /// Alerts not cleared yet (all instances).
    pub alerts_open: AtomicI64,
    /// Webhook endpoints by name.
    webhooks: Mutex<BTreeMap<String, EndpointHealth>>,
    pub webhooks_sent: AtomicU64,
    /// Webhook deliveries given up by this instance.
    pub webhooks_failed: AtomicU64,
    /// Webhook deliveries waiting, and given up and not retried (all instances).
    pub webhooks_queued: AtomicI64,
    pub webhooks_gave_up: AtomicI64,
    /// Attempts (a folder's batch or lease, an outbox or webhook round)
    /// that failed because the database's disk is full; the log says it
    /// only when it starts and ends.
    pub disk_full: AtomicU64,
}

/// How a webhook endpoint answered lately.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EndpointHealth {
    /// Since when its deliveries fail (Unix ms); none while they succeed.
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
    /// The receiver answered 410 Gone: someone must look (buzon keeps
    /// retrying; it never disables an endpoint by itself).
    pub gone: bool,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    fn with<F: FnOnce(&mut FolderHealth)>(&self, folder: &str, f: F) {
        // A poisoned lock only means a worker panicked mid-update; the data
        // is still the best we have.
        let mut map = self.folders.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(folder.to_string()).or_insert(FolderHealth {
            state: FolderState::Starting,
            failing_since: None,
            last_error: None,
            last_success: None,
            lag: 0,
            ingested: 0,
            quarantined: 0,
            token_expires_at: None,
        });
        f(entry);
    }

    /// Records a state; returns whether it changed (so logs say it once).
    pub fn set_state(&self, folder: &str, state: FolderState) -> bool {
        let mut changed = false;
        self.with(folder, |h| {
            changed = h.state != state;
            if state != FolderState::Failed {
                h.failing_since = None;
                h.last_error = None;
            }
            h.state = state;
        });
        changed
    }

    /// Records a failure; returns whether the folder was not failing before.
    /// Records when the OAuth token a folder logged in with expires.
    pub fn set_token_expiry(&self, folder: &str, expires_at: Option<i64>) {
        self.with(folder, |h| h.token_expires_at = expires_at);
    }

    /// Whether the folder is failing now (to log its recovery once).
    pub fn is_failed(&self, folder: &str) -> bool {
        let mut failed = false;
        self.with(folder, |h| failed = h.state == FolderState::Failed);
        failed
    }

    pub fn set_failed(&self, folder: &str, error: &str, now: i64) -> bool {
        let mut first = false;
        self.with(folder, |h| {
            first = h.state != FolderState::Failed;
            if first {
                h.failing_since = Some(now);
            }
            h.state = FolderState::Failed;
            h.last_error = Some(error.to_string());
        });
        first
    }

    pub fn drained(&self, folder: &str, now: i64, lag: i64) {
        self.with(folder, |h| {
            h.last_success = Some(now);
            h.lag = lag;
        });
    }

    pub fn set_lag(&self, folder: &str, lag: i64) {
        self.with(folder, |h| h.lag = lag);
    }

    pub fn count(&self, folder: &str, ingested: u64, quarantined: u64) {
        self.with(folder, |h| {
            h.ingested += ingested;
            h.quarantined += quarantined;
        });
    }

    /// A webhook endpoint took a delivery.
    pub fn webhook_ok(&self, endpoint: &str) {
        let mut map = self.webhooks.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(endpoint.to_string(), EndpointHealth::default());
    }

    /// A webhook delivery failed (`gone`: the receiver answered 410).
    pub fn webhook_failed(&self, endpoint: &str, error: &str, gone: bool, now: i64) {
        let mut map = self.webhooks.lock().unwrap_or_else(|p| p.into_inner());
        let h = map.entry(endpoint.to_string()).or_default();
        h.failing_since.get_or_insert(now);
        h.last_error = Some(error.to_string());
        h.gone |= gone;
    }

    pub fn webhooks(&self) -> BTreeMap<String, EndpointHealth> {
        self.webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> BTreeMap<String, FolderHealth> {
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// HTTP status and JSON body of `/healthz`.
    pub fn healthz(&self, now: i64, unhealthy_after_ms: i64) -> (u16, String) {
        let folders = self.snapshot();
        let webhooks = self.webhooks();
        let late = |since: Option<i64>| since.is_some_and(|t| now - t > unhealthy_after_ms);
        let unhealthy: Vec<String> = folders
            .iter()
            .filter(|(_, h)| late(h.failing_since))
            .map(|(name, _)| name.clone())
            // An endpoint that answered 410 fails at once; one that fails
            // otherwise, after the same time as a folder.
            .chain(
                webhooks
                    .iter()
                    .filter(|(_, h)| h.gone || late(h.failing_since))
                    .map(|(name, _)| format!("webhook:{name}")),
            )
            .collect();
        let status = if unhealthy.is_empty() {
            "ok"
        } else {
            "failing"
        };
        let body = serde_json::json!({
            "status": status,
            "failing": unhealthy,
            "folders": folders,
            "webhooks": webhooks,
        });
        (
            if unhealthy.is_empty() { 200 } else { 503 },
            format!("{body:#}\n"),
        )
    }

    /// The Prometheus exposition.
    pub fn metrics(&self, now: i64) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "buzon_mails_ingested_total",
            "Mails stored on a ticket.",
            self.mails_ingested.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "buzon_mails_duplicate_total",
            "Mails already stored (another mailbox or a re-fetch).",
            self.mails_duplicate.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "buzon_mails_quarantined_total",
            "Mails kept in quarantine.",
            self.mails_quarantined.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "buzon_outbox_sent_total",
            "Outgoing mails delivered.",
            self.outbox_sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "buzon_outbox_failed_total",
            "Outgoing mails given up on.",
            self.outbox_failed.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP buzon_outbox_depth Outgoing mails waiting.\n# TYPE buzon_outbox_depth gauge\nbuzon_outbox_depth {}",
            self.outbox_depth.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "buzon_disk_full_total",
            "Attempts that failed because the database's disk is full (logged when it starts and ends).",
            self.disk_full.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "buzon_deadlines_missed_total",
            "Missed deadlines recorded (each one alert and escalation).",
            self.deadlines_missed.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP buzon_alerts_open Alerts whose deadline is still not met.\n# TYPE buzon_alerts_open gauge\nbuzon_alerts_open {}",
            self.alerts_open.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "buzon_webhooks_sent_total",
            "Webhook requests delivered.",
            self.webhooks_sent.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "buzon_webhooks_failed_total",
            "Webhook deliveries given up on.",
            self.webhooks_failed.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP buzon_webhooks_queued Webhook deliveries waiting.\n# TYPE buzon_webhooks_queued gauge\nbuzon_webhooks_queued {}",
            self.webhooks_queued.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP buzon_webhooks_gave_up Webhook deliveries given up and not retried (buzon webhooks list --failed).\n# TYPE buzon_webhooks_gave_up gauge\nbuzon_webhooks_gave_up {}",
            self.webhooks_gave_up.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP buzon_webhook_up 1 unless the endpoint's deliveries are failing.\n# TYPE buzon_webhook_up gauge"
        );
        for (name, h) in self.webhooks() {
            let up = i32::from(h.failing_since.is_none());
            let _ = writeln!(
                out,
                "buzon_webhook_up{{endpoint=\"{}\"}} {up}",
                escape(&name)
            );
        }
        let folders = self.snapshot();
        let soonest = folders.values().filter_map(|h| h.token_expires_at).min();
        let _ = writeln!(
            out,
            "# HELP buzon_oauth_token_expiry_seconds Seconds until the soonest OAuth token expires (-1: none known).\n# TYPE buzon_oauth_token_expiry_seconds gauge\nbuzon_oauth_token_expiry_seconds {}",
            soonest.map(|at| (at - now) / 1000).unwrap_or(-1)
        );
        let _ = writeln!(
            out,
            "# HELP buzon_folder_lag Mails in the folder not yet stored.\n# TYPE buzon_folder_lag gauge"
        );
        for (name, h) in &folders {
            let _ = writeln!(
                out,
                "buzon_folder_lag{{folder=\"{}\"}} {}",
                escape(name),
                h.lag
            );
        }
        let _ = writeln!(
            out,
            "# HELP buzon_folder_last_success_seconds Seconds since the folder was last drained.\n# TYPE buzon_folder_last_success_seconds gauge"
        );
        for (name, h) in &folders {
            let age = h.last_success.map(|t| (now - t) / 1000).unwrap_or(-1);
            let _ = writeln!(
                out,
                "buzon_folder_last_success_seconds{{folder=\"{}\"}} {age}",
                escape(name)
            );
        }
        let _ = writeln!(
            out,
            "# HELP buzon_folder_up 1 unless the folder is failing.\n# TYPE buzon_folder_up gauge"
        );
        for (name, h) in &folders {
            let up = i32::from(h.state != FolderState::Failed);
            let _ = writeln!(out, "buzon_folder_up{{folder=\"{}\"}} {up}", escape(name));
        }
        out
    }
}

fn escape(label: &str) -> String {
    // The text format's three escapes in a label value: backslash, double
    // quote and line feed (a folder name may hold any of them).
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `/healthz` and `/metrics`, GET only (anything else: 405).
pub fn router(health: std::sync::Arc<Health>, unhealthy_after_ms: i64) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let h = health.clone();
    axum::Router::new()
        .route(
            "/healthz",
            get(move || async move {
                let (status, body) = h.healthz(crate::store::now_ms(), unhealthy_after_ms);
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, [(header::CONTENT_TYPE, "application/json")], body)
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    health.metrics(crate::store::now_ms()),
                )
            }),
        )
}

/// Serves `/healthz` and `/metrics` until the task is dropped.
pub async fn serve(listener: TcpListener, health: std::sync::Arc<Health>, unhealthy_after_ms: i64) {
    if let Err(e) = axum::serve(listener, router(health, unhealthy_after_ms)).await {
        tracing::error!(error = %e, "The health endpoint stopped.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soonest_token_expiry_is_reported() {
        let h = Health::new();
        assert!(h.metrics(0).contains("buzon_oauth_token_expiry_seconds -1"));
        h.set_token_expiry("a/INBOX", Some(3_600_000));
        h.set_token_expiry("b/INBOX", Some(600_000));
        h.set_token_expiry("c/INBOX", None);
        assert!(
            h.metrics(0)
                .contains("buzon_oauth_token_expiry_seconds 600\n")
        );
    }

    #[test]
    fn unhealthy_only_after_the_threshold() {
        let h = Health::new();
        h.set_state("soporte/INBOX", FolderState::Waiting);
        assert!(h.set_failed("finanzas/INBOX", "connection refused", 1_000));
        assert!(!h.set_failed("finanzas/INBOX", "connection refused", 2_000));
        assert_eq!(h.healthz(5_000, 10_000).0, 200);
        let (code, body) = h.healthz(20_000, 10_000);
        assert_eq!(code, 503);
        assert!(body.contains("finanzas/INBOX"));
        h.set_state("finanzas/INBOX", FolderState::Waiting);
        assert_eq!(h.healthz(30_000, 10_000).0, 200);
        let m = h.metrics(30_000);
        assert!(
            m.contains("buzon_folder_up{folder=\"finanzas/INBOX\"} 1"),
            "{m}"
        );
    }

    #[test]
    fn label_values_are_escaped_as_prometheus_requires() {
        let h = Health::new();
        h.set_state("a/Caja \"dos\"\\x\nnueva", FolderState::Waiting);
        let m = h.metrics(0);
        assert!(
            m.contains("buzon_folder_up{folder=\"a/Caja \\\"dos\\\"\\\\x\\nnueva\"} 1"),
            "{m}"
        );
        // Every sample is one line.
        assert!(
            m.lines()
                .all(|l| l.starts_with('#') || l.starts_with("buzon_")),
            "{m}"
        );
    }
}
