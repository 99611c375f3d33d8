//! Webhooks: telling other systems (HubSpot, Odoo, Slack ...) what happens
//! to tickets, reliably.
//!
//! Every change records its event in its own transaction (the store does,
//! in `store/sql/webhooks.rs`: `ticket.created`, `ticket.updated` with what
//! changed, `ticket.closed`, `message.received`, `message.sent`,
//! `deadline.missed`). The daemon fans each event out into one delivery
//! per `[[webhooks]]` endpoint whose `events` and filters match
//! ([`Webhooks::endpoints_for`]), then delivers them like the mail outbox
//! (`deliver.rs`): a lease, retries with backoff up to a maximum age, in
//! order per ticket and endpoint, each request signed (`sign.rs`) with a
//! body that is the documented JSON or the endpoint's template
//! (`body.rs`).
//!
//! This file: the `[[webhooks]]` configuration, its validation (with the
//! rest of the configuration, each problem naming its key) and
//! [`Webhooks::load`], which reads the secrets and checks the templates
//! (`buzon check` and `buzon run` refuse a template with an error, with
//! `file:line`).

pub mod body;
pub mod deliver;
pub mod sign;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{Config, DurationList, parse_duration_ms};
use crate::ticket::{HookEvent, HookKind};

pub use body::{BodyTemplate, TemplateProblem};

/// The keys of a `[[webhooks]]` entry (for typo hints).
pub const KEYS: &[&str] = &[
    "name",
    "url",
    "events",
    "pipelines",
    "types",
    "mailboxes",
    "secret_file",
    "secret_env",
    "template",
    "token_file",
    "token_env",
    "timeout",
    "retry_schedule",
    "max_age",
];

/// One `[[webhooks]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoint {
    /// How buzon names it (queue, `buzon webhooks list`, `/healthz`);
    /// deliveries are kept under it, so it stays when the URL changes.
    pub name: String,
    pub url: String,
    /// `ticket.created`, `ticket.updated`, `ticket.closed`,
    /// `message.received`, `message.sent`, `deadline.missed`.
    pub events: Vec<String>,
    /// Only tickets of these pipelines (empty: all).
    #[serde(default)]
    pub pipelines: Vec<String>,
    /// Only tickets of these types (empty: all).
    #[serde(default)]
    pub types: Vec<String>,
    /// Only tickets that arrived in these mailboxes (empty: all).
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// The signing secret is read from this file (trailing newline
    /// ignored)...
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// ...or from this environment variable. Never written in this file.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A body template (minijinja, values JSON-escaped); unset: the
    /// documented JSON.
    #[serde(default)]
    pub template: Option<PathBuf>,
    /// A credential the receiver wants inside the body (Odoo's API key in
    /// a JSON-RPC call), for the template as `{{ token }}`: read from this
    /// file...
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// ...or this environment variable. Never in the default body.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Limit for the whole request.
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// Delays before the 2nd, 3rd ... attempt; the last one repeats.
    #[serde(default = "default_schedule")]
    pub retry_schedule: DurationList,
    /// A delivery still failing this long after its event is given up
    /// (listed by `buzon webhooks list --failed`).
    #[serde(default = "default_max_age")]
    pub max_age: String,
}

fn default_timeout() -> String {
    "10s".into()
}

fn default_schedule() -> DurationList {
    DurationList(
        ["10s", "1m", "5m", "15m", "30m", "1h"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
}

fn default_max_age() -> String {
    "3d".into()
}

/// Relative paths in the file are relative to the file.
pub(crate) fn resolve_paths(endpoints: &mut [Endpoint], base: &Path) {
    for e in endpoints {
        e.secret_file = e
            .secret_file
            .as_ref()
            .map(|p| crate::config::resolve(base, p));
        e.template = e.template.as_ref().map(|p| crate::config::resolve(base, p));
        e.token_file = e
            .token_file
            .as_ref()
            .map(|p| crate::config::resolve(base, p));
    }
}

/// Every problem of the `[[webhooks]]` entries, each with its key.
pub(crate) fn validate(config: &Config, add: &mut dyn FnMut(&str, String)) {
    let mut names = BTreeSet::new();
    let kinds: Vec<&str> = HookKind::ALL.iter().map(|k| k.as_str()).collect();
    for (i, e) in config.webhooks.iter().enumerate() {
        let key = |k: &str| format!("webhooks[{i}].{k}");
        if e.name.trim().is_empty() {
            add(
                &key("name"),
                "empty: write a short name such as \"hubspot\"".into(),
            );
        } else if !names.insert(e.name.as_str()) {
            add(
                &key("name"),
                format!("'{}' names two endpoints: give each its own name", e.name),
            );
        }
        if let Err(why) = check_url(&e.url) {
            add(&key("url"), why);
        }
        if e.events.is_empty() {
            add(
                &key("events"),
                format!("empty: list what to send, from {}", kinds.join(", ")),
            );
        }
        for event in &e.events {
            if event.parse::<HookKind>().is_err() {
                let hint = crate::config::closest(event, &kinds)
                    .map(|c| format!("did you mean \"{c}\"? "))
                    .unwrap_or_default();
                add(
                    &key("events"),
                    format!(
                        "unknown event '{event}': {hint}the events are {}",
                        kinds.join(", ")
                    ),
                );
            }
        }
        for mailbox in &e.mailboxes {
            if !config.mailboxes.contains_key(mailbox) {
                add(
                    &key("mailboxes"),
                    format!(
                        "unknown mailbox '{mailbox}': define [mailboxes.{mailbox}] or remove it"
                    ),
                );
            }
        }
        match (&e.secret_file, &e.secret_env) {
            (Some(path), None) => {
                if let Err(why) = crate::config::check_readable(path) {
                    add(&key("secret_file"), why);
                }
            }
            (None, Some(_)) => {}
            _ => add(
                &key("secret_file"),
                "give exactly one of secret_file or secret_env: the secret that signs each request (never written in this file)".into(),
            ),
        }
        if e.token_file.is_some() && e.token_env.is_some() {
            add(
                &key("token_file"),
                "give at most one of token_file or token_env".into(),
            );
        }
        if let Some(path) = &e.token_file
            && let Err(why) = crate::config::check_readable(path)
        {
            add(&key("token_file"), why);
        }
        if (e.token_file.is_some() || e.token_env.is_some()) && e.template.is_none() {
            add(
                &key("token_file"),
                "a token goes into the body through a template: add template = \"FILE\" using {{ token }}".into(),
            );
        }
        match parse_duration_ms(&e.timeout) {
            Ok(ms) if !(1000..=60_000).contains(&ms) => add(
                &key("timeout"),
                format!(
                    "'{}': write from \"1s\" to \"60s\" (default \"10s\")",
                    e.timeout
                ),
            ),
            Ok(_) => {}
            Err(why) => add(&key("timeout"), why),
        }
        if e.retry_schedule.0.is_empty() {
            add(
                &key("retry_schedule"),
                "empty: write e.g. [\"10s\", \"1m\", \"5m\", \"15m\", \"30m\", \"1h\"]".into(),
            );
        }
        for step in &e.retry_schedule.0 {
            match parse_duration_ms(step) {
                Ok(ms) if ms < 1000 => add(
                    &key("retry_schedule"),
                    format!("'{step}' is shorter than a second: write at least \"1s\""),
                ),
                Ok(_) => {}
                Err(why) => add(&key("retry_schedule"), why),
            }
        }
        if let Err(why) = parse_duration_ms(&e.max_age) {
            add(&key("max_age"), why);
        }
    }
}

/// `https://` anywhere; `http://` only to this machine (what the body
/// carries is the customers' data).
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("'{url}' is not a web address ({e}): write \"https://...\""))?;
    let host = parsed.host_str().unwrap_or_default();
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if crate::config::is_loopback(host.trim_matches(['[', ']'])) => Ok(()),
        "http" => Err(format!(
            "'{url}' sends the customers' data in clear text; plain http is allowed only to this machine (127.0.0.1): write https://"
        )),
        _ => Err(format!(
            "'{url}' is not a web address: write \"https://...\""
        )),
    }
}

/// An endpoint ready to deliver to: its events, filters, secret and body.
#[derive(Clone)]
pub struct Loaded {
    pub name: String,
    pub url: reqwest::Url,
    pub events: BTreeSet<HookKind>,
    pub pipelines: Vec<String>,
    pub types: Vec<String>,
    pub mailboxes: Vec<String>,
    secret: Vec<u8>,
    /// `{{ token }}` in the template.
    token: String,
    pub body: Option<BodyTemplate>,
    pub timeout_ms: i64,
    pub retry: crate::outbound::deliver::RetryPolicy,
}

impl std::fmt::Debug for Loaded {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl Loaded {
    /// Whether this endpoint wants `event`.
    pub fn wants(&self, event: &HookEvent) -> bool {
        let t = &event.ticket;
        self.events.contains(&event.kind)
            && (self.pipelines.is_empty() || self.pipelines.contains(&t.pipeline))
            && (self.mailboxes.is_empty() || self.mailboxes.contains(&t.mailbox))
            && (self.types.is_empty()
                || t.ticket_type
                    .as_ref()
                    .is_some_and(|ty| self.types.contains(ty)))
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    pub fn token(&self) -> &str {
        &self.token
    }
}

/// Every endpoint of the configuration, loaded.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    pub endpoints: Vec<Loaded>,
    /// `deployment.ticket_prefix`, for `ticket.number`.
    pub prefix: String,
    /// `deployment.name`, for templates (`team`).
    pub team: String,
    /// `web.public_url`, for `ticket.url`.
    pub public_url: Option<String>,
}

/// Why the endpoints cannot be loaded: every problem, each with the key
/// or the template's `file:line`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookErrors(pub Vec<String>);

impl std::fmt::Display for WebhookErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} problem(s) in the webhooks", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WebhookErrors {}

impl Webhooks {
    /// Reads each endpoint's secret and checks its template against the
    /// events it subscribes to.
    pub fn load(config: &Config) -> Result<Webhooks, WebhookErrors> {
        Self::load_with_env(config, &|k| std::env::var(k).ok())
    }

    /// As `load`, with environment lookups injected (tests).
    pub fn load_with_env(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Webhooks, WebhookErrors> {
        let mut problems = Vec::new();
        let mut endpoints = Vec::new();
        for (i, e) in config.webhooks.iter().enumerate() {
            let key = |k: &str| format!("webhooks[{i}].{k}");
            let secret = match (&e.secret_file, &e.secret_env) {
                (Some(path), _) => match std::fs::read_to_string(path) {
                    Ok(s) => Some(s.trim_end_matches(['\n', '\r']).to_string()),
                    Err(why) => {
                        problems.push(format!(
                            "{}: {} cannot be read: {why}",
                            key("secret_file"),
                            path.display()
                        ));
                        None
                    }
                },
                (None, Some(var)) => match env(var) {
                    Some(s) if !s.is_empty() => Some(s),
                    _ => {
                        problems.push(format!(
                            "{}: the environment variable {var} is not set (it holds the signing secret)",
                            key("secret_env")
                        ));
                        None
                    }
                },
                (None, None) => None,
            };
            let token = match (&e.token_file, &e.token_env) {
                (Some(path), _) => match std::fs::read_to_string(path) {
                    Ok(s) => s.trim_end_matches(['\n', '\r']).to_string(),
                    Err(why) => {
                        problems.push(format!(
                            "{}: {} cannot be read: {why}",
                            key("token_file"),
                            path.display()
                        ));
                        String::new()
                    }
                },
                (None, Some(var)) => env(var).unwrap_or_else(|| {
                    problems.push(format!(
                        "{}: the environment variable {var} is not set",
                        key("token_env")
                    ));
                    String::new()
                }),
                (None, None) => String::new(),
            };
            if secret.as_deref() == Some("") {
                problems.push(format!("{}: the secret is empty", key("secret_file")));
            }
            let events: BTreeSet<HookKind> =
                e.events.iter().filter_map(|k| k.parse().ok()).collect();
            let body = match &e.template {
                Some(path) => match BodyTemplate::load(path, &events) {
                    Ok(t) => Some(t),
                    Err(errors) => {
                        problems.extend(errors.into_iter().map(|p| p.to_string()));
                        None
                    }
                },
                None => None,
            };
            let Ok(url) = reqwest::Url::parse(&e.url) else {
                problems.push(format!("{}: '{}' is not a web address", key("url"), e.url));
                continue;
            };
            let schedule_ms: Vec<i64> = e
                .retry_schedule
                .0
                .iter()
                .filter_map(|s| parse_duration_ms(s).ok())
                .collect();
            let timeout_ms = parse_duration_ms(&e.timeout).unwrap_or(10_000);
            endpoints.push(Loaded {
                name: e.name.clone(),
                url,
                events,
                pipelines: e.pipelines.clone(),
                types: e.types.clone(),
                mailboxes: e.mailboxes.clone(),
                secret: secret.unwrap_or_default().into_bytes(),
                token,
                body,
                timeout_ms,
                retry: crate::outbound::deliver::RetryPolicy {
                    schedule_ms,
                    max_age_ms: parse_duration_ms(&e.max_age).unwrap_or(3 * 86_400_000),
                    // A claim is one round of requests sent at once, each
                    // within the timeout: twice that, and a margin for
                    // marking them, before another worker may try again.
                    lease_ms: timeout_ms * 2 + 5_000,
                },
            });
        }
        if problems.is_empty() {
            Ok(Webhooks {
                endpoints,
                prefix: config.deployment.ticket_prefix.clone(),
                team: config.deployment.name.clone(),
                public_url: config
                    .web
                    .public_url
                    .as_ref()
                    .map(|u| u.trim().trim_end_matches('/').to_string()),
            })
        } else {
            Err(WebhookErrors(problems))
        }
    }

    /// The names of the endpoints that want `event` (the fan-out).
    pub fn endpoints_for(&self, event: &HookEvent) -> Vec<String> {
        self.endpoints
            .iter()
            .filter(|e| e.wants(event))
            .map(|e| e.name.clone())
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&Loaded> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}
