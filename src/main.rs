//! The `buzon` command: parses arguments, sets up logging, loads the
//! configuration and calls into the library. The only place that uses
//! `anyhow` and decides exit codes.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use buzon::agent::Agent;
use buzon::config::{Config, DEFAULT_CONFIG_PATH, Sources};
use buzon::outbound::deliver::{self, DrainReport, Transport};
use buzon::pipeline::{Outcome, Pipeline};
use buzon::store::{Classification, Store, Target, TicketFilter, now_ms};
use buzon::ticket::{Outcome as TicketOutcome, Priority, State, display_number, parse_number};
use buzon::view;

/// sysexits.h EX_TEMPFAIL: an MTA piping mail into `buzon ingest` keeps the
/// mail and retries later instead of bouncing it to the customer. `ingest`
/// exits with it whenever a mail was not stored: the database was away, or
/// the configuration, rules or templates do not load (an admin's mistake
/// must not turn customers' mail into bounces).
const EX_TEMPFAIL: u8 = 75;

#[derive(Parser)]
#[command(
    name = "buzon",
    version,
    about = "Turns mail sent to shared support mailboxes into tickets"
)]
struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "BUZON_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Store mail files (or one mail from stdin) as tickets.
    Ingest {
        /// The buzon mailbox the mail arrived in (a [mailboxes.NAME] of the config).
        #[arg(long)]
        mailbox: String,
        /// .eml files; none reads one message from stdin.
        files: Vec<PathBuf>,
    },
    /// List, show and act on tickets.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// Mail that could not be ticketed.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Outgoing mail waiting, sent or failed.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Check, explain and test the routing rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Counts, first-response and resolution times of the tickets created
    /// between two dates (local dates, both included).
    Report {
        /// First day, YYYY-MM-DD in deployment.time_zone.
        #[arg(long)]
        from: String,
        /// Last day, included (YYYY-MM-DD).
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        /// One group per pipeline, owner, type or mailbox (default: one group, "all").
        #[arg(long, value_parser = ["pipeline", "owner", "type", "mailbox"])]
        by: Option<String>,
        /// Start the CSV with the UTF-8 byte order mark, so Excel shows accents.
        #[arg(long)]
        bom: bool,
    },
    /// Missed deadlines not yet met: an owner's, or everyone's (admins),
    /// most overdue first.
    Alerts {
        /// Only the alerts of this owner's tickets.
        #[arg(long)]
        owner: Option<String>,
        /// Also the alerts already cleared (answered or done).
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Run the pipeline over bundled sample mail into a fresh SQLite file.
    Demo {
        /// Where to put the database and the acknowledgements.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the daemon: watch the IMAP folders, deliver the outbox.
    Run {
        /// Drain every folder once, deliver the outbox, and exit.
        #[arg(long)]
        once: bool,
    },
}

/// What an agent writes: a file, or a template filled in for the ticket.
#[derive(clap::Args)]
struct BodyArgs {
    /// The text, from a file.
    #[arg(
        long,
        conflicts_with = "template",
        required_unless_present = "template"
    )]
    body_file: Option<PathBuf>,
    /// A template of templates.dir (NAME.txt), filled in for the ticket;
    /// its Subject line is not used (the reply keeps the ticket's subject).
    #[arg(long)]
    template: Option<String>,
    /// With --template: the text of {{ note }}.
    #[arg(long, requires = "template")]
    note: Option<String>,
}

#[derive(Subcommand)]
enum TicketsCommand {
    /// List tickets; the filters combine.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        priority: Option<String>,
        /// An extracted key, e.g. `order=75321`.
        #[arg(long)]
        key: Option<String>,
        /// Only tickets past their due date, most overdue first.
        #[arg(long)]
        overdue: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// One ticket: fields, deadlines, alerts, documents, messages, history.
    Show {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Give the ticket to someone.
    Assign {
        number: String,
        owner: String,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Move the ticket to a state (new, open, waiting_on_contact, waiting_on_us,
    /// or the team's word for one).
    State {
        number: String,
        state: String,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Add an internal note (never mailed).
    Comment {
        number: String,
        text: String,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Mail the requester and participants, threaded, through the outbox.
    Reply {
        number: String,
        #[command(flatten)]
        body: BodyArgs,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Finish the ticket and tell the contact.
    Close {
        number: String,
        /// success ("finalizada con éxito") or failure ("sin éxito").
        #[arg(long)]
        outcome: String,
        /// Written in the closing message to the contact.
        #[arg(long)]
        note: Option<String>,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Mail a case update ("novedad") to the client and the additional recipients.
    Update {
        number: String,
        #[command(flatten)]
        body: BodyArgs,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Ask the client for documents; the items become a checklist on the ticket.
    Request {
        number: String,
        /// A document to ask for (repeat for several).
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        #[arg(long)]
        note: Option<String>,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Move a deadline by hand ("Fecha Límite").
    ///
    /// The resolution's, or with --first-response the first answer's:
    /// "2026-12-10 18:00" or "2026-12-10" (end of that day), in
    /// deployment.time_zone. The old date's alert clears.
    Due {
        number: String,
        when: String,
        #[arg(long)]
        first_response: bool,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Reclassify: priority, type, category, area, pipeline, team fields.
    ///
    /// Types and field values must be those of the rule files; priority
    /// takes the team's words too ("Alta"). Deadlines stay as they are.
    #[command(alias = "set")]
    Classify {
        number: String,
        #[arg(long)]
        priority: Option<String>,
        #[arg(long = "type")]
        ticket_type: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        area: Option<String>,
        #[arg(long)]
        pipeline: Option<String>,
        /// A team field, NAME=VALUE (repeat for several).
        #[arg(long = "field")]
        fields: Vec<String>,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Mark a requested document as received.
    Received {
        number: String,
        item: String,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
    /// Hide the ticket from the client (no mail to them) or show it again.
    Internal {
        number: String,
        #[arg(long, conflicts_with = "off")]
        on: bool,
        #[arg(long)]
        off: bool,
        /// Who is acting (default: $USER).
        #[arg(long = "as")]
        agent: Option<String>,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Report every problem in the rule files (exit 1 on any error).
    Check {
        /// Rules directory (default: the config's rules.dir).
        dir: Option<PathBuf>,
    },
    /// Show how each rule treats a mail and the final decision.
    Explain {
        #[arg(long)]
        mailbox: String,
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the test cases written in the rule files.
    Test { dir: Option<PathBuf> },
}

#[derive(Subcommand)]
enum QuarantineCommand {
    List {
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Run a quarantined mail through the pipeline again.
    Retry { id: i64 },
}

#[derive(Subcommand)]
enum OutboxCommand {
    List {
        /// queued, sent or failed.
        #[arg(long, value_parser = ["queued", "sent", "failed"])]
        status: Option<String>,
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Deliver what is due now (to outbox.dir / BUZON_OUTBOX_DIR, else [smtp]).
    Flush,
    /// Queue a failed (or waiting) mail again, due now with a fresh retry
    /// schedule, and try to deliver it.
    Retry { id: i64 },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
    Csv,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ShowFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let failure = if matches!(cli.command, Command::Ingest { .. }) {
        ExitCode::from(EX_TEMPFAIL)
    } else {
        ExitCode::FAILURE
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("buzon: cannot start the async runtime: {e}");
            return failure;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("buzon: {e:#}");
            failure
        }
    }
}

/// Library logs that carry secrets, silenced whatever `BUZON_LOG` says:
/// async-imap traces every line it sends (LOGIN passwords, the XOAUTH2
/// token), lettre's debug lines show the SMTP AUTH exchange.
const SECRET_BEARING_LOGS: &[&str] = &[
    "async_imap::imap_stream=off",
    "lettre::transport::smtp::client=info",
];

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("BUZON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    for directive in SECRET_BEARING_LOGS {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    if let Command::Demo { dir } = &cli.command {
        return demo(dir.clone()).await;
    }
    let config = load_config(&cli.config)?;
    // Rule commands need no database: admins run them before a reload.
    if let Command::Rules { command } = cli.command {
        return rules(&config, command);
    }
    let store = open_store(&config).await?;
    let code = match cli.command {
        Command::Ingest { mailbox, files } => ingest(&config, &store, &mailbox, &files).await?,
        Command::Tickets { command } => tickets(&config, &store, command).await?,
        Command::Quarantine { command } => quarantine(&config, &store, command).await?,
        Command::Outbox { command } => outbox(&config, &store, command).await?,
        Command::Rules { .. } => ExitCode::SUCCESS,
        Command::Report {
            from,
            to,
            format,
            by,
            bom,
        } => report(&config, &store, &from, &to, format, by.as_deref(), bom).await?,
        Command::Alerts { owner, all, format } => {
            let mut rows = store.alerts(owner.as_deref(), all).await?;
            match format {
                ShowFormat::Text => print_out(&view::alerts_text(
                    alerts_with_labels(&config, &mut rows),
                    &config.deployment.ticket_prefix,
                    &time_zone(&config),
                    now_ms(),
                ))?,
                ShowFormat::Json => print_out(&format!(
                    "{:#}\n",
                    view::alerts_json(&rows, &config.deployment.ticket_prefix)
                ))?,
            }
            ExitCode::SUCCESS
        }
        Command::Migrate => {
            println!("database is up to date ({})", store.backend_name());
            ExitCode::SUCCESS
        }
        Command::Run { once } => run(&config, &store, once).await?,
        Command::Demo { .. } => ExitCode::SUCCESS,
    };
    store.close().await;
    Ok(code)
}

fn load_config(path: &Path) -> Result<Config> {
    Config::load(Sources {
        file: Some(path.to_path_buf()),
        env: std::env::vars().collect(),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn open_store(config: &Config) -> Result<Store> {
    Store::open(&config.database.url, config.database.max_connections)
        .await
        .context("cannot open the store")
}

fn time_zone(config: &Config) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(&config.deployment.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
}

async fn ingest(
    config: &Config,
    store: &Store,
    mailbox: &str,
    files: &[PathBuf],
) -> Result<ExitCode> {
    config.mailbox(mailbox).map_err(anyhow::Error::msg)?;
    let pipeline = Pipeline::new(config, store).await?;
    let mut inputs: Vec<(String, Vec<u8>)> = Vec::new();
    if files.is_empty() {
        let mut raw = Vec::new();
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("cannot read the message from stdin")?;
        inputs.push(("-".into(), raw));
    } else {
        for f in files {
            let raw = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
            inputs.push((f.display().to_string(), raw));
        }
    }
    let prefix = &config.deployment.ticket_prefix;
    let mut worst = ExitCode::SUCCESS;
    for (name, raw) in inputs {
        match pipeline.ingest(&raw, mailbox).await {
            Ok(Outcome::Created {
                ticket,
                acknowledged,
            }) => println!(
                "{name}: {} created{}",
                display_number(prefix, ticket),
                if acknowledged {
                    ", acknowledgement queued"
                } else {
                    ""
                }
            ),
            Ok(Outcome::Appended { ticket, reopened }) => println!(
                "{name}: {} follow-up appended{}",
                display_number(prefix, ticket),
                if reopened { ", ticket reopened" } else { "" }
            ),
            Ok(Outcome::Duplicate {
                ticket,
                new_mailbox,
            }) => println!(
                "{name}: {} already stored{}",
                display_number(prefix, ticket),
                if new_mailbox {
                    format!(", also arrived in {mailbox}")
                } else {
                    String::new()
                }
            ),
            Ok(Outcome::Quarantined { id, reason }) => {
                println!("{name}: quarantined as Q{id}: {reason}")
            }
            Err(e) => {
                eprintln!("buzon: {name}: not stored: {e}");
                worst = ExitCode::from(EX_TEMPFAIL);
            }
        }
    }
    flush_after(config, store).await;
    Ok(worst)
}

/// Delivers due outbox rows when a transport is configured; otherwise the
/// daemon will.
async fn flush_outbox(config: &Config, store: &Store) -> Result<Option<(String, DrainReport)>> {
    let Some(transport) = Transport::from_config(config)? else {
        return Ok(None);
    };
    let report = deliver::drain(store, &transport, now_ms()).await?;
    if report.sent + report.failed + report.retrying > 0 {
        tracing::info!(?report, transport = %transport.describe(), "Outbox drained.");
    }
    Ok(Some((transport.describe(), report)))
}

/// After a command stored something: deliver now if possible. The mail is
/// already safe in the outbox, so a delivery problem is reported but does
/// not fail the command (an MTA piping into `ingest` must not retry).
async fn flush_after(config: &Config, store: &Store) {
    if let Err(e) = flush_outbox(config, store).await {
        eprintln!("buzon: outgoing mail stays queued: {e:#}");
    }
}

async fn tickets(config: &Config, store: &Store, command: TicketsCommand) -> Result<ExitCode> {
    let prefix = &config.deployment.ticket_prefix;
    let tz = time_zone(config);
    match command {
        TicketsCommand::List {
            state,
            pipeline,
            owner,
            priority,
            key,
            overdue,
            format,
        } => {
            let labels = buzon::pipeline::load_rules(config).ok();
            let state = state
                .map(|s| parse_labelled(&s, &State::ALL, labels.as_ref(), |r, v| r.state_label(v)))
                .transpose()?
                .map(|s| s.as_str().to_string());
            let priority = priority
                .map(|p| {
                    parse_labelled(&p, &Priority::ALL, labels.as_ref(), |r, v| {
                        r.priority_label(v)
                    })
                })
                .transpose()?
                .map(|p| p.as_str().to_string());
            let key = match key {
                Some(k) => match k.split_once('=') {
                    Some((n, v)) => Some((n.trim().to_string(), v.trim().to_string())),
                    None => bail!("--key takes NAME=VALUE, e.g. --key order=75321"),
                },
                None => None,
            };
            let filter = TicketFilter {
                state,
                pipeline,
                owner,
                priority,
                key,
                overdue_at: overdue.then(now_ms),
                limit: None,
            };
            let mut rows = store.list_tickets(&filter).await?;
            let out = match format {
                ListFormat::Table => {
                    with_labels(labels.as_ref(), &mut rows);
                    view::tickets_table(&rows, prefix, &tz)
                }
                ListFormat::Json => format!("{:#}\n", view::tickets_json(&rows, prefix)),
                ListFormat::Csv => view::tickets_csv(&rows, prefix, &tz),
            };
            print_out(&out)?;
        }
        TicketsCommand::Show { number, format } => {
            let n = ticket_number(prefix, &number)?;
            let mut detail = store.ticket(n).await?;
            match format {
                ShowFormat::Text => {
                    let rules = buzon::pipeline::load_rules(config).ok();
                    with_labels(rules.as_ref(), std::slice::from_mut(&mut detail.ticket));
                    print_out(&view::ticket_text(&detail, prefix, &tz))?
                }
                ShowFormat::Json => print_out(&format!("{:#}\n", serde_json::to_value(&detail)?))?,
            }
        }
        TicketsCommand::Assign {
            number,
            owner,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            agent_for(config, store, agent)
                .await?
                .assign(n, &owner)
                .await?;
            println!("{}: assigned to {owner}", display_number(prefix, n));
            flush_after(config, store).await;
        }
        TicketsCommand::State {
            number,
            state,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            // The agent's pipeline has loaded the rules: their labels name
            // the states.
            let agent = agent_for(config, store, agent).await?;
            let rules = Some(agent.calendar.rules());
            let state = parse_labelled(&state, &State::ALL, rules, |r, v| r.state_label(v))?;
            agent.set_state(n, state).await?;
            println!("{}: {state}", display_number(prefix, n));
            flush_after(config, store).await;
        }
        TicketsCommand::Comment {
            number,
            text,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            agent_for(config, store, agent)
                .await?
                .comment(n, &text)
                .await?;
            println!("{}: note added", display_number(prefix, n));
            flush_after(config, store).await;
        }
        TicketsCommand::Reply {
            number,
            body,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            let agent = agent_for(config, store, agent).await?;
            let body = agent_body(&agent, n, body).await?;
            let id = agent.reply(n, &body).await?;
            println!("{}: reply queued <{id}>", display_number(prefix, n));
            flush_after(config, store).await;
        }
        TicketsCommand::Close {
            number,
            outcome,
            note,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            let outcome: TicketOutcome = outcome.parse().map_err(anyhow::Error::msg)?;
            agent_for(config, store, agent)
                .await?
                .close(n, outcome, note.as_deref())
                .await?;
            println!("{}: done ({})", display_number(prefix, n), outcome.as_str());
            flush_after(config, store).await;
        }
        TicketsCommand::Update {
            number,
            body,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            let agent = agent_for(config, store, agent).await?;
            let body = agent_body(&agent, n, body).await?;
            let id = agent.update(n, &body).await?;
            println!("{}: update queued <{id}>", display_number(prefix, n));
            flush_after(config, store).await;
        }
        TicketsCommand::Request {
            number,
            items,
            note,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            let id = agent_for(config, store, agent)
                .await?
                .request_documents(n, &items, note.as_deref())
                .await?;
            println!(
                "{}: {} document(s) requested <{id}>",
                display_number(prefix, n),
                items.len()
            );
            flush_after(config, store).await;
        }
        TicketsCommand::Due {
            number,
            when,
            first_response,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            let at = local_instant(&when, &tz)?;
            let target = if first_response {
                Target::FirstResponse
            } else {
                Target::Resolution
            };
            agent_for(config, store, agent)
                .await?
                .set_due(n, target, at)
                .await?;
            println!(
                "{}: {} due {}",
                display_number(prefix, n),
                target.as_str(),
                view::local_time(at, &tz)
            );
        }
        TicketsCommand::Classify {
            number,
            priority,
            ticket_type,
            category,
            area,
            pipeline,
            fields,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            let agent = agent_for(config, store, agent).await?;
            let rules = Some(agent.calendar.rules());
            let priority = priority
                .map(|p| parse_labelled(&p, &Priority::ALL, rules, |r, v| r.priority_label(v)))
                .transpose()?;
            let fields = fields
                .iter()
                .map(|f| match f.split_once('=') {
                    Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
                    None => {
                        bail!("--field takes NAME=VALUE, e.g. --field \"medio_ingreso=Teléfono\"")
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let change = Classification {
                priority,
                ticket_type,
                category,
                area,
                pipeline,
                fields: None,
            };
            agent.classify(n, change, &fields).await?;
            println!("{}: classified", display_number(prefix, n));
            flush_after(config, store).await;
        }
        TicketsCommand::Received {
            number,
            item,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            agent_for(config, store, agent)
                .await?
                .received(n, &item)
                .await?;
            println!("{}: received {item}", display_number(prefix, n));
        }
        TicketsCommand::Internal {
            number,
            on,
            off,
            agent,
        } => {
            let n = ticket_number(prefix, &number)?;
            if on == off {
                bail!("say --on (hide from the client) or --off (show again)");
            }
            agent_for(config, store, agent)
                .await?
                .set_internal(n, on)
                .await?;
            println!(
                "{}: {}",
                display_number(prefix, n),
                if on {
                    "internal"
                } else {
                    "visible to the client"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rules(config: &Config, command: RulesCommand) -> Result<ExitCode> {
    let dir_of = |dir: Option<PathBuf>| -> Result<PathBuf> {
        dir.or_else(|| config.rules.dir.clone()).ok_or_else(|| {
            anyhow::anyhow!(
                "no rules directory: pass DIR or set [rules] dir = \"rules\" in the config"
            )
        })
    };
    let (out, ok) = match command {
        RulesCommand::Check { dir } => {
            let (mut out, ok) = buzon::rules::cli::check(&dir_of(dir)?, config);
            // The templates the rules name are checked too, with the same
            // file:line messages the daemon would refuse them with.
            let templates =
                buzon::outbound::templates::Templates::load(config.templates.dir.as_deref());
            match templates {
                Ok(_) => (out, ok),
                Err(e) => {
                    out.push_str(&e.to_string());
                    (out, false)
                }
            }
        }
        RulesCommand::Test { dir } => buzon::rules::cli::test(&dir_of(dir)?, config),
        RulesCommand::Explain {
            mailbox,
            file,
            format,
            dir,
        } => {
            let format = match format {
                ShowFormat::Text => buzon::rules::cli::Format::Text,
                ShowFormat::Json => buzon::rules::cli::Format::Json,
            };
            buzon::rules::cli::explain(&dir_of(dir)?, config, &mailbox, &file, format)
        }
    };
    print_out(&out)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Shows states and priorities in the team's words (`[labels]` of the rule
/// files: "En ejecución", "Alta") on the views meant for people; JSON and
/// CSV keep the canonical names scripts rely on.
/// The tickets with states and priorities in the team's words (`rules`:
/// the rule set already loaded, if any).
fn with_labels(rules: Option<&buzon::rules::RuleSet>, rows: &mut [buzon::store::TicketRow]) {
    let Some(rules) = rules else {
        return;
    };
    for t in rows {
        relabel(rules, &mut t.state, &mut t.priority);
    }
}

/// A canonical state and priority replaced by the rule files' labels.
fn relabel(rules: &buzon::rules::RuleSet, state: &mut String, priority: &mut String) {
    if let Ok(s) = state.parse::<State>() {
        *state = rules.state_label(s).to_string();
    }
    if let Ok(p) = priority.parse::<Priority>() {
        *priority = rules.priority_label(p).to_string();
    }
}

/// The alerts with states and priorities in the team's words, for people.
fn alerts_with_labels<'r>(
    config: &Config,
    rows: &'r mut [buzon::store::AlertRow],
) -> &'r [buzon::store::AlertRow] {
    if let Ok(rules) = buzon::pipeline::load_rules(config) {
        for a in rows.iter_mut() {
            relabel(&rules, &mut a.state, &mut a.priority);
        }
    }
    rows
}

/// A state or priority as the agent wrote it: the canonical name
/// (`waiting_on_contact`) or the team's label from the rule files ("En
/// ejecución"), in any case.
fn parse_labelled<T>(
    text: &str,
    all: &[T],
    rules: Option<&buzon::rules::RuleSet>,
    label: impl Fn(&buzon::rules::RuleSet, T) -> &str,
) -> Result<T>
where
    T: Copy + std::str::FromStr<Err = String>,
{
    let canonical = match text.parse::<T>() {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let wanted = text.trim().to_lowercase();
    let labelled = rules.and_then(|r| {
        all.iter()
            .copied()
            .find(|v| label(r, *v).to_lowercase() == wanted)
    });
    labelled.ok_or_else(|| match rules {
        Some(r) => {
            let names: Vec<String> = all
                .iter()
                .map(|v| format!("\"{}\"", label(r, *v)))
                .collect();
            anyhow::anyhow!("{canonical} (or the team's words: {})", names.join(", "))
        }
        None => anyhow::anyhow!(canonical),
    })
}

/// "2026-12-10 18:00" (or "2026-12-10T18:00", or a date alone: the end of
/// that day) in the deployment's time zone, as Unix ms.
fn local_instant(text: &str, tz: &jiff::tz::TimeZone) -> Result<i64> {
    let text = text.trim();
    let civil = match text.parse::<jiff::civil::DateTime>() {
        Ok(dt) => dt,
        Err(_) => text
            .replace(' ', "T")
            .parse::<jiff::civil::DateTime>()
            .or_else(|_| {
                text.parse::<jiff::civil::Date>()
                    .map(|d| d.to_datetime(jiff::civil::Time::constant(23, 59, 0, 0)))
            })
            .map_err(|_| {
                anyhow::anyhow!(
                    "'{text}' is not a date: write \"2026-12-10 18:00\" or \"2026-12-10\" (local time)"
                )
            })?,
    };
    let zoned = civil
        .to_zoned(tz.clone())
        .map_err(|e| anyhow::anyhow!("'{text}' does not exist in that time zone: {e}"))?;
    Ok(zoned.timestamp().as_millisecond())
}

/// The text of an agent's mail: from a file, or a template filled in for
/// the ticket.
async fn agent_body(agent: &Agent<'_>, ticket: i64, args: BodyArgs) -> Result<String> {
    match (args.body_file, args.template) {
        (Some(path), _) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display())),
        (None, Some(name)) => Ok(agent
            .template_body(ticket, &name, args.note.as_deref())
            .await?),
        (None, None) => bail!("write the text with --body-file FILE or --template NAME"),
    }
}

fn ticket_number(prefix: &str, text: &str) -> Result<i64> {
    parse_number(prefix, text).ok_or_else(|| {
        anyhow::anyhow!("'{text}' is not a ticket number: write it as 1042 or {prefix}1042")
    })
}

async fn agent_for<'a>(
    config: &'a Config,
    store: &'a Store,
    name: Option<String>,
) -> Result<Agent<'a>> {
    let pipeline = Pipeline::new(config, store).await?;
    let name = name
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "agent".into());
    Ok(Agent {
        config,
        store,
        signer: pipeline.signer().clone(),
        templates: pipeline.templates().clone(),
        name,
        calendar: pipeline.calendar(),
        clock: None,
    })
}

async fn quarantine(
    config: &Config,
    store: &Store,
    command: QuarantineCommand,
) -> Result<ExitCode> {
    match command {
        QuarantineCommand::List { format } => {
            let rows = store.quarantine_list().await?;
            match format {
                ShowFormat::Text => print_out(&view::quarantine_table(&rows, &time_zone(config)))?,
                ShowFormat::Json => print_out(&format!(
                    "{:#}\n",
                    serde_json::json!({ "quarantine": rows })
                ))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Retry { id } => {
            let (mailbox, raw) = store.quarantine_raw(id).await?;
            let pipeline = Pipeline::new(config, store).await?;
            let prefix = &config.deployment.ticket_prefix;
            // The mail is still in quarantine under the same hash; the
            // pipeline re-quarantines (same row) if it still fails.
            let outcome = pipeline.ingest(&raw, &mailbox).await?;
            let now = now_ms();
            let code = match outcome {
                Outcome::Created { ticket, .. }
                | Outcome::Appended { ticket, .. }
                | Outcome::Duplicate { ticket, .. } => {
                    store
                        .quarantine_update(
                            id,
                            "released",
                            "released into a ticket",
                            Some(ticket),
                            now,
                        )
                        .await?;
                    println!("Q{id}: released into {}", display_number(prefix, ticket));
                    ExitCode::SUCCESS
                }
                Outcome::Quarantined { reason, .. } => {
                    store
                        .quarantine_update(id, "held", &reason, None, now)
                        .await?;
                    println!("Q{id}: still cannot be ticketed: {reason}");
                    ExitCode::FAILURE
                }
            };
            flush_after(config, store).await;
            Ok(code)
        }
    }
}

async fn outbox(config: &Config, store: &Store, command: OutboxCommand) -> Result<ExitCode> {
    match command {
        OutboxCommand::List { status, format } => {
            let rows = store.outbox_list(status.as_deref()).await?;
            match format {
                ShowFormat::Text => print_out(&view::outbox_table(
                    &rows,
                    &config.deployment.ticket_prefix,
                    &time_zone(config),
                ))?,
                ShowFormat::Json => {
                    print_out(&format!("{:#}\n", serde_json::json!({ "outbox": rows })))?
                }
            }
        }
        OutboxCommand::Flush => match flush_outbox(config, store).await? {
            Some((to, report)) => print_drain(&to, &report),
            None => bail!(
                "no transport configured: set [smtp] (host, port, tls, ...) or outbox.dir / BUZON_OUTBOX_DIR"
            ),
        },
        OutboxCommand::Retry { id } => {
            let Some(row) = store.outbox_get(id).await? else {
                bail!("there is no outgoing mail {id}: see `buzon outbox list`");
            };
            if row.status == "sent" {
                bail!(
                    "outgoing mail {id} was already sent{}: nothing to retry",
                    row.sent_at
                        .map(|t| format!(" ({})", view::local_time(t, &time_zone(config))))
                        .unwrap_or_default()
                );
            }
            store.outbox_requeue(id, now_ms()).await?;
            println!(
                "outgoing mail {id} ({} to {}) queued again; it was {}{}",
                row.kind,
                row.rcpt_to.join(", "),
                row.status,
                row.last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
            if let Some((to, report)) = flush_outbox(config, store).await? {
                print_drain(&to, &report);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn report(
    config: &Config,
    store: &Store,
    from: &str,
    to: &str,
    format: ReportFormat,
    by: Option<&str>,
    bom: bool,
) -> Result<ExitCode> {
    use buzon::report::{self, GroupBy};
    let tz = time_zone(config);
    let (from_date, to_date) = (report::parse_date(from)?, report::parse_date(to)?);
    let (start, end) = report::range_ms(from_date, to_date, &tz)?;
    let by: GroupBy = by.unwrap_or("none").parse()?;
    let rows = store.report_rows(start, end).await?;
    // One clock for every ticket, so "overdue" means the same in each row.
    let now = now_ms();
    let prefix = &config.deployment.ticket_prefix;
    let out = match format {
        ReportFormat::Csv => {
            let csv = view::report_csv(&rows, now, prefix, &tz);
            if bom {
                format!("{}{csv}", view::UTF8_BOM)
            } else {
                csv
            }
        }
        ReportFormat::Json | ReportFormat::Text => {
            let summary = report::Report {
                from: from_date.to_string(),
                to: to_date.to_string(),
                time_zone: config.deployment.time_zone.clone(),
                by: by.as_str(),
                groups: report::groups(&rows, by, now),
            };
            if format == ReportFormat::Json {
                format!("{:#}\n", serde_json::to_value(&summary)?)
            } else {
                view::report_table(&summary)
            }
        }
    };
    print_out(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn print_drain(to: &str, report: &DrainReport) {
    println!(
        "outbox: {} sent, {} to retry, {} failed ({to})",
        report.sent, report.retrying, report.failed
    );
}

async fn run(config: &Config, store: &Store, once: bool) -> Result<ExitCode> {
    let config = std::sync::Arc::new(config.clone());
    if !once {
        buzon::daemon::run(config, store.clone()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = buzon::daemon::run_once(config, store.clone()).await?;
    let mut code = ExitCode::SUCCESS;
    for (folder, result) in report {
        match result {
            Ok(s) => println!(
                "{folder}: {} stored, {} already stored, {} quarantined",
                s.stored, s.duplicates, s.quarantined
            ),
            Err(e) => {
                eprintln!("buzon: {folder}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

async fn demo(dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("buzon-demo-{}", std::process::id())),
    };
    let run = buzon::demo::run(&dir).await?;
    let mails: usize = run.teams.iter().map(|t| t.results.len()).sum();
    println!(
        "buzon demo: {mails} sample mails through the real pipeline, each team with its own rules\n"
    );
    for team in &run.teams {
        let prefix = &team.config.deployment.ticket_prefix;
        println!(
            "== {} (examples/{})",
            team.config.deployment.name, team.team
        );
        for (name, mailbox, outcome) in &team.results {
            println!(
                "  {mailbox:<18} {name:<44} {}",
                demo_outcome(prefix, outcome)
            );
        }
        let mut rows = team.store.list_tickets(&TicketFilter::default()).await?;
        with_labels(
            buzon::pipeline::load_rules(&team.config).ok().as_ref(),
            &mut rows,
        );
        println!(
            "\n{}",
            view::tickets_table(&rows, prefix, &time_zone(&team.config))
        );
        println!(
            "  acknowledgements: {} written to {}",
            team.delivered.sent,
            team.dir.join("outbox").display()
        );
        println!(
            "  explore:          buzon --config {} tickets show 1\n",
            team.dir.join("buzon.toml").display()
        );
        team.store.close().await;
    }
    Ok(ExitCode::SUCCESS)
}

fn demo_outcome(prefix: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Created {
            ticket,
            acknowledged,
        } => format!(
            "{} created{}",
            display_number(prefix, *ticket),
            if *acknowledged {
                ", acknowledged"
            } else {
                ", not acknowledged (its history says why)"
            }
        ),
        Outcome::Duplicate { ticket, .. } => format!(
            "{} same message, recorded as one more arrival",
            display_number(prefix, *ticket)
        ),
        Outcome::Appended { ticket, .. } => format!(
            "{} follow-up of an earlier mail",
            display_number(prefix, *ticket)
        ),
        Outcome::Quarantined { id, reason } => format!("quarantined Q{id}: {reason}"),
    }
}

/// Prints, treating a closed pipe (`| head`) as success.
fn print_out(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[allow(dead_code)]
fn is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
