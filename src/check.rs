//! `buzon check`: what `buzon run` needs, checked without starting anything
//! and loaded exactly as `run` (and a reload) loads it: the rules with the
//! template names on disk now, the templates, the outbound transport (its
//! secret file read), the database (reachable, migrations), and with
//! `--connect` a login to each IMAP account and an SMTP session.
//!
//! Owns the findings and what they mean for the exit status; the command
//! line prints them. The configuration file itself is checked before this
//! runs (`Config::load` reports every problem at once).

use crate::config::Config;
use crate::outbound::deliver::{Sink, Transport};
use crate::outbound::templates::Templates;
use crate::rules::{LoadContext, RuleSet};
use crate::store::Store;

/// How a finding bears on starting the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// As it should be.
    Ok,
    /// Worth knowing; `run` starts anyway (a rule warning, migrations that
    /// `run` applies).
    Note,
    /// The server or database cannot be reached now: try again later
    /// (EX_TEMPFAIL).
    Unreachable,
    /// A mistake in the configuration, rules or templates: `run` would
    /// refuse to start (EX_CONFIG).
    Config,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Note => "note",
            Status::Unreachable => "unreachable",
            Status::Config => "problem",
        }
    }
}

/// One thing looked at and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was looked at: `rules`, `templates`, `database`, `imap
    /// soporte`, `smtp`.
    pub topic: String,
    pub status: Status,
    pub text: String,
}

impl Finding {
    fn new(topic: impl Into<String>, status: Status, text: impl Into<String>) -> Finding {
        Finding {
            topic: topic.into(),
            status,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.status.word(), self.topic, self.text)
    }
}

/// The worst status among the findings.
pub fn worst(findings: &[Finding]) -> Status {
    findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Ok)
}

/// Rules, templates and the outbound transport, as `run` loads them. No
/// I/O beyond reading the files the configuration names.
pub fn files(config: &Config) -> Vec<Finding> {
    let mut out = rules(config);
    out.extend(templates(config));
    out.push(transport(config));
    out.extend(webhooks(config));
    out
}

/// The `[[webhooks]]` endpoints: secrets readable, templates checked.
fn webhooks(config: &Config) -> Vec<Finding> {
    if config.webhooks.is_empty() {
        return Vec::new();
    }
    match crate::webhooks::Webhooks::load(config) {
        Ok(hooks) => vec![Finding::new(
            "webhooks",
            Status::Ok,
            format!(
                "{} endpoint(s): {}",
                hooks.endpoints.len(),
                hooks
                    .endpoints
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )],
        Err(errors) => errors
            .0
            .into_iter()
            .map(|p| Finding::new("webhooks", Status::Config, p))
            .collect(),
    }
}

fn rules(config: &Config) -> Vec<Finding> {
    let Some(dir) = &config.rules.dir else {
        return vec![Finding::new(
            "rules",
            Status::Ok,
            "no rules directory: every ticket gets its mailbox's defaults",
        )];
    };
    let ctx = match LoadContext::from_config(config) {
        Ok(ctx) => ctx,
        Err(e) => return vec![Finding::new("rules", Status::Config, e.to_string())],
    };
    match RuleSet::load(dir, &ctx) {
        Ok(set) => {
            let mut out = vec![Finding::new(
                "rules",
                Status::Ok,
                format!("{} rule(s) from {}", set.rule_count(), dir.display()),
            )];
            out.extend(
                set.warnings()
                    .iter()
                    .map(|w| Finding::new("rules", Status::Note, w.to_string())),
            );
            out
        }
        Err(errors) => errors
            .0
            .iter()
            .map(|e| {
                let status = if e.is_error() {
                    Status::Config
                } else {
                    Status::Note
                };
                Finding::new("rules", status, e.to_string())
            })
            .collect(),
    }
}

fn templates(config: &Config) -> Vec<Finding> {
    match Templates::load(config.templates.dir.as_deref()) {
        Ok(_) => vec![Finding::new(
            "templates",
            Status::Ok,
            match &config.templates.dir {
                Some(dir) => format!("{} over the built-in ones", dir.display()),
                None => "the built-in Spanish ones".into(),
            },
        )],
        Err(errors) => errors
            .0
            .iter()
            .map(|p| {
                Finding::new(
                    "templates",
                    Status::Config,
                    format!("{}:{}: {}", p.file, p.line, p.message),
                )
            })
            .collect(),
    }
}

fn transport(config: &Config) -> Finding {
    match Transport::from_config(config) {
        Ok(Some(t)) => Finding::new(
            "outbox",
            Status::Ok,
            format!("mail goes to {}", t.describe()),
        ),
        Ok(None) => Finding::new(
            "outbox",
            Status::Note,
            "no [smtp] and no outbox.dir: outgoing mail stays queued",
        ),
        Err(e) => Finding::new("outbox", Status::Config, e.to_string()),
    }
}

/// Whether the database can be reached, and its migrations.
pub async fn database(config: &Config) -> Finding {
    let topic = "database";
    match Store::probe(&config.database.url).await {
        // A SQLite file is on this machine: a path that cannot work is a
        // mistake in the configuration, not something to wait for.
        Err(e) if config.database.url.starts_with("sqlite:") => {
            Finding::new(topic, Status::Config, e.to_string())
        }
        Err(e) => Finding::new(topic, Status::Unreachable, e.to_string()),
        Ok(p) if !p.unknown.is_empty() => Finding::new(
            topic,
            Status::Config,
            format!(
                "migrated by a newer buzon (versions {:?} unknown here): run that version",
                p.unknown
            ),
        ),
        Ok(p) if !p.exists => Finding::new(
            topic,
            Status::Note,
            "the SQLite file does not exist yet: `buzon migrate` or the first start creates it",
        ),
        Ok(p) if p.pending > 0 => Finding::new(
            topic,
            Status::Note,
            format!(
                "reachable; {} migration(s) applied, {} to apply (`buzon migrate`, or at start)",
                p.applied, p.pending
            ),
        ),
        Ok(p) => Finding::new(
            topic,
            Status::Ok,
            format!("reachable, up to date ({} migrations)", p.applied),
        ),
    }
}

/// Logs in to every IMAP account and opens an SMTP session: what each
/// server answered.
pub async fn connect(config: &Config) -> Vec<Finding> {
    use crate::source::imap::{ImapError, try_login};
    let mut out = Vec::new();
    for (name, account) in &config.accounts {
        let topic = format!("imap {name} ({}:{})", account.host, account.username);
        out.push(match try_login(account).await {
            Ok(text) => Finding::new(topic, Status::Ok, text),
            Err(e @ (ImapError::Login { .. } | ImapError::Secret(_) | ImapError::Tls(_))) => {
                Finding::new(topic, Status::Config, e.to_string())
            }
            Err(e) => Finding::new(topic, Status::Unreachable, e.to_string()),
        });
    }
    if let Ok(Some(Transport {
        sink: Sink::Smtp(sender),
        ..
    })) = Transport::from_config(config)
    {
        use crate::outbound::smtp::SendFailure;
        out.push(match sender.try_session().await {
            Ok(text) => Finding::new("smtp", Status::Ok, text),
            // A refused login is 535 (permanent) or 454 (transient): both
            // are the credentials in the configuration.
            Err(SendFailure::Permanent(e) | SendFailure::Transient(e)) => {
                Finding::new("smtp", Status::Config, e)
            }
            Err(SendFailure::Unreachable(e)) => Finding::new("smtp", Status::Unreachable, e),
        });
    }
    out
}
