//! `buzon tickets`: list and show (reading), and every action on tickets,
//! which `act` hands to the action layer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use buzon::config::Config;
use buzon::store::{Store, TicketFilter, now_ms};
use buzon::ticket::State;
use buzon::view;

use super::labels;
use super::{ListFormat, ShowFormat, print_out, ticket_number, time_zone};

#[derive(Subcommand)]
pub enum TicketsCommand {
    /// List tickets; the filters combine. By default the tickets in
    /// progress (every state but done), as seed 001's tray shows them.
    List {
        /// A state, by name or the team's word; repeat for several.
        #[arg(long)]
        state: Vec<String>,
        /// Every ticket, finished ones too.
        #[arg(long, conflicts_with = "state")]
        all: bool,
        /// A pipeline, by name.
        #[arg(long)]
        pipeline: Option<String>,
        /// A person, by key or name.
        #[arg(long)]
        owner: Option<String>,
        /// A priority, by name or the team's word ("alta").
        #[arg(long)]
        priority: Option<String>,
        /// An extracted key, e.g. `order=75321`.
        #[arg(long)]
        key: Option<String>,
        /// Only tickets past their due date, most overdue first.
        #[arg(long)]
        overdue: bool,
        /// Only the tickets a search finds (as `tickets search`), best first.
        #[arg(long)]
        search: Option<String>,
        /// table for people; json and csv (canonical names) for programs.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Find tickets by what people remember: the ticket number, an order
    /// number or key (exact or its beginning), an address or a name, words
    /// of the subject or of the messages people wrote (mail received,
    /// agents' replies and updates, internal comments). Case and accents
    /// do not matter; "two words" is a phrase; -word leaves out. Best
    /// first, each with where it matched; every state unless --state.
    Search {
        /// What to look for, e.g. `"documento observado" notaria -anulado`.
        query: String,
        /// A state, by name or the team's word; repeat for several.
        #[arg(long)]
        state: Vec<String>,
        /// A pipeline, by name.
        #[arg(long)]
        pipeline: Option<String>,
        /// A person, by key or name.
        #[arg(long)]
        owner: Option<String>,
        /// A priority, by name or the team's word ("alta").
        #[arg(long)]
        priority: Option<String>,
        /// At most this many tickets.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// text for people, json for programs.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// One ticket: fields, deadlines, alerts, documents, messages, history.
    Show {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// text for people, json for programs.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Open a ticket for a request that came by phone or in person (or a
    /// mail written down by hand). The rules route it like mail, with its
    /// channel; the requester gets the acknowledgement when they have an
    /// address.
    New(super::act::NewArgs),
    /// Take a ticket nobody owns (an agent of its pipeline may).
    Take {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
    },
    /// Give the ticket to someone (a person of [people], by key or name).
    Assign {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// A person of [people], by key or name.
        owner: String,
    },
    /// Move the ticket to another open state (new, open, waiting_on_contact,
    /// waiting_on_us, or the team's word for one).
    State {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// The new state, by name or the team's word.
        state: String,
    },
    /// Move a finished ticket back to an open state (default: open); the
    /// owner is told.
    Reopen {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// The state to reopen it in (name or the team's word).
        #[arg(long)]
        state: Option<String>,
        /// Why, for the history and the owner.
        #[arg(long)]
        note: Option<String>,
    },
    /// Add an internal note (never mailed).
    Comment {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// The note.
        text: String,
    },
    /// Mail the requester and participants, threaded, through the outbox.
    Reply {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        #[command(flatten)]
        body: BodyArgs,
    },
    /// Finish the ticket and tell the contact.
    Close {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// success ("finalizada con éxito") or failure ("sin éxito").
        #[arg(long)]
        outcome: String,
        /// Written in the closing message to the contact.
        #[arg(long)]
        note: Option<String>,
    },
    /// Mail a case update ("novedad") to the client and the additional recipients.
    Update {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        #[command(flatten)]
        body: BodyArgs,
    },
    /// Ask the client for documents; the items become a checklist on the ticket.
    Request {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// A document to ask for (repeat for several).
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        /// Written in the mail to the client, before the list.
        #[arg(long)]
        note: Option<String>,
    },
    /// Move a deadline by hand ("Fecha Límite").
    ///
    /// The resolution's, or with --first-response the first answer's:
    /// "2026-12-10 18:00" or "2026-12-10" (end of that day), in
    /// deployment.time_zone. The old date's alert clears.
    Due {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// The new due time: "2026-12-10 18:00", or a date for the end of that day.
        when: String,
        /// Move the first-response deadline instead of the resolution's.
        #[arg(long)]
        first_response: bool,
    },
    /// Reclassify: priority, type, category, area, pipeline, team fields.
    ///
    /// Types and field values must be those of the rule files; priority
    /// takes the team's words too ("Alta").
    #[command(alias = "set")]
    Classify {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// The priority, by name or the team's word ("Alta").
        #[arg(long)]
        priority: Option<String>,
        /// A type of the rule files.
        #[arg(long = "type")]
        ticket_type: Option<String>,
        /// A category.
        #[arg(long)]
        category: Option<String>,
        /// An area.
        #[arg(long)]
        area: Option<String>,
        /// The pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        /// A team field, NAME=VALUE (repeat for several).
        #[arg(long = "field")]
        fields: Vec<String>,
    },
    /// Mark a requested document as received.
    Received {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// The document, as requested (case and accents ignored).
        item: String,
    },
    /// Hide the ticket from the client (no mail to them) or show it again.
    Internal {
        /// Ticket number (`1042` or `T-1042`).
        number: String,
        /// Hide it: no mail of any kind goes to the client.
        #[arg(long, conflicts_with = "off")]
        on: bool,
        /// Show it to the client again.
        #[arg(long)]
        off: bool,
    },
}

/// What an agent writes: a file, or a template filled in for the ticket.
#[derive(clap::Args)]
pub struct BodyArgs {
    /// The text, from a file (`-`: standard input).
    #[arg(
        long,
        conflicts_with = "template",
        required_unless_present = "template"
    )]
    pub body_file: Option<PathBuf>,
    /// A template of templates.dir (NAME.txt), filled in for the ticket;
    /// its Subject line is not used (the mail keeps the ticket's subject).
    #[arg(long)]
    pub template: Option<String>,
    /// With --template: the text of {{ note }}.
    #[arg(long, requires = "template")]
    pub note: Option<String>,
}

pub async fn run(
    config: &Config,
    store: &Store,
    actor: Option<String>,
    command: TicketsCommand,
) -> Result<ExitCode> {
    match command {
        TicketsCommand::List {
            state,
            all,
            pipeline,
            owner,
            priority,
            key,
            overdue,
            search,
            format,
        } => {
            let filter = ListArgs {
                state,
                all,
                pipeline,
                owner,
                priority,
                key,
                overdue,
                search,
            };
            list(config, store, filter, format).await
        }
        TicketsCommand::Search {
            query,
            state,
            pipeline,
            owner,
            priority,
            limit,
            format,
        } => {
            let args = ListArgs {
                all: state.is_empty(),
                state,
                pipeline,
                owner,
                priority,
                key: None,
                overdue: false,
                search: Some(query),
            };
            search(config, store, args, limit, format).await
        }
        TicketsCommand::Show { number, format } => show(config, store, &number, format).await,
        action => super::act::run(config, store, actor, action).await,
    }
}

/// The filters of `tickets list`, as typed.
struct ListArgs {
    state: Vec<String>,
    all: bool,
    pipeline: Option<String>,
    owner: Option<String>,
    priority: Option<String>,
    key: Option<String>,
    overdue: bool,
    search: Option<String>,
}

async fn list(
    config: &Config,
    store: &Store,
    args: ListArgs,
    format: ListFormat,
) -> Result<ExitCode> {
    let rules = buzon::pipeline::load_rules(config).ok();
    let filter = filter(config, rules.as_ref(), args)?;
    let rows = store.list_tickets(&filter).await?;
    let prefix = &config.deployment.ticket_prefix;
    let tz = time_zone(config);
    let out = match format {
        ListFormat::Table => {
            view::tickets_table(&rows, prefix, &tz, view::Labels::of(rules.as_ref()))
        }
        ListFormat::Json => format!("{:#}\n", view::tickets_json(&rows, prefix)),
        ListFormat::Csv => view::tickets_csv(&rows, prefix, &tz),
    };
    print_out(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The store's filter: the states named (in progress by default), the
/// owner found among the people by key or name.
fn filter(
    config: &Config,
    rules: Option<&buzon::rules::RuleSet>,
    args: ListArgs,
) -> Result<TicketFilter> {
    let states = match (args.all, args.state.is_empty()) {
        (true, _) => Vec::new(),
        (false, true) => State::ALL
            .into_iter()
            .filter(|s| *s != State::Done)
            .collect(),
        (false, false) => args
            .state
            .iter()
            .map(|s| labels::state(s, rules))
            .collect::<Result<Vec<_>>>()?,
    };
    let priority = args
        .priority
        .map(|p| labels::priority(&p, rules))
        .transpose()?;
    let owner = match args.owner {
        Some(o) if !config.people.is_empty() => Some(
            buzon::actions::people::find(config, &o)
                .map_err(anyhow::Error::msg)?
                .id,
        ),
        other => other,
    };
    let key = match args.key {
        Some(k) => match k.split_once('=') {
            Some((n, v)) => Some((n.trim().to_string(), v.trim().to_string())),
            None => bail!("--key takes NAME=VALUE, e.g. --key order=75321"),
        },
        None => None,
    };
    Ok(TicketFilter {
        states,
        pipeline: args.pipeline,
        owner,
        priority,
        key,
        overdue_at: args.overdue.then(now_ms),
        search_number: args
            .search
            .as_deref()
            .and_then(|s| buzon::ticket::parse_number(&config.deployment.ticket_prefix, s)),
        search: args.search,
        ..TicketFilter::default()
    })
}

/// `tickets search`: the tickets found, each with where it matched.
async fn search(
    config: &Config,
    store: &Store,
    args: ListArgs,
    limit: i64,
    format: ShowFormat,
) -> Result<ExitCode> {
    let rules = buzon::pipeline::load_rules(config).ok();
    let mut filter = filter(config, rules.as_ref(), args)?;
    filter.limit = Some(limit.max(1));
    let hits = store.search(&filter).await?;
    let prefix = &config.deployment.ticket_prefix;
    let out = match format {
        ShowFormat::Text => view::search_text(
            &hits,
            prefix,
            &time_zone(config),
            view::Labels::of(rules.as_ref()),
        ),
        ShowFormat::Json => format!("{:#}\n", view::search_json(&hits, prefix)),
    };
    print_out(&out)?;
    Ok(ExitCode::SUCCESS)
}

async fn show(
    config: &Config,
    store: &Store,
    number: &str,
    format: ShowFormat,
) -> Result<ExitCode> {
    let prefix = &config.deployment.ticket_prefix;
    let n = ticket_number(prefix, number)?;
    let detail = store.ticket(n).await?;
    match format {
        ShowFormat::Text => {
            let rules = buzon::pipeline::load_rules(config).ok();
            let labels = view::Labels::of(rules.as_ref());
            print_out(&view::ticket_text(
                &detail,
                prefix,
                &time_zone(config),
                labels,
            ))?
        }
        ShowFormat::Json => print_out(&format!(
            "{:#}\n",
            view::json_times(serde_json::to_value(&detail)?)
        ))?,
    }
    Ok(ExitCode::SUCCESS)
}
