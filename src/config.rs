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
    pub rules: Rules,
    pub templates: Templates,
    /// Mailbox name → its settings. Names are what the rules and the CLI use.
    pub mailboxes: BTreeMap<String, Mailbox>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Deployment {
    /// The team's name, used in acknowledgements ("Equipo de Soporte").
    pub name: String,
    /// IANA time zone for dates shown to people and business hours.
    pub time_zone: String,
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
        Self {
            name: "Soporte".into(),
            time_zone: "America/Santiago".into(),
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
            max_message_bytes: 25 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Outbox {
    /// When set, outgoing mail is written as `.eml` files here instead of
    /// being sent (`BUZON_OUTBOX_DIR`).
    pub dir: Option<PathBuf>,
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
    #[serde(default)]
    pub priority: Priority,
    /// Send an acknowledgement for new tickets from this mailbox.
    #[serde(default = "yes")]
    pub acknowledge: bool,
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
            rules: raw.rules.unwrap_or_default(),
            templates: raw.templates.unwrap_or_default(),
            mailboxes: raw.mailboxes.unwrap_or_default(),
        };
        config.apply_shorthands(&sources.env);
        config.resolve_paths(&sources.env);
        config.validate(&mut problems);
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
            rules: Rules::default(),
            templates: Templates::default(),
            mailboxes: BTreeMap::new(),
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
    }

    fn validate(&self, problems: &mut Vec<Problem>) {
        let mut add = |key: &str, message: String| {
            problems.push(Problem {
                key: key.to_string(),
                message,
            })
        };
        if jiff::tz::TimeZone::get(&self.deployment.time_zone).is_err() {
            add(
                "deployment.time_zone",
                format!(
                    "unknown time zone '{}': write an IANA name such as \"America/Santiago\" or \"America/Lima\"",
                    self.deployment.time_zone
                ),
            );
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
        if self.limits.max_message_bytes < 1024 {
            add(
                "limits.max_message_bytes",
                format!(
                    "{} bytes is too small for any real mail: write at least 1024 (default 26214400)",
                    self.limits.max_message_bytes
                ),
            );
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
    rules: Option<Rules>,
    templates: Option<Templates>,
    mailboxes: Option<BTreeMap<String, Mailbox>>,
}

const SECTIONS: &[&str] = &[
    "deployment",
    "database",
    "limits",
    "outbox",
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
    raw.outbox = section(cfg, "outbox", &["dir"], problems);
    raw.rules = section(cfg, "rules", &["dir"], problems);
    raw.templates = section(cfg, "templates", &["dir"], problems);
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
fn section<T: DeserializeOwned>(
    cfg: &config::Config,
    name: &str,
    fields: &[&str],
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let value = match cfg.get::<config::Value>(name) {
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
    let mut unknown = Vec::new();
    let result: Result<T, _> = serde_ignored::deserialize(value, |path| {
        unknown.push(path.to_string());
    });
    for path in unknown {
        let leaf = path.rsplit('.').next().unwrap_or(&path);
        let hint = match closest(leaf, fields) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "remove it or check its spelling in the README".into(),
        };
        problems.push(Problem {
            key: format!("{name}.{path}"),
            message: format!("unknown key: {hint} (valid keys: {})", fields.join(", ")),
        });
    }
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(Problem {
                key: name.into(),
                message: explain_serde(&e.to_string()),
            });
            None
        }
    }
}

/// serde's "unknown field `x`, expected one of ..." is accurate but the
/// admin wants the suggestion first.
fn explain_serde(message: &str) -> String {
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
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn is_plausible_address(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
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
}
