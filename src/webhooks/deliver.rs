//! Delivers webhook events: fan-out, then claim, send, mark, like the mail
//! outbox (`outbound::deliver`).
//!
//! Deliveries are claimed with a lease (a crash mid-request means the same
//! delivery, same `X-Buzon-Delivery`, is sent again when the lease runs
//! out: at most one repeat) and sent outside any transaction, several at
//! once but never two of one ticket for one endpoint (the claim holds the
//! later ones back). A 2xx is delivered; a timeout, a refused connection,
//! 408, 425, 429 or 5xx is retried on the endpoint's schedule until its
//! maximum age; 410 too, and it marks the endpoint failing in `/healthz`
//! (buzon never disables an endpoint by itself); any other answer gives up
//! at once. What gave up stays listed (`buzon webhooks list --failed`)
//! until retried by hand (`buzon webhooks retry ID`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::StreamExt;

use super::{Loaded, Webhooks, body, sign};
use crate::health::Health;
use crate::outbound::deliver::next_attempt;
use crate::store::{HookJob, Store, StoreError};

/// Events read per fan-out transaction.
const BATCH: i64 = 200;

/// Requests in flight at once, and deliveries claimed per round: a round
/// takes at most one timeout, well within the lease.
const PARALLEL: usize = 8;

/// Longest answer kept as the last error (the start of the receiver's body).
const ERROR_BODY_CHARS: usize = 200;

/// What one drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HookReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Why the HTTP client cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot set up TLS for webhooks: {0}")]
    Tls(#[from] crate::source::tls::TlsError),
    #[error("cannot set up the HTTP client for webhooks: {0}")]
    Client(String),
}

/// The endpoints and one HTTP client for all of them.
#[derive(Debug, Clone)]
pub struct Deliverer {
    hooks: Webhooks,
    client: reqwest::Client,
}

/// How one attempt ended.
enum Outcome {
    Delivered,
    /// Try again later; `gone` for a 410.
    Retry {
        error: String,
        gone: bool,
    },
    /// Connecting failed or timed out: the rest of this endpoint's
    /// deliveries in this round are not tried.
    Unreachable(String),
    GiveUp(String),
}

/// Turns the new events into deliveries for the endpoints that want them;
/// with no endpoint (no `[[webhooks]]`), drops them.
pub async fn fan_out(store: &Store, hooks: &Webhooks, now: i64) -> Result<(), StoreError> {
    let wants = |e: &crate::ticket::HookEvent| hooks.endpoints_for(e);
    while store.hook_fan_out(now, BATCH, &wants).await? == BATCH as usize {}
    Ok(())
}

impl Deliverer {
    pub fn new(hooks: Webhooks) -> Result<Deliverer, SetupError> {
        let tls = crate::source::tls::client_config(None)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // A redirect is followed only on the same host (a receiver
                // moving its path); never to another host, which would get
                // the customers' data and a valid signature.
                let same = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.host_str() == attempt.url().host_str());
                if same && attempt.previous().len() < 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }))
            .user_agent(concat!("buzon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Client(e.without_url().to_string()))?;
        Ok(Deliverer { hooks, client })
    }

    pub fn webhooks(&self) -> &Webhooks {
        &self.hooks
    }

    /// Fans out the new events, then sends every delivery due at `now`
    /// once. Store errors abort (claimed deliveries are retried when their
    /// lease runs out).
    pub async fn drain(
        &self,
        store: &Store,
        holder: &str,
        now: i64,
        health: Option<&Health>,
    ) -> Result<HookReport, StoreError> {
        let hooks = &self.hooks;
        fan_out(store, hooks, now).await?;
        let lease_ms = hooks
            .endpoints
            .iter()
            .map(|e| e.retry.lease_ms)
            .max()
            .unwrap_or(120_000);
        let mut report = HookReport::default();
        let down: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
        loop {
            let jobs = store
                .hook_claim(now, now + lease_ms, PARALLEL as i64, holder)
                .await?;
            if jobs.is_empty() {
                return Ok(report);
            }
            let down = &down;
            let results: Vec<(HookJob, Outcome)> = futures::stream::iter(jobs)
                .map(|job| async move {
                    let outcome = match hooks.get(&job.delivery.endpoint) {
                        None => Outcome::GiveUp(format!(
                            "no endpoint named '{}' in [[webhooks]] any more",
                            job.delivery.endpoint
                        )),
                        Some(endpoint) => {
                            let skipped = down
                                .lock()
                                .ok()
                                .and_then(|d| d.get(&endpoint.name).cloned());
                            match skipped {
                                Some(error) => Outcome::Retry {
                                    error: format!("{error} (not tried again in this round)"),
                                    gone: false,
                                },
                                None => self.send(endpoint, &job).await,
                            }
                        }
                    };
                    if let Outcome::Unreachable(error) = &outcome
                        && let Ok(mut d) = down.lock()
                    {
                        d.entry(job.delivery.endpoint.clone())
                            .or_insert_with(|| error.clone());
                    }
                    (job, outcome)
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
            let mut sent = Vec::new();
            for (job, outcome) in results {
                let d = &job.delivery;
                let span = tracing::info_span!("webhook", id = d.id, endpoint = %d.endpoint, event = %d.kind, ticket = d.ticket);
                let retry = hooks.get(&d.endpoint).map(|e| &e.retry);
                let (error, gone) = match outcome {
                    Outcome::Delivered => {
                        tracing::info!(parent: &span, "Webhook delivered.");
                        if let Some(h) = health {
                            h.webhook_ok(&d.endpoint);
                        }
                        sent.push(d.id);
                        continue;
                    }
                    Outcome::GiveUp(error) => {
                        store.hook_failed(d.id, &error, None).await?;
                        tracing::error!(parent: &span, %error, "Webhook refused; giving up (buzon webhooks retry).");
                        if let Some(h) = health {
                            h.webhook_failed(&d.endpoint, &error, false, now);
                        }
                        report.failed += 1;
                        continue;
                    }
                    Outcome::Retry { error, gone } => (error, gone),
                    Outcome::Unreachable(error) => (error, false),
                };
                let since = d.requeued_at.unwrap_or(d.created_at).max(d.created_at);
                let next = retry.and_then(|r| next_attempt(since, d.attempts, now, r));
                store.hook_failed(d.id, &error, next).await?;
                if let Some(h) = health {
                    h.webhook_failed(&d.endpoint, &error, gone, now);
                }
                if next.is_some() {
                    tracing::warn!(parent: &span, %error, attempts = d.attempts, "Webhook failed; will retry.");
                    report.retrying += 1;
                } else {
                    tracing::error!(parent: &span, %error, attempts = d.attempts, "Webhook failed past the maximum age; giving up.");
                    report.failed += 1;
                }
            }
            store.hook_sent(&sent, crate::store::now_ms()).await?;
            report.sent += sent.len();
        }
    }

    async fn send(&self, endpoint: &Loaded, job: &HookJob) -> Outcome {
        let mut event = job.event.clone();
        event.ticket.number = crate::ticket::display_number(&self.hooks.prefix, event.ticket.id);
        event.ticket.url = self
            .hooks
            .public_url
            .as_ref()
            .map(|base| format!("{base}/tickets/{}", event.ticket.id));
        let ctx = body::context(&job.delivery.delivery_id, &event, &self.hooks.team);
        let payload = match &endpoint.body {
            Some(t) => match t.render(&ctx, endpoint.token()) {
                Ok(b) => b,
                Err(e) => return Outcome::GiveUp(format!("{}: {e}", t.file)),
            },
            None => body::default_body(&ctx),
        };
        let t = jiff::Timestamp::now().as_second();
        let request = self
            .client
            .post(endpoint.url.clone())
            .timeout(std::time::Duration::from_millis(
                u64::try_from(endpoint.timeout_ms).unwrap_or(10_000),
            ))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Buzon-Delivery", &job.delivery.delivery_id)
            .header("X-Buzon-Event", job.event.kind.as_str())
            .header(
                "X-Buzon-Signature",
                sign::signature(endpoint.secret(), t, payload.as_bytes()),
            )
            .body(payload);
        // The URL may hold a token (Slack's do): errors never show it.
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() || e.is_timeout() => {
                return Outcome::Unreachable(e.without_url().to_string());
            }
            Err(e) => {
                return Outcome::Retry {
                    error: e.without_url().to_string(),
                    gone: false,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        let answer: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(ERROR_BODY_CHARS)
            .collect();
        let error = format!("HTTP {status}: {}", answer.trim());
        match status.as_u16() {
            410 => Outcome::Retry { error, gone: true },
            408 | 425 | 429 | 500..=599 => Outcome::Retry { error, gone: false },
            300..=399 => Outcome::GiveUp(format!(
                "{error} (a redirect to another host is not followed: write the final address in url)"
            )),
            _ => Outcome::GiveUp(error),
        }
    }
}
