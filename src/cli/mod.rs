//! The command line's definition (clap) and what its command groups share.
//! Each group lives in its own file and only parses, calls the library and
//! prints: what is done to tickets is decided by `buzon::actions`.

pub mod act;
pub mod check;
pub mod demo;
pub mod generate;
pub mod ingest;
pub mod labels;
pub mod outbox;
pub mod passwd;
pub mod report;
pub mod rules;
pub mod tickets;
pub mod token;
pub mod webhooks;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use buzon::config::{Config, DEFAULT_CONFIG_PATH, Sources};
use buzon::outbound::deliver::{self, DrainReport, Transport};
use buzon::store::{Store, now_ms};
use buzon::ticket::parse_number;

/// sysexits.h EX_TEMPFAIL: an MTA piping mail into `buzon ingest` keeps the
/// mail and retries later instead of bouncing it to the customer. `ingest`
/// exits with it whenever a mail was not stored: the database was away, or
/// the configuration, rules or templates do not load (an admin's mistake
/// must not turn customers' mail into bounces).
pub const EX_TEMPFAIL: u8 = 75;

/// sysexits.h EX_CONFIG: the configuration, rules or templates do not load.
/// `check` and `run` exit with it; the unit's `RestartPreventExitStatus=78`
/// then stops systemd from restarting a daemon that cannot start until an
/// admin fixes a file.
pub const EX_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "buzon",
    version,
    about = "Turns mail sent to shared support mailboxes into tickets"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "BUZON_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Log format: human or json on stderr, or journald (priorities and
    /// fields, `journalctl -p err -u buzon`, `journalctl MAILBOX=soporte`).
    /// Default: journald when systemd started buzon (`JOURNAL_STREAM`),
    /// else human.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people, on stderr.
    Human,
    /// One JSON object a line, on stderr.
    Json,
    /// The systemd journal's native protocol.
    Journald,
}

#[derive(Subcommand)]
pub enum Command {
    /// Store mail files (or one mail from stdin) as tickets.
    Ingest {
        /// The buzon mailbox the mail arrived in (a [mailboxes.NAME] of the config).
        #[arg(long)]
        mailbox: String,
        /// .eml files; none reads one message from stdin.
        files: Vec<PathBuf>,
    },
    /// List, show, open and work tickets.
    Tickets {
        /// Who is acting: a person of [people] (their key or name). Every
        /// command that changes a ticket needs it; permissions follow the
        /// person's role.
        #[arg(long = "as", env = "BUZON_AS", global = true)]
        actor: Option<String>,
        #[command(subcommand)]
        command: tickets::TicketsCommand,
    },
    /// Mail that could not be ticketed.
    Quarantine {
        #[command(subcommand)]
        command: ingest::QuarantineCommand,
    },
    /// Outgoing mail waiting, sent or failed.
    Outbox {
        #[command(subcommand)]
        command: outbox::OutboxCommand,
    },
    /// What was told to other systems ([[webhooks]]): delivered, waiting,
    /// given up.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
    },
    /// Check, explain and test the routing rules.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Counts, first-response and resolution times of the tickets created
    /// between two dates (local dates, both included).
    Report(report::ReportArgs),
    /// Missed deadlines not yet met: an owner's, or everyone's (admins),
    /// most overdue first.
    Alerts {
        /// Only the alerts of this person's tickets (key or name).
        #[arg(long)]
        owner: Option<String>,
        /// Also the alerts already cleared (answered or done).
        #[arg(long)]
        all: bool,
        /// text for people, json for programs.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Set a person's password for the web workspace (read from stdin when
    /// it is not a terminal); their open sessions end.
    Passwd {
        /// A person of [people] (key or name).
        name: String,
    },
    /// Tokens for the JSON API (/api/v1): create (printed once), list,
    /// revoke. A token acts as its person, with their role.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Check what `run` needs without starting anything: the configuration
    /// (every problem at once), rules and templates as `run` loads them,
    /// secret files, listen addresses, the database (reachable, migrated).
    /// Exit 0 when `run` can start, 78 on a configuration problem, 75 when
    /// the database or a server cannot be reached now.
    Check {
        /// Also log in to each IMAP account and open an SMTP session, and
        /// show what each server answered.
        #[arg(long)]
        connect: bool,
    },
    /// Run the pipeline over bundled sample mail into a fresh SQLite file,
    /// with the example teams' own configurations (`--config` is refused).
    Demo {
        /// Where to put the database and the acknowledgements (a new or
        /// empty directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Run even if the directory is not empty, replacing an earlier
        /// demo's databases and acknowledgements there.
        #[arg(long)]
        force: bool,
    },
    /// Write the man pages or the shell completions (for packaging).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        command: generate::GenerateCommand,
    },
    /// Run the daemon: watch the IMAP folders, deliver the outbox.
    Run {
        /// Drain every folder once, deliver the outbox, and exit.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    Text,
    Json,
}

/// The command line, parsed. `demo` runs the example teams' own
/// configurations, so a `--config` written to it would be silently
/// ignored: it is refused as a usage error (exit 2) instead. The
/// `BUZON_CONFIG` of the environment is no mistake there and passes.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
    let matches = Cli::command().get_matches();
    if let Some(("demo", sub)) = matches.subcommand()
        && sub.value_source("config") == Some(ValueSource::CommandLine)
    {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "buzon demo runs the example teams' own configurations and takes no --config: leave it out",
            )
            .exit();
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

pub fn load_config(path: &Path) -> Result<Config> {
    Config::load(Sources {
        file: Some(path.to_path_buf()),
        env: std::env::vars().collect(),
    })
    .map_err(anyhow::Error::new)
}

pub async fn open_store(config: &Config) -> Result<Store> {
    let mut store = Store::open(&config.database.url, config.database.max_connections)
        .await
        .context("cannot open the store")?;
    store.webhook_events(!config.webhooks.is_empty());
    Ok(store)
}

pub fn time_zone(config: &Config) -> jiff::tz::TimeZone {
    config.deployment.zone.clone()
}

/// `1042`, `T-1042` or `#T-1042` as the ticket's number.
pub fn ticket_number(prefix: &str, text: &str) -> Result<i64> {
    parse_number(prefix, text).ok_or_else(|| {
        anyhow::anyhow!("'{text}' no es un número de ticket: escríbalo como 1042 o {prefix}1042")
    })
}

/// Delivers due outbox rows when a transport is configured; otherwise the
/// daemon will.
pub async fn flush_outbox(config: &Config, store: &Store) -> Result<Option<(String, DrainReport)>> {
    let Some(transport) = Transport::from_config(config)? else {
        return Ok(None);
    };
    let report = deliver::drain(store, &transport, &buzon::instance::one_off(), now_ms()).await?;
    if report.sent + report.failed + report.retrying > 0 {
        tracing::info!(?report, transport = %transport.describe(), "Outbox drained.");
    }
    Ok(Some((transport.describe(), report)))
}

/// After a command stored something: deliver now if possible. The mail is
/// already safe in the outbox, so a delivery problem is reported but does
/// not fail the command (an MTA piping into `ingest` must not retry).
pub async fn flush_after(config: &Config, store: &Store) {
    if let Err(e) = flush_outbox(config, store).await {
        eprintln!("buzon: outgoing mail stays queued: {e:#}");
    }
    // Without [[webhooks]], the events of what was stored (and of the mail
    // just sent) are dropped here, for a deployment that only pipes mail
    // in and never runs the daemon. With endpoints, the daemon (or `run
    // --once`) delivers them.
    if config.webhooks.is_empty()
        && let Err(e) =
            buzon::webhooks::deliver::fan_out(store, &Default::default(), now_ms()).await
    {
        tracing::warn!(error = %e, "Webhook events not dropped; the next run will.");
    }
}

pub fn print_drain(to: &str, report: &DrainReport) -> Result<()> {
    outln!(
        "outbox: {} sent, {} to retry, {} failed ({to})",
        report.sent,
        report.retrying,
        report.failed
    );
    Ok(())
}

/// `println!` for the command's output: a closed pipe (`buzon demo | head
/// -1`) ends the output quietly (the command still does all its work and
/// exits 0) where `println!` would panic; other write errors are errors.
macro_rules! outln {
    () => {
        $crate::cli::print_out("\n")?
    };
    ($($arg:tt)*) => {
        $crate::cli::print_out(&format!("{}\n", format_args!($($arg)*)))?
    };
}
pub(crate) use outln;

/// Prints, treating a closed pipe (`| head`) as success.
pub fn print_out(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every option or argument says what it is for, in
    /// `--help` and in the man pages made from the same definition.
    #[test]
    fn every_option_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if path.contains(" help") {
                return;
            }
            if cmd.get_about().is_none() && path != "buzon" {
                missing.push(format!("{path}: the command"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut cmd = super::Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "", &mut missing);
        assert!(
            missing.is_empty(),
            "no description:\n{}",
            missing.join("\n")
        );
    }
}
