//! `buzon ingest` (mail files or stdin into tickets) and `buzon quarantine`
//! (the mail that could not be ticketed).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;

use buzon::config::Config;
use buzon::pipeline::{Outcome, Pipeline};
use buzon::store::{Store, now_ms};
use buzon::ticket::display_number;
use buzon::view;

use super::{EX_TEMPFAIL, ShowFormat, flush_after, outln, print_out, time_zone};

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// Mail that could not be ticketed, with the reason, newest first.
    List {
        /// text for people, json for programs.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Run a quarantined mail through the pipeline again.
    Retry {
        /// The quarantine id (`quarantine list`).
        id: i64,
    },
}

pub async fn ingest(
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
            }) => outln!(
                "{name}: {} created{}",
                display_number(prefix, ticket),
                if acknowledged {
                    ", acknowledgement queued"
                } else {
                    ""
                }
            ),
            Ok(Outcome::Appended { ticket, reopened }) => outln!(
                "{name}: {} follow-up appended{}",
                display_number(prefix, ticket),
                if reopened { ", ticket reopened" } else { "" }
            ),
            Ok(Outcome::Duplicate {
                ticket,
                new_mailbox,
            }) => outln!(
                "{name}: {} already stored{}",
                display_number(prefix, ticket),
                if new_mailbox {
                    format!(", also arrived in {mailbox}")
                } else {
                    String::new()
                }
            ),
            Ok(Outcome::Quarantined { id, reason }) => {
                outln!("{name}: quarantined as Q{id}: {reason}")
            }
            Err(e) => {
                eprintln!("buzon: {name}: not stored: {e}");
                worst = ExitCode::from(EX_TEMPFAIL);
            }
        }
    }
    // An agent's answer to a notification is carried out now (the mail
    // is stored: a failure here leaves the job for the daemon).
    let snap = buzon::live::Snapshot::open(std::sync::Arc::new(config.clone()), store).await;
    let ran = match &snap {
        Ok(snap) => buzon::mailroom::run::run_pending(snap, store)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = ran {
        eprintln!("buzon: agents' mails stay queued: {e}");
    }
    flush_after(config, store).await;
    Ok(worst)
}

pub async fn quarantine(
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
                    view::json_times(serde_json::json!({ "quarantine": rows }))
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
                    outln!("Q{id}: released into {}", display_number(prefix, ticket));
                    ExitCode::SUCCESS
                }
                Outcome::Quarantined { reason, .. } => {
                    store
                        .quarantine_update(id, "held", &reason, None, now)
                        .await?;
                    outln!("Q{id}: still cannot be ticketed: {reason}");
                    ExitCode::FAILURE
                }
            };
            flush_after(config, store).await;
            Ok(code)
        }
    }
}
