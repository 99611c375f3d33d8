//! The actions of `buzon tickets`, as a thin adapter: the arguments become
//! one call of the action layer (`buzon::actions::Agent`), which checks the
//! permission and does the work; what it did is printed in Spanish.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use buzon::actions::{Agent, Change, Done, NewRequest};
use buzon::config::Config;
use buzon::outbound::plan::owner_name;
use buzon::store::Store;
use buzon::ticket::{Channel, Outcome};
use buzon::ticket::{Classification, Target};

use super::labels;
use super::tickets::{BodyArgs, TicketsCommand};
use super::{flush_after, outln, ticket_number};

/// `tickets new`: a request written down by hand.
#[derive(clap::Args)]
pub struct NewArgs {
    /// How it came: phone, in_person or email (teléfono, presencial, correo).
    #[arg(long, default_value = "phone")]
    channel: String,
    /// The requester's mail address (they get the acknowledgement).
    #[arg(long)]
    requester: Option<String>,
    /// The requester's name.
    #[arg(long)]
    name: Option<String>,
    /// What it is about: the ticket's subject.
    #[arg(long)]
    subject: String,
    /// What they asked; `-` reads it from standard input.
    #[arg(long)]
    body: Option<String>,
    /// A person to own it, over the rules' choice.
    #[arg(long)]
    owner: Option<String>,
    /// The [mailboxes.NAME] it belongs to (default: the only one).
    #[arg(long)]
    mailbox: Option<String>,
}

pub async fn run(
    config: &Config,
    store: &Store,
    actor: Option<String>,
    command: TicketsCommand,
) -> Result<ExitCode> {
    let Some(actor) = actor else {
        bail!("{}", who_is_acting(config));
    };
    let agent = Agent::open(config, store, &actor).await?;
    let done = act(config, &agent, command).await?;
    for line in describe(config, &agent, &done) {
        outln!("{line}");
    }
    flush_after(config, store).await;
    Ok(ExitCode::SUCCESS)
}

/// Asked when nobody said who is acting: never guessed from `$USER`.
fn who_is_acting(config: &Config) -> String {
    let people: Vec<&str> = config.people.keys().map(String::as_str).collect();
    match people.as_slice() {
        [] => "¿quién actúa? Declare al equipo en [people.NOMBRE] (role = \"admin\" o \"agent\") e indique --as NOMBRE o BUZON_AS=NOMBRE".into(),
        _ => format!(
            "¿quién actúa? Indique --as NOMBRE o BUZON_AS=NOMBRE, una de estas personas: {}",
            people.join(", ")
        ),
    }
}

async fn act(config: &Config, agent: &Agent<'_>, command: TicketsCommand) -> Result<Done> {
    let prefix = &config.deployment.ticket_prefix;
    let n = |text: &str| ticket_number(prefix, text);
    let rules = Some(agent.rules());
    Ok(match command {
        TicketsCommand::New(args) => agent.create(&new_request(args)?).await?,
        TicketsCommand::Take { number } => agent.take(n(&number)?).await?,
        TicketsCommand::Assign { number, owner } => agent.assign(n(&number)?, &owner).await?,
        TicketsCommand::State { number, state } => {
            let state = labels::state(&state, rules)?;
            agent.set_state(n(&number)?, state).await?
        }
        TicketsCommand::Reopen {
            number,
            state,
            note,
        } => {
            let state = state.map(|s| labels::state(&s, rules)).transpose()?;
            agent.reopen(n(&number)?, state, note.as_deref()).await?
        }
        TicketsCommand::Comment { number, text } => agent.comment(n(&number)?, &text).await?,
        TicketsCommand::Reply { number, body } => {
            let ticket = n(&number)?;
            let text = body_text(agent, ticket, body).await?;
            agent.reply(ticket, &text).await?
        }
        TicketsCommand::Update { number, body } => {
            let ticket = n(&number)?;
            let text = body_text(agent, ticket, body).await?;
            agent.update(ticket, &text).await?
        }
        TicketsCommand::Close {
            number,
            outcome,
            note,
        } => {
            let outcome: Outcome = outcome.parse().map_err(anyhow::Error::msg)?;
            agent.close(n(&number)?, outcome, note.as_deref()).await?
        }
        TicketsCommand::Request {
            number,
            items,
            note,
        } => {
            agent
                .request_documents(n(&number)?, &items, note.as_deref())
                .await?
        }
        TicketsCommand::Received { number, item } => agent.received(n(&number)?, &item).await?,
        TicketsCommand::Due {
            number,
            when,
            first_response,
        } => {
            let at = buzon::actions::local_instant(&when, agent.time_zone())
                .map_err(anyhow::Error::msg)?;
            let target = match first_response {
                true => Target::FirstResponse,
                false => Target::Resolution,
            };
            agent.set_due(n(&number)?, target, at).await?
        }
        TicketsCommand::Classify {
            number,
            priority,
            ticket_type,
            category,
            area,
            pipeline,
            fields,
        } => {
            let change = Classification {
                priority: priority.map(|p| labels::priority(&p, rules)).transpose()?,
                ticket_type,
                category,
                area,
                pipeline,
                fields: None,
            };
            agent
                .classify(n(&number)?, change, &field_pairs(&fields)?)
                .await?
        }
        TicketsCommand::Internal { number, on, off } => {
            if on == off {
                bail!("indique --on (ocultar al cliente) o --off (mostrarlo de nuevo)");
            }
            agent.set_internal(n(&number)?, on).await?
        }
        TicketsCommand::List { .. }
        | TicketsCommand::Show { .. }
        | TicketsCommand::Search { .. } => {
            bail!("list and show change nothing")
        }
    })
}

fn new_request(args: NewArgs) -> Result<NewRequest> {
    let body = match args.body.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the request from stdin")?;
            text
        }
        Some(text) => text.to_string(),
        None => String::new(),
    };
    Ok(NewRequest {
        channel: args
            .channel
            .parse::<Channel>()
            .map_err(anyhow::Error::msg)?,
        mailbox: args.mailbox,
        requester: args.requester,
        name: args.name,
        subject: args.subject,
        body,
        owner: args.owner,
    })
}

/// `NAME=VALUE` pairs of `--field`.
fn field_pairs(fields: &[String]) -> Result<Vec<(String, String)>> {
    fields
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_string(), v.trim().to_string())),
            None => bail!("--field lleva NOMBRE=VALOR, p. ej. --field \"medio_ingreso=Teléfono\""),
        })
        .collect()
}

/// The text of an agent's mail: from a file (`-`: stdin), or a template
/// filled in for the ticket.
async fn body_text(agent: &Agent<'_>, ticket: i64, args: BodyArgs) -> Result<String> {
    match (args.body_file, args.template) {
        (Some(path), _) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the text from stdin")?;
            Ok(text)
        }
        (Some(path), _) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display())),
        (None, Some(name)) => Ok(agent
            .template_body(ticket, &name, args.note.as_deref())
            .await?),
        (None, None) => bail!("escriba el texto con --body-file ARCHIVO o --template NOMBRE"),
    }
}

/// What the action did, one line per change, in Spanish.
fn describe(config: &Config, agent: &Agent<'_>, done: &Done) -> Vec<String> {
    let person = |id: &str| owner_name(config, id);
    let id_of = |kind: &str| {
        done.queued
            .iter()
            .find(|q| q.kind == kind)
            .map(|q| format!(" <{}>", q.message_id))
            .unwrap_or_default()
    };
    done.changes
        .iter()
        .map(|c| {
            let what = match c {
                Change::Created {
                    channel,
                    pipeline,
                    owner,
                    acknowledged,
                } => format!(
                    "creado ({}) en «{pipeline}»{}{}",
                    channel.label(),
                    owner
                        .as_deref()
                        .map(|o| format!(", a cargo de {}", person(o)))
                        .unwrap_or_else(|| ", sin responsable".into()),
                    if *acknowledged {
                        ", acuse con el número en cola"
                    } else {
                        ", sin acuse (el historial dice por qué)"
                    }
                ),
                Change::Owner { after, .. } => format!("asignado a {}", person(after)),
                Change::State { after, .. } => format!("ahora «{}»", agent.state_label(*after)),
                Change::Reopened { state } => {
                    format!("reabierto en «{}»", agent.state_label(*state))
                }
                Change::Closed { outcome } => match outcome {
                    Outcome::Success => "finalizado con éxito".into(),
                    Outcome::Failure => "finalizado sin éxito".into(),
                },
                Change::Commented => "comentario agregado".into(),
                Change::Mailed { kind } => match *kind {
                    "reply" => format!("respuesta al cliente en cola{}", id_of("reply")),
                    "update" => format!("novedad al cliente en cola{}", id_of("update")),
                    other => format!("correo al cliente en cola{}", id_of(other)),
                },
                Change::Classified { said } => format!("reclasificado: {}", said.join("; ")),
                Change::Due { target, at } => format!(
                    "{} vence {}",
                    match target {
                        Target::FirstResponse => "la primera respuesta",
                        Target::Resolution => "la resolución",
                    },
                    buzon::view::local_time(*at, agent.time_zone())
                ),
                Change::Visibility { internal: true } => "interno: no se escribe al cliente".into(),
                Change::Visibility { internal: false } => "visible para el cliente".into(),
                Change::DocumentsRequested { items } => {
                    format!(
                        "{} documento(s) pedido(s): {}",
                        items.len(),
                        items.join("; ")
                    )
                }
                Change::DocumentReceived { item } => format!("recibido: {item}"),
            };
            format!("{}: {what}", done.number)
        })
        .collect()
}
