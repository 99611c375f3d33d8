//! Typed configuration: one TOML file plus `BUZON_*` environment overrides.
//!
//! Owns loading, path resolution and validation. Every problem found is
//! collected and reported at once, each naming its key, so an admin fixes a
//! file in one pass instead of one error per restart. Unknown keys are errors
//! (a misspelt key silently ignored is a routing bug waiting to happen).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::ticket::Priority;

/// Default location of the configuration file on a server.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/buzon/buzon.toml";

/// The default `limits.max_message_bytes`: 50 MiB of encoded mail.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 50 * 1024 * 1024;

/// Environment variables that are not `SECTION__KEY` overrides.
const SHORTHAND_VARS: &[&str] = &["BUZON_CONFIG", "BUZON_DATABASE_URL", "BUZON_OUTBOX_DIR"];

/// Everything buzon needs to run, after validation.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from (relative paths in it are resolved
    /// against its directory).
    pub source: Option<PathBuf>,
    pub deployment: Deployment,
    pub database: Database,
    pub limits: Limits,
    pub outbox: Outbox,
    /// Where outgoing mail is submitted; unset (and no `outbox.dir`): the
    /// outbox only queues.
    pub smtp: Option<Smtp>,
    /// People who own tickets, by the name mailboxes and rules use.
    pub people: BTreeMap<String, Person>,
    pub rules: Rules,
    pub templates: Templates,
    pub daemon: Daemon,
    /// The agents' web workspace.
    pub web: Web,
    /// What vouches for staff mail (agents answering by mail).
    pub security: Security,
    /// Deadlines: how often they are checked, who hears about missed ones.
    pub deadlines: DeadlinePolicy,
    /// IMAP accounts by name, each with the folders to watch.
    pub accounts: BTreeMap<String, Account>,
    /// Mailbox name → its settings. Names are what the rules and the CLI use.
    pub mailboxes: BTreeMap<String, Mailbox>,
    /// `[[webhooks]]`: the endpoints told what happens to tickets.
    pub webhooks: Vec<crate::webhooks::Endpoint>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Deployment {
    /// The team's name, used in acknowledgements ("Equipo de Soporte").
    pub name: String,
    /// IANA time zone for dates shown to people and business hours, as
    /// written (`America/Santiago`); `zone` is the same, parsed.
    pub time_zone: String,
    /// `time_zone` parsed once, when the configuration loads (an unknown
    /// name is a problem of `deployment.time_zone`). Every user of the zone
    /// takes it from here.
    #[serde(skip)]
    pub zone: jiff::tz::TimeZone,
    /// Prefix of the human ticket number: `T-` gives `T-1042`.
    pub ticket_prefix: String,
    /// Our own domains: mail from them is staff mail and is never acknowledged.
    pub our_domains: Vec<String>,
    /// A customer's reply within this many days of closing reopens the
    /// ticket; later, it opens a new ticket linked to the old one.
    pub reopen_days: u32,
    /// Thread by extracted key (order number) across everyone at the
    /// requester's domain, not only the requester's own address.
    pub thread_keys_by_domain: bool,
}

impl Default for Deployment {
    fn default() -> Self {
        let time_zone = "America/Santiago";
        Self {
            name: "Soporte".into(),
            time_zone: time_zone.into(),
            // `Config::load` parses the zone written in the file and reports
            // a bad one; only a configuration built in code (the demo,
            // tests) on a system without the time zone database gets UTC.
            zone: jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC),
            ticket_prefix: "T-".into(),
            our_domains: Vec::new(),
            reopen_days: 7,
            thread_keys_by_domain: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Database {
    /// `sqlite:PATH` (default) or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: "sqlite:/var/lib/buzon/buzon.db".into(),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Larger mail is quarantined (headers kept) instead of ticketed.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Microsoft 365 delivers up to ~35 MB and Gmail ~34 MB of
            // encoded mail (25 MB of attachments, base64): 50 MiB takes
            // both with room for headers (see the README, "Limits").
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Outbox {
    /// When set, outgoing mail is written as `.eml` files here instead of
    /// being sent (`BUZON_OUTBOX_DIR`).
    pub dir: Option<PathBuf>,
    /// Delays before the 2nd, 3rd, ... attempt after a transient failure
    /// (`"2m"`, `"1h"`); the last one repeats. A list, or one string with
    /// commas (so that `BUZON_OUTBOX__RETRY_SCHEDULE="1m,5m"` works too).
    pub retry_schedule: DurationList,
    /// A mail still undelivered this long after it was queued is marked
    /// failed with its last error.
    pub max_age: String,
    /// How long a worker may hold a claimed row before another worker may
    /// retry it (after a crash). Longer than the SMTP timeout.
    pub lease: String,
    /// At most this many automatic mails (acknowledgements, notifications,
    /// closing messages) to one address per hour: the backstop that stops
    /// a loop with a robot our classification did not recognise.
    pub auto_reply_limit_per_hour: u32,
    /// The same backstop for notifications to staff (owners, a rule's
    /// `notify`), higher because a busy owner legitimately gets many.
    pub notification_limit_per_hour: u32,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            dir: None,
            retry_schedule: DurationList(
                ["2m", "5m", "10m", "15m", "30m", "1h", "2h"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            max_age: "3d".into(),
            lease: "2m".into(),
            auto_reply_limit_per_hour: 5,
            notification_limit_per_hour: 60,
        }
    }
}

impl Outbox {
    /// The retry delays in milliseconds (validated at load).
    pub fn retry_schedule_ms(&self) -> Vec<i64> {
        self.retry_schedule
            .0
            .iter()
            .filter_map(|s| parse_duration_ms(s).ok())
            .collect()
    }

    /// The maximum age in milliseconds (validated at load).
    pub fn max_age_ms(&self) -> i64 {
        parse_duration_ms(&self.max_age).unwrap_or(3 * 86_400_000)
    }

    /// The claim lease in milliseconds (validated at load).
    pub fn lease_ms(&self) -> i64 {
        parse_duration_ms(&self.lease).unwrap_or(120_000)
    }
}

/// A list of durations written as a TOML array or as one comma-separated
/// string (environment variables can only carry strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationList(pub Vec<String>);

impl<'de> Deserialize<'de> for DurationList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            List(Vec<String>),
            Text(String),
        }
        Ok(DurationList(match Form::deserialize(d)? {
            Form::List(list) => list,
            Form::Text(text) => text
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }))
    }
}

/// `"90s"`, `"2m"`, `"1h"`, `"3d"` (or a bare number of seconds) → milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: i64 = number.parse().map_err(|_| {
        format!("'{text}' is not a duration: write e.g. \"30s\", \"2m\", \"1h\" or \"3d\"")
    })?;
    let unit_ms = match unit.trim() {
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}': write s, m, h or d (\"2m\", \"1h\")"
            ));
        }
    };
    n.checked_mul(unit_ms)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// Transport security of the SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// No encryption: a relay on this machine or a trusted network, and
    /// never with a password unless the relay is on this machine.
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Implicit => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        }
    }
}

/// The SMTP server outgoing mail is submitted to.
#[derive(Debug, Clone, Deserialize)]
pub struct Smtp {
    pub host: String,
    /// Default from `tls`: 465, 587 or 25.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    /// Log in with AUTH PLAIN or LOGIN; unset: no authentication (a relay
    /// that trusts this machine).
    #[serde(default)]
    pub username: Option<String>,
    /// The password is read from this file (trailing newline ignored)...
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// ...or from this environment variable. Never written in this file.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Extra CA certificate (PEM) to trust, for a server with its own CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Connections kept open and reused.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Limit for connecting and for each SMTP command.
    #[serde(default = "default_smtp_timeout")]
    pub timeout: String,
}

fn default_pool_size() -> u32 {
    4
}

fn default_smtp_timeout() -> String {
    "30s".into()
}

impl Smtp {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }

    pub fn timeout_ms(&self) -> i64 {
        parse_duration_ms(&self.timeout).unwrap_or(30_000)
    }
}

/// Someone who works tickets (`owner = "camila"` in a mailbox or a rule,
/// `--as camila` on the command line).
#[derive(Debug, Clone, Deserialize)]
pub struct Person {
    /// What they may do (seed 001's "cargo"): an admin everything on every
    /// ticket; an agent everything on their own tickets and only read,
    /// comment and mail on the others'.
    #[serde(default)]
    pub role: Role,
    /// The pipelines an agent works ("los proyectos asociados a su
    /// perfil"): where they may open tickets by hand and take unowned
    /// ones. Empty: every pipeline.
    #[serde(default)]
    pub pipelines: Vec<String>,
    /// Where notifications about their tickets go; unset: none are sent,
    /// and the ticket's history says so.
    #[serde(default)]
    pub address: Option<String>,
    /// Display name on notifications.
    #[serde(default)]
    pub name: Option<String>,
    /// Tell them when a ticket becomes theirs and when its customer answers.
    #[serde(default = "yes")]
    pub notify: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Rules {
    /// Directory of rule files (`*.toml`, loaded in name order). Unset: no
    /// rules, every ticket gets its mailbox's defaults.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Templates {
    /// Directory of mail templates (`NAME.txt`); unset: built-in Spanish ones.
    pub dir: Option<PathBuf>,
}

/// What vouches for mail that claims to come from the team.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Security {
    /// The authserv-id of the receiving server whose
    /// `Authentication-Results` header buzon trusts (`mx.example.cl`): an
    /// agent's reply by mail then also needs its `dmarc=pass` (or an aligned
    /// `dkim=pass`). Unset: the signed notification and the From address
    /// must do.
    pub trusted_authserv_id: Option<String>,
}

/// The agents' web workspace, served by `buzon run`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Web {
    /// `host:port` to serve it on; empty: no web workspace. Put it behind
    /// a reverse proxy for TLS (see the README).
    pub listen: String,
    /// The address people use (`https://soporte.example.cl`): links in
    /// mail, and `Secure` cookies when it is https.
    pub public_url: Option<String>,
    /// How long a session lasts after signing in.
    pub session_hours: u64,
}

impl Default for Web {
    fn default() -> Self {
        Self {
            listen: String::new(),
            public_url: None,
            session_hours: 12,
        }
    }
}

impl Web {
    /// Whether people reach it over https (cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.trim().to_ascii_lowercase().starts_with("https://"))
    }
}

/// How the daemon runs: health endpoint, leases between instances.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Daemon {
    /// `host:port` of the `/healthz` and `/metrics` endpoint; empty: off.
    pub listen: String,
    /// This instance's name in folder leases (default: the host name and a
    /// hash of the machine id and the configuration file; see `instance`).
    pub instance: Option<String>,
    /// How long a folder lease lasts without renewal; another instance takes
    /// the folder over this long after its holder died.
    pub lease_seconds: u64,
    /// `/healthz` answers 503 when a folder has failed for longer than this.
    pub unhealthy_after_seconds: u64,
    /// How often the outbox is checked when nothing wakes it.
    pub outbox_poll_seconds: u64,
    /// How long delivered webhook events and deliveries are kept (for
    /// `webhooks list` and to answer "did they get it?"); the daemon deletes
    /// older ones. Given-up and waiting ones are always kept.
    pub webhooks_retention: String,
}

impl Default for Daemon {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9187".into(),
            instance: None,
            lease_seconds: 30,
            unhealthy_after_seconds: 300,
            outbox_poll_seconds: 5,
            webhooks_retention: "30d".into(),
        }
    }
}

impl Daemon {
    /// `webhooks_retention` in milliseconds (validated at load).
    pub fn webhooks_retention_ms(&self) -> i64 {
        parse_duration_ms(&self.webhooks_retention).unwrap_or(30 * 86_400_000)
    }
}

/// Deadlines (`[deadlines]`): the targets themselves come from the rules
/// (`sla_hours`, `first_response_hours`); this says how they are watched.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DeadlinePolicy {
    /// How often the daemon looks for missed deadlines.
    pub check_seconds: u64,
    /// Waiting on the contact stops the clocks; they run again, with what
    /// was left, when the contact answers.
    pub pause_while_waiting: bool,
    /// What meets the first-response target.
    pub first_response_met_by: Vec<Response>,
    /// Mail the owner when one of their tickets misses a deadline.
    pub alert_owner: bool,
    /// Addresses that get a mail for every missed deadline.
    pub escalation: Vec<String>,
    /// Per pipeline, instead of `escalation`.
    pub escalation_by_pipeline: BTreeMap<String, Vec<String>>,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        Self {
            check_seconds: 60,
            pause_while_waiting: true,
            first_response_met_by: vec![Response::Reply, Response::Update, Response::Request],
            alert_owner: true,
            escalation: Vec::new(),
            escalation_by_pipeline: BTreeMap::new(),
        }
    }
}

impl DeadlinePolicy {
    /// Who gets the escalation mail for a ticket of `pipeline`.
    pub fn escalation_for(&self, pipeline: &str) -> &[String] {
        self.escalation_by_pipeline
            .get(pipeline)
            .unwrap_or(&self.escalation)
    }

    pub fn meets_first_response(&self, what: Response) -> bool {
        self.first_response_met_by.contains(&what)
    }
}

/// Staff actions that answer the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// `tickets reply`.
    Reply,
    /// `tickets update` (a "novedad").
    Update,
    /// `tickets request` (documents asked of the client).
    Request,
    /// `tickets state N open`: the request is being executed (seed 001's
    /// "ejecutar").
    Open,
}

/// Transport security of an IMAP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    #[default]
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    Starttls,
    /// No encryption: only for a server on this machine.
    None,
}

/// How to authenticate to the IMAP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImapAuth {
    /// LOGIN command (or AUTHENTICATE PLAIN when `plain`).
    #[default]
    Login,
    Plain,
    /// OAuth 2 bearer token (Microsoft 365, Google).
    Xoauth2,
}

/// A person's role (seed 001: "Usuario con cargo tipo Administrador",
/// "Posventa-Ejecutor").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    #[default]
    Agent,
}

impl Role {
    /// The word people read ("administrador", "agente").
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "administrador",
            Role::Agent => "agente",
        }
    }
}

/// What to do with a mail in the server's folder once it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disposition {
    /// Mark it `\Seen`.
    #[default]
    Seen,
    /// Move it to `move_to`.
    Move,
    /// Leave it as it is (buzon remembers the last UID it stored).
    Leave,
}

/// Reads a setting's enum from its lowercase name; anything else is an
/// error that lists what may be written (serde's own message names the
/// Rust type, which means nothing to an admin).
macro_rules! named_values {
    ($ty:ident { $($variant:ident = $name:literal),+ $(,)? }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                match text.trim().to_ascii_lowercase().as_str() {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(serde::de::Error::custom(format!(
                        "unknown value '{text}': write one of {}",
                        [$(concat!("\"", $name, "\"")),+].join(", ")
                    ))),
                }
            }
        }
    };
}

named_values!(SmtpTls { Implicit = "implicit", Starttls = "starttls", None = "none" });
named_values!(ImapTls { Implicit = "implicit", Starttls = "starttls", None = "none" });
named_values!(ImapAuth { Login = "login", Plain = "plain", Xoauth2 = "xoauth2" });
named_values!(Disposition { Seen = "seen", Move = "move", Leave = "leave" });
named_values!(Role { Admin = "admin", Agent = "agent" });
named_values!(Response { Reply = "reply", Update = "update", Request = "request", Open = "open" });

/// One IMAP account with the folders buzon watches in it.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: ImapTls,
    /// Extra CA certificate (PEM) to trust, for a server with its own CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub username: String,
    #[serde(default)]
    pub auth: ImapAuth,
    /// The password (or OAuth token) is read from this file...
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// ...or from this environment variable...
    #[serde(default)]
    pub password_env: Option<String>,
    /// ...or, for XOAUTH2, printed by this command (run at each login).
    #[serde(default)]
    pub token_command: Option<String>,
    /// Use IDLE when the server offers it.
    #[serde(default = "yes")]
    pub idle: bool,
    /// Seconds between checks when IDLE is off or not offered.
    #[serde(default = "default_poll")]
    pub poll_seconds: u64,
    /// Mails fetched per round trip.
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// ...and at most this many bytes of them (at least one mail): a
    /// batch's memory is a few times its bytes.
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: u64,
    pub folders: Vec<Folder>,
}

fn default_poll() -> u64 {
    60
}

fn default_batch() -> u32 {
    200
}

fn default_batch_bytes() -> u64 {
    DEFAULT_BATCH_BYTES
}

/// The default `batch_bytes` of an account: 1 MiB. Draining mail with
/// 300 KB PDFs took a peak of 900 MB to 1 GB with batches of 200 mails,
/// 79–87 MB with 4 MiB and 35–39 MB with 1 MiB (`BENCH_MIX=attachments
/// bash benches/imap_drain.sh 1000`); small mail is unaffected (200 of
/// them are under 1 MiB).
pub const DEFAULT_BATCH_BYTES: u64 = 1 << 20;

/// A folder of an account, mapped to a buzon mailbox.
#[derive(Debug, Clone, Deserialize)]
pub struct Folder {
    /// IMAP folder name (`INBOX`).
    pub folder: String,
    /// The buzon mailbox (a `[mailboxes.NAME]`) its mail belongs to.
    pub mailbox: String,
    #[serde(default)]
    pub disposition: Disposition,
    /// Target folder for `disposition = "move"`.
    #[serde(default)]
    pub move_to: Option<String>,
    /// Quarantined mail is moved here (default: left where it is, unseen).
    #[serde(default)]
    pub error_folder: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Mailbox {
    /// The shared address customers write to; acknowledgements come from it.
    pub address: String,
    /// Display name on acknowledgements; defaults to the deployment name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Defaults for tickets opened from this mailbox (rules may override).
    #[serde(default = "default_pipeline")]
    pub pipeline: String,
    #[serde(default)]
    pub owner: Option<String>,
    /// The canonical name (`high`) or the team's Spanish word (`alta`),
    /// as the rule files accept it.
    #[serde(default, deserialize_with = "priority_word")]
    pub priority: Priority,
    /// Send an acknowledgement for new tickets from this mailbox.
    #[serde(default = "yes")]
    pub acknowledge: bool,
}

/// A priority by its canonical name or the Spanish word people use
/// (`baja`, `media`, `alta`, `urgente`), ignoring case and accents.
fn priority_word<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Priority, D::Error> {
    let text = String::deserialize(d)?;
    let folded = crate::rules::fold_text(text.trim()).into_owned();
    Priority::ALL
        .into_iter()
        .find(|p| {
            folded == p.as_str() || folded == crate::outbound::templates::priority_label(*p)
        })
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown priority '{text}': write one of low, medium, high, urgent (baja, media, alta, urgente)"
            ))
        })
}

fn default_pipeline() -> String {
    "Soporte".into()
}

fn yes() -> bool {
    true
}

/// Every problem found while loading, reported together.
#[derive(Debug)]
pub struct ConfigError {
    pub source: String,
    pub problems: Vec<Problem>,
}

/// One configuration problem: the key it concerns and what is wrong.
#[derive(Debug, Clone)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} problem(s) in the configuration",
            self.source,
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  {}: {}", p.key, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Where the configuration comes from, in precedence order (last wins).
pub struct Sources {
    pub file: Option<PathBuf>,
    /// Environment variables (normally `std::env::vars()`), injected so tests
    /// need not mutate the process environment.
    pub env: Vec<(String, String)>,
}

impl Config {
    /// Loads `path` (or nothing), applies `BUZON_*` overrides and validates.
    pub fn load(sources: Sources) -> Result<Config, ConfigError> {
        let label = sources
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<environment>".into());
        let fail = |problems: Vec<Problem>| ConfigError {
            source: label.clone(),
            problems,
        };
        let built = build_layers(&sources).map_err(|p| fail(vec![p]))?;
        let mut problems = Vec::new();
        let raw = read_sections(&built, &mut problems);
        let mut config = Config {
            source: sources.file.clone(),
            deployment: raw.deployment.unwrap_or_default(),
            database: raw.database.unwrap_or_default(),
            limits: raw.limits.unwrap_or_default(),
            outbox: raw.outbox.unwrap_or_default(),
            smtp: raw.smtp,
            people: raw.people.unwrap_or_default(),
            rules: raw.rules.unwrap_or_default(),
            templates: raw.templates.unwrap_or_default(),
            daemon: raw.daemon.unwrap_or_default(),
            web: raw.web.unwrap_or_default(),
            security: raw.security.unwrap_or_default(),
            deadlines: raw.deadlines.unwrap_or_default(),
            accounts: raw.accounts.unwrap_or_default(),
            mailboxes: raw.mailboxes.unwrap_or_default(),
            webhooks: raw.webhooks.unwrap_or_default(),
        };
        config.apply_shorthands(&sources.env);
        config.resolve_paths(&sources.env);
        config.parse_time_zone(&mut problems);
        config.validate(&mut problems);
        // One order whatever order the sections were read in: by key, and
        // in the order found for one key.
        problems.sort_by(|a, b| a.key.cmp(&b.key));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(fail(problems))
        }
    }

    /// Builds a configuration in code (the demo and tests use this).
    pub fn with_defaults(database_url: String) -> Config {
        Config {
            source: None,
            deployment: Deployment::default(),
            database: Database {
                url: database_url,
                ..Database::default()
            },
            limits: Limits::default(),
            outbox: Outbox::default(),
            smtp: None,
            people: BTreeMap::new(),
            rules: Rules::default(),
            templates: Templates::default(),
            daemon: Daemon::default(),
            web: Web::default(),
            security: Security::default(),
            deadlines: DeadlinePolicy::default(),
            accounts: BTreeMap::new(),
            mailboxes: BTreeMap::new(),
            webhooks: Vec::new(),
        }
    }

    /// The mailbox settings, or an error naming the known mailboxes.
    pub fn mailbox(&self, name: &str) -> Result<&Mailbox, String> {
        self.mailboxes.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.mailboxes.keys().map(String::as_str).collect();
            if known.is_empty() {
                format!("unknown mailbox '{name}': the configuration defines no [mailboxes.NAME]")
            } else {
                format!(
                    "unknown mailbox '{name}': configured mailboxes are {}",
                    known.join(", ")
                )
            }
        })
    }

    fn apply_shorthands(&mut self, env: &[(String, String)]) {
        for (key, value) in env {
            match key.as_str() {
                "BUZON_DATABASE_URL" if !value.is_empty() => self.database.url = value.clone(),
                "BUZON_OUTBOX_DIR" if !value.is_empty() => {
                    self.outbox.dir = Some(PathBuf::from(value))
                }
                _ => {}
            }
        }
    }

    /// Relative paths written in the file are relative to the file, so an
    /// example directory works from any working directory. Paths given in the
    /// environment stay relative to the working directory.
    fn resolve_paths(&mut self, env: &[(String, String)]) {
        let Some(base) = self.source.as_ref().and_then(|p| p.parent()) else {
            return;
        };
        let from_env = |k: &str| env.iter().any(|(key, v)| key == k && !v.is_empty());
        if !from_env("BUZON_DATABASE_URL") && !from_env("BUZON_DATABASE__URL") {
            self.database.url = resolve_sqlite_url(&self.database.url, base);
        }
        if !from_env("BUZON_OUTBOX_DIR")
            && !from_env("BUZON_OUTBOX__DIR")
            && let Some(dir) = &self.outbox.dir
        {
            self.outbox.dir = Some(resolve(base, dir));
        }
        if let Some(dir) = &self.rules.dir {
            self.rules.dir = Some(resolve(base, dir));
        }
        if let Some(dir) = &self.templates.dir {
            self.templates.dir = Some(resolve(base, dir));
        }
        for account in self.accounts.values_mut() {
            account.ca_file = account.ca_file.as_ref().map(|p| resolve(base, p));
            account.password_file = account.password_file.as_ref().map(|p| resolve(base, p));
        }
        if let Some(smtp) = &mut self.smtp {
            smtp.ca_file = smtp.ca_file.as_ref().map(|p| resolve(base, p));
            smtp.password_file = smtp.password_file.as_ref().map(|p| resolve(base, p));
        }
        crate::webhooks::resolve_paths(&mut self.webhooks, base);
    }

    /// Parses `deployment.time_zone` into `deployment.zone`, once.
    fn parse_time_zone(&mut self, problems: &mut Vec<Problem>) {
        match jiff::tz::TimeZone::get(&self.deployment.time_zone) {
            Ok(zone) => self.deployment.zone = zone,
            Err(_) => problems.push(Problem {
                key: "deployment.time_zone".into(),
                message: format!(
                    "unknown time zone '{}': write an IANA name such as \"America/Santiago\" or \"America/Lima\"",
                    self.deployment.time_zone
                ),
            }),
        }
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        let mut add = |key: &str, message: String| {
            problems.push(Problem {
                key: key.to_string(),
                message,
            })
        };
        for (key, listen) in [
            ("daemon.listen", &self.daemon.listen),
            ("web.listen", &self.web.listen),
        ] {
            if let Err(e) = check_listen(listen) {
                add(key, e);
            }
        }
        if let Some(url) = &self.web.public_url {
            let lower = url.trim().to_ascii_lowercase();
            if !lower.starts_with("https://") && !lower.starts_with("http://") {
                add(
                    "web.public_url",
                    format!("'{url}' is not a web address: write \"https://soporte.example.cl\""),
                );
            }
        }
        if self.web.session_hours == 0 {
            add("web.session_hours", "must be at least 1".into());
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            add(
                "database.url",
                format!(
                    "'{url}' is not a supported database URL: write \"sqlite:/var/lib/buzon/buzon.db\" or \"postgres://buzon@localhost/buzon\""
                ),
            );
        }
        if self.database.max_connections == 0 {
            add("database.max_connections", "must be at least 1".to_string());
        }
        if self.deadlines.check_seconds == 0 {
            add(
                "deadlines.check_seconds",
                "must be at least 1 (default 60)".to_string(),
            );
        }
        let lists = std::iter::once((
            "deadlines.escalation".to_string(),
            &self.deadlines.escalation,
        ))
        .chain(
            self.deadlines
                .escalation_by_pipeline
                .iter()
                .map(|(p, l)| (format!("deadlines.escalation_by_pipeline.{p}"), l)),
        );
        for (key, list) in lists {
            for address in list {
                if !is_plausible_address(address) {
                    add(
                        &key,
                        format!("'{address}' is not a mail address: write \"jefatura@example.cl\""),
                    );
                }
            }
        }
        if self.limits.max_message_bytes < 1024 {
            add(
                "limits.max_message_bytes",
                format!(
                    "{} bytes is too small for any real mail: write at least 1024 (default {DEFAULT_MAX_MESSAGE_BYTES})",
                    self.limits.max_message_bytes
                ),
            );
        }
        for (name, account) in &self.accounts {
            let key = |k: &str| format!("accounts.{name}.{k}");
            let secrets = [
                account.password_file.is_some(),
                account.password_env.is_some(),
                account.token_command.is_some(),
            ];
            if secrets.iter().filter(|s| **s).count() != 1 {
                add(
                    &key("password_file"),
                    "give exactly one of password_file, password_env or token_command (the secret never goes in this file)".into(),
                );
            }
            for (k, file) in [
                ("ca_file", &account.ca_file),
                ("password_file", &account.password_file),
            ] {
                if let Some(path) = file
                    && let Err(e) = check_readable(path)
                {
                    add(&key(k), e);
                }
            }
            if account.token_command.is_some() && account.auth != ImapAuth::Xoauth2 {
                add(
                    &key("token_command"),
                    "token_command goes with auth = \"xoauth2\"".into(),
                );
            }
            if account.tls == ImapTls::None && !is_loopback(&account.host) {
                add(
                    &key("tls"),
                    format!(
                        "tls = \"none\" sends the password in clear text; it is allowed only for a server on this machine (127.0.0.1), not {}: write tls = \"implicit\" or \"starttls\"",
                        account.host
                    ),
                );
            }
            if account.folders.is_empty() {
                add(
                    &key("folders"),
                    "no folders: add folders = [{ folder = \"INBOX\", mailbox = \"soporte\" }]"
                        .into(),
                );
            }
            for (i, f) in account.folders.iter().enumerate() {
                if !self.mailboxes.contains_key(&f.mailbox) {
                    add(
                        &format!("accounts.{name}.folders[{i}].mailbox"),
                        format!(
                            "unknown mailbox '{}': define [mailboxes.{}] or use one of {}",
                            f.mailbox,
                            f.mailbox,
                            self.mailboxes
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                if f.disposition == Disposition::Move && f.move_to.is_none() {
                    add(
                        &format!("accounts.{name}.folders[{i}].move_to"),
                        "disposition = \"move\" needs move_to = \"FOLDER\"".into(),
                    );
                }
            }
        }
        for (name, mailbox) in &self.mailboxes {
            if !is_plausible_address(&mailbox.address) {
                add(
                    &format!("mailboxes.{name}.address"),
                    format!(
                        "'{}' is not a mail address: write it as \"soporte@example.com\"",
                        mailbox.address
                    ),
                );
            }
        }
        self.validate_outbound(&mut add);
        crate::webhooks::validate(self, &mut add);
    }

    /// `[outbox]` retry keys, `[smtp]` and `[people]`.
    fn validate_outbound(&self, add: &mut dyn FnMut(&str, String)) {
        if self.outbox.retry_schedule.0.is_empty() {
            add(
                "outbox.retry_schedule",
                "empty: write e.g. [\"2m\", \"5m\", \"10m\", \"15m\", \"30m\", \"1h\", \"2h\"]"
                    .into(),
            );
        }
        for step in &self.outbox.retry_schedule.0 {
            match parse_duration_ms(step) {
                Ok(ms) if ms < 1000 => add(
                    "outbox.retry_schedule",
                    format!("'{step}' is shorter than a second: write at least \"1s\""),
                ),
                Ok(_) => {}
                Err(e) => add("outbox.retry_schedule", e),
            }
        }
        if let Err(e) = parse_duration_ms(&self.outbox.max_age) {
            add("outbox.max_age", e);
        }
        if let Err(e) = parse_duration_ms(&self.outbox.lease) {
            add("outbox.lease", e);
        }
        match parse_duration_ms(&self.daemon.webhooks_retention) {
            Ok(ms) if ms < 3_600_000 => add(
                "daemon.webhooks_retention",
                format!(
                    "'{}' is shorter than an hour: write e.g. \"30d\" (the default), or \"1h\" at least",
                    self.daemon.webhooks_retention
                ),
            ),
            Ok(_) => {}
            Err(e) => add("daemon.webhooks_retention", e),
        }
        if !(1..=1000).contains(&self.outbox.auto_reply_limit_per_hour) {
            add(
                "outbox.auto_reply_limit_per_hour",
                format!(
                    "{} is not a usable limit: write a number from 1 to 1000 (default 5); it is what stops a loop with a robot",
                    self.outbox.auto_reply_limit_per_hour
                ),
            );
        }
        if !(1..=10_000).contains(&self.outbox.notification_limit_per_hour) {
            add(
                "outbox.notification_limit_per_hour",
                format!(
                    "{} is not a usable limit: write a number from 1 to 10000 (default 60)",
                    self.outbox.notification_limit_per_hour
                ),
            );
        }
        if let Some(smtp) = &self.smtp {
            if smtp.host.trim().is_empty() {
                add(
                    "smtp.host",
                    "empty: write the SMTP server's name, e.g. \"smtp.example.com\"".into(),
                );
            }
            let secrets = usize::from(smtp.password_file.is_some())
                + usize::from(smtp.password_env.is_some());
            match (&smtp.username, secrets) {
                (Some(_), 1) | (None, 0) => {}
                (Some(_), _) => add(
                    "smtp.password_file",
                    "with a username, give exactly one of password_file or password_env (the password never goes in this file)".into(),
                ),
                (None, _) => add(
                    "smtp.username",
                    "a password is configured but no username to log in with".into(),
                ),
            }
            if smtp.tls == SmtpTls::None && smtp.username.is_some() && !is_loopback(&smtp.host) {
                add(
                    "smtp.tls",
                    format!(
                        "tls = \"none\" with a username sends the password in clear text; allowed only for a relay on this machine, not {}: write tls = \"starttls\" or \"implicit\"",
                        smtp.host
                    ),
                );
            }
            for (key, file) in [
                ("ca_file", &smtp.ca_file),
                ("password_file", &smtp.password_file),
            ] {
                if let Some(path) = file
                    && let Err(e) = check_readable(path)
                {
                    add(&format!("smtp.{key}"), e);
                }
            }
            if smtp.pool_size == 0 {
                add("smtp.pool_size", "must be at least 1".into());
            }
            if let Err(e) = parse_duration_ms(&smtp.timeout) {
                add("smtp.timeout", e);
            }
        }
        for (name, person) in &self.people {
            if let Some(address) = &person.address
                && !is_plausible_address(address)
            {
                add(
                    &format!("people.{name}.address"),
                    format!(
                        "'{address}' is not a mail address: write it as \"camila@example.com\""
                    ),
                );
            }
        }
    }

    /// Where to notify `owner` about their tickets (address, display
    /// name), or why nowhere, in words for the ticket's history.
    pub fn owner_address(&self, owner: &str) -> Result<(&str, Option<&str>), String> {
        match self.people.get(owner) {
            None => Err(format!(
                "{owner} no tiene dirección (agregue [people.{owner}] address = \"...\")"
            )),
            Some(p) if !p.notify => Err(format!("people.{owner}.notify es false")),
            Some(p) => match &p.address {
                Some(a) => Ok((a.as_str(), p.name.as_deref())),
                None => Err(format!(
                    "{owner} no tiene dirección (falta people.{owner}.address)"
                )),
            },
        }
    }

    /// The person of `[people]` whose address this is, if any.
    pub fn person_by_address(&self, address: &str) -> Option<&str> {
        self.people
            .iter()
            .find(|(_, p)| {
                p.address
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(address))
            })
            .map(|(id, _)| id.as_str())
    }

    /// Whether `address` is one of the shared mailboxes buzon reads: mail
    /// sent there would come back to us.
    pub fn is_mailbox_address(&self, address: &str) -> bool {
        self.mailboxes
            .values()
            .any(|m| m.address.eq_ignore_ascii_case(address))
    }

    /// The mailbox addresses plus `our_domains`: mail from these is ours.
    pub fn is_own_address(&self, address: &str) -> bool {
        let address = address.to_ascii_lowercase();
        if self
            .mailboxes
            .values()
            .any(|m| m.address.eq_ignore_ascii_case(&address))
        {
            return true;
        }
        let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        self.deployment
            .our_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }
}

fn build_layers(sources: &Sources) -> Result<config::Config, Problem> {
    let mut builder = config::Config::builder();
    if let Some(path) = &sources.file {
        if !path.exists() {
            return Err(Problem {
                key: "--config".into(),
                message: format!(
                    "file {} does not exist: pass --config PATH or set BUZON_CONFIG",
                    path.display()
                ),
            });
        }
        builder = builder.add_source(
            config::File::from(path.as_path())
                .format(config::FileFormat::Toml)
                .required(true),
        );
    }
    let overrides: config::Map<String, String> = sources
        .env
        .iter()
        .filter(|(k, _)| {
            k.starts_with("BUZON_") && k.contains("__") && !SHORTHAND_VARS.contains(&k.as_str())
        })
        .cloned()
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("BUZON")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(overrides)),
    );
    builder.build().map_err(|e| Problem {
        key: "<file>".into(),
        message: e.to_string(),
    })
}

#[derive(Default)]
struct RawSections {
    deployment: Option<Deployment>,
    database: Option<Database>,
    limits: Option<Limits>,
    outbox: Option<Outbox>,
    smtp: Option<Smtp>,
    people: Option<BTreeMap<String, Person>>,
    rules: Option<Rules>,
    templates: Option<Templates>,
    daemon: Option<Daemon>,
    web: Option<Web>,
    security: Option<Security>,
    deadlines: Option<DeadlinePolicy>,
    accounts: Option<BTreeMap<String, Account>>,
    mailboxes: Option<BTreeMap<String, Mailbox>>,
    webhooks: Option<Vec<crate::webhooks::Endpoint>>,
}

const SECTIONS: &[&str] = &[
    "webhooks",
    "web",
    "security",
    "daemon",
    "deadlines",
    "accounts",
    "deployment",
    "database",
    "limits",
    "outbox",
    "smtp",
    "people",
    "rules",
    "templates",
    "mailboxes",
];

/// Reads each section on its own so that a type error in one does not hide
/// the problems of the others.
fn read_sections(cfg: &config::Config, problems: &mut Vec<Problem>) -> RawSections {
    let mut raw = RawSections::default();
    if let Ok(top) = cfg
        .clone()
        .try_deserialize::<BTreeMap<String, config::Value>>()
    {
        for key in top.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                problems.push(Problem {
                    key: key.clone(),
                    message: format!(
                        "unknown section{}; known sections are {}",
                        closest(key, SECTIONS)
                            .map(|c| format!(" (did you mean [{c}]?)"))
                            .unwrap_or_default(),
                        SECTIONS.join(", ")
                    ),
                });
            }
        }
    }
    raw.deployment = section(
        cfg,
        "deployment",
        &[
            "name",
            "time_zone",
            "ticket_prefix",
            "our_domains",
            "reopen_days",
            "thread_keys_by_domain",
        ],
        problems,
    );
    raw.database = section(cfg, "database", &["url", "max_connections"], problems);
    raw.limits = section(cfg, "limits", &["max_message_bytes"], problems);
    raw.outbox = section(
        cfg,
        "outbox",
        &[
            "dir",
            "retry_schedule",
            "max_age",
            "lease",
            "auto_reply_limit_per_hour",
            "notification_limit_per_hour",
        ],
        problems,
    );
    raw.smtp = section(
        cfg,
        "smtp",
        &[
            "host",
            "port",
            "tls",
            "username",
            "password_file",
            "password_env",
            "ca_file",
            "pool_size",
            "timeout",
        ],
        problems,
    );
    raw.people = section(
        cfg,
        "people",
        &["address", "name", "notify", "role", "pipelines"],
        problems,
    );
    raw.rules = section(cfg, "rules", &["dir"], problems);
    raw.templates = section(cfg, "templates", &["dir"], problems);
    raw.daemon = section(
        cfg,
        "daemon",
        &[
            "listen",
            "instance",
            "lease_seconds",
            "unhealthy_after_seconds",
            "outbox_poll_seconds",
            "webhooks_retention",
        ],
        problems,
    );
    raw.security = section(cfg, "security", &["trusted_authserv_id"], problems);
    raw.web = section(
        cfg,
        "web",
        &["listen", "public_url", "session_hours"],
        problems,
    );
    raw.deadlines = section(
        cfg,
        "deadlines",
        &[
            "check_seconds",
            "pause_while_waiting",
            "first_response_met_by",
            "alert_owner",
            "escalation",
            "escalation_by_pipeline",
        ],
        problems,
    );
    raw.accounts = section(
        cfg,
        "accounts",
        &[
            "host",
            "port",
            "tls",
            "ca_file",
            "username",
            "auth",
            "password_file",
            "password_env",
            "token_command",
            "idle",
            "poll_seconds",
            "batch_size",
            "batch_bytes",
            "folders",
            "folder",
            "mailbox",
            "disposition",
            "move_to",
            "error_folder",
        ],
        problems,
    );
    raw.webhooks = section(cfg, "webhooks", crate::webhooks::KEYS, problems);
    raw.mailboxes = section(
        cfg,
        "mailboxes",
        &[
            "address",
            "display_name",
            "pipeline",
            "owner",
            "priority",
            "acknowledge",
        ],
        problems,
    );
    raw
}

/// Deserializes one section; `fields` are its valid keys, for typo hints.
///
/// A value of the wrong type does not hide the rest of the section: the
/// offending key is reported with its path and left out, and the section
/// is read again without it, until what is left loads. So every wrong key
/// is reported, the good ones beside it still apply (and are validated),
/// and the result does not depend on the order the keys are visited in.
fn section<T: DeserializeOwned>(
    cfg: &config::Config,
    name: &str,
    fields: &[&str],
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut value = match cfg.get::<config::Value>(name) {
        Ok(v) => v,
        Err(config::ConfigError::NotFound(_)) => return None,
        Err(e) => {
            problems.push(Problem {
                key: name.into(),
                message: e.to_string(),
            });
            return None;
        }
    };
    let mut unknown = std::collections::BTreeSet::new();
    let mut removed: Vec<Vec<String>> = Vec::new();
    // Each round removes one key, so this ends; the bound is a backstop.
    for _ in 0..200 {
        let mut note_unknown = |path: serde_ignored::Path| {
            unknown.insert(path.to_string());
        };
        let ignored = serde_ignored::Deserializer::new(value.clone(), &mut note_unknown);
        let error = match serde_path_to_error::deserialize::<_, T>(ignored) {
            Ok(v) => {
                report_unknown(name, fields, &unknown, problems);
                return Some(v);
            }
            Err(e) => e,
        };
        let path = path_segments(error.path());
        let message = error.inner().to_string();
        // A key removed earlier leaves its table without a required
        // field: that is the same mistake, already reported.
        let consequence =
            message.starts_with("missing field") && removed.iter().any(|r| r.starts_with(&path));
        if !consequence {
            let key = std::iter::once(name.to_string())
                .chain(path.iter().cloned())
                .collect::<Vec<_>>()
                .join(".")
                .replace(".[", "[");
            problems.push(Problem {
                key,
                message: explain_serde(&message),
            });
        }
        if path.is_empty() || !remove_path(&mut value, &path) {
            break;
        }
        removed.push(path);
    }
    report_unknown(name, fields, &unknown, problems);
    None
}

fn report_unknown(
    name: &str,
    fields: &[&str],
    unknown: &std::collections::BTreeSet<String>,
    problems: &mut Vec<Problem>,
) {
    for path in unknown {
        let leaf = path.rsplit('.').next().unwrap_or(path);
        let hint = match closest(leaf, fields) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "remove it or check its spelling in the README".into(),
        };
        // A list's index as `[0]`, as the other keys write it.
        let path = path
            .split('.')
            .map(|seg| match seg.parse::<usize>() {
                Ok(i) => format!("[{i}]"),
                Err(_) => format!(".{seg}"),
            })
            .collect::<String>();
        problems.push(Problem {
            key: format!("{name}{path}"),
            message: format!("unknown key: {hint} (valid keys: {})", fields.join(", ")),
        });
    }
}

/// `people.camila.address` as `["camila", "address"]`, a list index as `[0]`.
fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(format!("[{index}]")),
            Segment::Enum { variant } => Some(variant.clone()),
            Segment::Unknown => None,
        })
        .collect()
}

/// Removes the value at `path` (a table key or a list element); false when
/// there is nothing there to remove.
fn remove_path(value: &mut config::Value, path: &[String]) -> bool {
    use config::ValueKind;
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut here = value;
    for segment in parents {
        here = match &mut here.kind {
            ValueKind::Table(map) => match map.get_mut(segment) {
                Some(v) => v,
                None => return false,
            },
            ValueKind::Array(list) => match list_index(segment).and_then(|i| list.get_mut(i)) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match &mut here.kind {
        ValueKind::Table(map) => map.remove(last).is_some(),
        ValueKind::Array(list) => match list_index(last) {
            Some(i) if i < list.len() => {
                list.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn list_index(segment: &str) -> Option<usize> {
    segment.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// serde's "unknown field `x`, expected one of ..." is accurate but the
/// admin wants the suggestion first.
fn explain_serde(message: &str) -> String {
    // The config crate adds " for key `soporte.priority`": the problem's
    // key already says it, fully.
    let message = match message.rfind(" for key `") {
        Some(i) if message.ends_with('`') => &message[..i],
        _ => message,
    };
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, expected)) = rest.split_once("`, expected ")
    {
        let options: Vec<&str> = expected
            .split(|c: char| c == '`' || c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty() && *s != "one" && *s != "of" && *s != "or")
            .collect();
        let hint = closest(field, &options)
            .map(|c| format!(": did you mean `{c}`?"))
            .unwrap_or_default();
        return format!(
            "unknown key `{field}`{hint} (valid keys: {})",
            options.join(", ")
        );
    }
    message.to_string()
}

/// The candidate closest to `word` by edit distance, if any is close enough
/// to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A listen address (`127.0.0.1:9187`, `[::1]:8080`, `localhost:8080`) as
/// `run` will bind it; empty is "off".
fn check_listen(text: &str) -> Result<(), String> {
    if text.is_empty() || text.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let wrong = || {
        format!("'{text}' is not an address and port: write \"127.0.0.1:8080\" (or empty for off)")
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(wrong)?;
    let named = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    match port.parse::<u16>() {
        Ok(_) if named => Ok(()),
        Err(_) if named && port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() => Err(
            format!("'{text}': port {port} is out of range: write a port from 1 to 65535"),
        ),
        _ => Err(wrong()),
    }
}

/// A secret or certificate file: it must open for reading by whoever runs
/// buzon (the `buzon` user under systemd), now rather than at first use.
pub(crate) fn check_readable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{} is a directory, not a file", path.display()));
    }
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))
}

pub(crate) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A mail address as SMTP takes it (`lettre::Address`: a local part, `@`,
/// a domain), and with a dot in the domain: an address written without
/// its domain's end (`camila@empresa`) is a mistake in a configuration.
pub fn is_plausible_address(s: &str) -> bool {
    s.parse::<lettre::Address>()
        .is_ok_and(|a| a.domain().contains('.'))
}

pub(crate) fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn resolve_sqlite_url(url: &str, base: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return url.to_string();
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path.starts_with('/') || path.starts_with(":memory:") || path.is_empty() {
        return url.to_string();
    }
    format!("sqlite:{}", base.join(path).display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buzon.toml");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(toml.as_bytes())
            .unwrap();
        Config::load(Sources {
            file: Some(path),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    const GOOD: &str = r#"
[deployment]
name = "Genera Factoring"
time_zone = "America/Lima"

[database]
url = "sqlite:buzon.db"

[mailboxes.finanzas]
address = "finanzas@generafactoring.example"
pipeline = "Finanzas"
priority = "high"
"#;

    #[test]
    fn loads_and_resolves_relative_sqlite_path() {
        let cfg = load(GOOD, &[]).unwrap();
        assert!(cfg.database.url.starts_with("sqlite:/"));
        assert!(cfg.database.url.ends_with("/buzon.db"));
        assert_eq!(cfg.mailboxes["finanzas"].priority, Priority::High);
        assert!(cfg.mailboxes["finanzas"].acknowledge);
    }

    #[test]
    fn environment_overrides_and_shorthands() {
        let cfg = load(
            GOOD,
            &[
                ("BUZON_DATABASE_URL", "postgres://x@127.0.0.1/db"),
                ("BUZON_OUTBOX_DIR", "out"),
                ("BUZON_LIMITS__MAX_MESSAGE_BYTES", "4096"),
                ("BUZON_DEPLOYMENT__NAME", "Otro"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.database.url, "postgres://x@127.0.0.1/db");
        assert_eq!(cfg.outbox.dir, Some(PathBuf::from("out")));
        assert_eq!(cfg.limits.max_message_bytes, 4096);
        assert_eq!(cfg.deployment.name, "Otro");
    }

    #[test]
    fn reports_every_problem_at_once_naming_keys() {
        let bad = r#"
[deployment]
time_zone = "America/Santiagoo"
nmae = "x"

[database]
url = "mysql://nope"

[mailboxes.soporte]
address = "not an address"
priority = "high"

[limitz]
max_message_bytes = 10
"#;
        let err = load(bad, &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("deployment.time_zone"), "{text}");
        assert!(text.contains("nmae"), "{text}");
        assert!(text.contains("did you mean `name`"), "{text}");
        assert!(text.contains("database.url"), "{text}");
        assert!(text.contains("mailboxes.soporte.address"), "{text}");
        assert!(text.contains("limitz"), "{text}");
        assert!(text.contains("did you mean [limits]"), "{text}");
        assert!(err.problems.len() >= 5, "{text}");
    }

    /// Nine mistakes, two of them type errors in different tables, one
    /// type error beside an unknown key and a bad address: nine problems,
    /// in the same order every time.
    pub(crate) const NINE_MISTAKES: &str = r#"
[deployment]
time_zone = "Mars/Olympus"
nmae = "x"

[database]
max_connections = "muchas"

[limits]
max_message_bytes = "grande"

[daemon]
listen = "127.0.0.1:99999"

[mailboxes.soporte]
address = "no es correo"
priority = "altisima"
acknowledgee = true

[people.camila]
address = "camila"
"#;

    #[test]
    fn every_problem_is_reported_in_a_stable_order() {
        let first = load(NINE_MISTAKES, &[]).unwrap_err();
        let keys: Vec<&str> = first.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "daemon.listen",
                "database.max_connections",
                "deployment.nmae",
                "deployment.time_zone",
                "limits.max_message_bytes",
                "mailboxes.soporte.acknowledgee",
                "mailboxes.soporte.address",
                "mailboxes.soporte.priority",
                "people.camila.address",
            ],
            "{first}"
        );
        for _ in 0..5 {
            let again = load(NINE_MISTAKES, &[]).unwrap_err();
            let lines = |e: &ConfigError| -> Vec<String> {
                e.problems
                    .iter()
                    .map(|p| format!("{}: {}", p.key, p.message))
                    .collect()
            };
            assert_eq!(lines(&again), lines(&first));
        }
    }

    #[test]
    fn a_mailbox_priority_takes_the_spanish_words() {
        let text = GOOD.replace("priority = \"high\"", "priority = \"Alta\"");
        assert_eq!(
            load(&text, &[]).unwrap().mailboxes["finanzas"].priority,
            Priority::High
        );
        let text = GOOD.replace("priority = \"high\"", "priority = \"urgente\"");
        assert_eq!(
            load(&text, &[]).unwrap().mailboxes["finanzas"].priority,
            Priority::Urgent
        );
    }

    #[test]
    fn listen_addresses_and_secret_files_are_checked() {
        let text = format!(
            "{GOOD}\n[daemon]\nlisten = \"localhost:9187\"\n[web]\nlisten = \"127.0.0.1:99999\"\n\
             [accounts.a]\nhost = \"imap.example.com\"\nusername = \"u\"\npassword_file = \"/nonexistent/secret\"\n\
             folders = [{{ folder = \"INBOX\", mailbox = \"finanzas\" }}]\n"
        );
        let err = load(&text, &[]).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["accounts.a.password_file", "web.listen"], "{err}");
        assert!(err.to_string().contains("out of range"), "{err}");
    }

    #[test]
    fn the_time_zone_is_parsed_once_at_load() {
        let cfg = load(GOOD, &[]).unwrap();
        assert_eq!(cfg.deployment.zone.iana_name(), Some("America/Lima"));
        let cfg = load(GOOD, &[("BUZON_DEPLOYMENT__TIME_ZONE", "Europe/Madrid")]).unwrap();
        assert_eq!(cfg.deployment.zone.iana_name(), Some("Europe/Madrid"));
        let err = load(GOOD, &[("BUZON_DEPLOYMENT__TIME_ZONE", "Mars/Olympus")]).unwrap_err();
        let problem = &err.problems[0];
        assert_eq!(problem.key, "deployment.time_zone");
        assert!(
            problem.message.contains("'Mars/Olympus'"),
            "{}",
            problem.message
        );
        assert!(
            problem.message.contains("America/Santiago"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn unknown_priority_names_the_valid_ones() {
        let bad = "[mailboxes.x]\naddress = \"a@b.example\"\npriority = \"altisima\"\n";
        let text = load(bad, &[]).unwrap_err().to_string();
        assert!(text.contains("altisima"), "{text}");
        assert!(text.contains("urgent"), "{text}");
    }

    #[test]
    fn missing_file_is_reported() {
        let err = Config::load(Sources {
            file: Some(PathBuf::from("/nonexistent/buzon.toml")),
            env: vec![],
        })
        .unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn closest_suggests_typos_only() {
        assert_eq!(closest("pipline", &["pipeline", "owner"]), Some("pipeline"));
        assert_eq!(closest("zzzzzz", &["pipeline", "owner"]), None);
    }

    #[test]
    fn outbound_keys_load_with_defaults_and_overrides() {
        let text = format!(
            "{GOOD}\n[smtp]\nhost = \"smtp.generafactoring.example\"\nusername = \"finanzas\"\n\
             password_env = \"SMTP_PASS\"\n\n[people.alonso]\naddress = \"alonso@generafactoring.example\"\n"
        );
        let cfg = load(&text, &[("BUZON_OUTBOX__RETRY_SCHEDULE", "1m, 5m")]).unwrap();
        let smtp = cfg.smtp.as_ref().unwrap();
        assert_eq!((smtp.tls, smtp.port()), (SmtpTls::Starttls, 587));
        assert_eq!(cfg.outbox.retry_schedule_ms(), vec![60_000, 300_000]);
        assert_eq!(cfg.outbox.max_age_ms(), 3 * 86_400_000);
        assert_eq!(cfg.outbox.auto_reply_limit_per_hour, 5);
        assert_eq!(
            cfg.owner_address("alonso").unwrap().0,
            "alonso@generafactoring.example"
        );
        assert!(
            cfg.owner_address("milagros")
                .unwrap_err()
                .contains("[people.milagros]")
        );
        let defaults = load(GOOD, &[]).unwrap();
        assert_eq!(defaults.outbox.retry_schedule_ms().len(), 7);
        assert!(defaults.smtp.is_none());
    }

    #[test]
    fn outbound_problems_are_reported_with_their_keys() {
        let bad = format!(
            "{GOOD}\n[outbox]\nretry_schedule = [\"2m\", \"5 semanas\", \"0s\"]\nmax_age = \"x\"\n\
             auto_reply_limit_per_hour = 0\n\n[smtp]\nhost = \"smtp.example.com\"\ntls = \"none\"\n\
             username = \"u\"\nprot = 25\n\n[people.camila]\naddress = \"camila\"\n"
        );
        let err = load(&bad, &[]).unwrap_err();
        let text = err.to_string();
        for needle in [
            "outbox.retry_schedule: unknown unit 'semanas'",
            "outbox.retry_schedule: '0s' is shorter than a second",
            "outbox.max_age",
            "outbox.auto_reply_limit_per_hour",
            "smtp.password_file: with a username",
            "smtp.tls: tls = \"none\" with a username",
            "smtp.prot: unknown key: did you mean `port`?",
            "people.camila.address",
        ] {
            assert!(text.contains(needle), "{needle}\n{text}");
        }
    }

    #[test]
    fn webhooks_retention_is_a_duration_of_an_hour_or_more() {
        let cfg = load(GOOD, &[]).unwrap();
        assert_eq!(cfg.daemon.webhooks_retention_ms(), 30 * 86_400_000);
        let cfg = load(
            &format!("{GOOD}\n[daemon]\nwebhooks_retention = \"7d\"\n"),
            &[],
        )
        .unwrap();
        assert_eq!(cfg.daemon.webhooks_retention_ms(), 7 * 86_400_000);
        for (value, needle) in [
            (
                "\"30 días\"",
                "daemon.webhooks_retention: unknown unit 'días'",
            ),
            (
                "\"10m\"",
                "daemon.webhooks_retention: '10m' is shorter than an hour",
            ),
        ] {
            let bad = format!("{GOOD}\n[daemon]\nwebhooks_retention = {value}\n");
            let text = load(&bad, &[]).unwrap_err().to_string();
            assert!(text.contains(needle), "{needle}\n{text}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("3d"), Ok(259_200_000));
        assert_eq!(parse_duration_ms("45"), Ok(45_000));
        assert!(parse_duration_ms("h").is_err());
        assert!(parse_duration_ms("-1m").is_err());
    }
}
