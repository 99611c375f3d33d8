//! `buzon outbox` (outgoing mail) and `buzon run` (the daemon).

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use buzon::config::Config;
use buzon::store::{Store, now_ms};
use buzon::ticket::OutboxStatus;
use buzon::view;

use super::{ShowFormat, flush_outbox, outln, print_drain, print_out, time_zone};

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Outgoing mail: kind, ticket, recipients, attempts, next attempt, last error.
    List {
        /// queued, sent or failed.
        #[arg(long, value_parser = ["queued", "sent", "failed"])]
        status: Option<String>,
        /// text for people, json for programs.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Deliver what is due now (to outbox.dir / BUZON_OUTBOX_DIR, else [smtp]).
    Flush,
    /// Queue a failed (or waiting) mail again, due now with a fresh retry
    /// schedule, and try to deliver it.
    Retry {
        /// The outbox id (`outbox list`).
        id: i64,
    },
}

pub async fn run(config: &Config, store: &Store, command: OutboxCommand) -> Result<ExitCode> {
    match command {
        OutboxCommand::List { status, format } => {
            let status = status
                .map(|s| s.parse::<OutboxStatus>().map_err(anyhow::Error::msg))
                .transpose()?;
            let rows = store.outbox_list(status).await?;
            match format {
                ShowFormat::Text => print_out(&view::outbox_table(
                    &rows,
                    &config.deployment.ticket_prefix,
                    &time_zone(config),
                ))?,
                ShowFormat::Json => print_out(&format!(
                    "{:#}\n",
                    view::json_times(serde_json::json!({ "outbox": rows }))
                ))?,
            }
        }
        OutboxCommand::Flush => match flush_outbox(config, store).await? {
            Some((to, report)) => print_drain(&to, &report)?,
            None => bail!(
                "no transport configured: set [smtp] (host, port, tls, ...) or outbox.dir / BUZON_OUTBOX_DIR"
            ),
        },
        OutboxCommand::Retry { id } => {
            let Some(row) = store.outbox_get(id).await? else {
                bail!("there is no outgoing mail {id}: see `buzon outbox list`");
            };
            if row.status == OutboxStatus::Sent {
                bail!(
                    "outgoing mail {id} was already sent{}: nothing to retry",
                    row.sent_at
                        .map(|t| format!(" ({})", view::local_time(t, &time_zone(config))))
                        .unwrap_or_default()
                );
            }
            store.outbox_requeue(id, now_ms()).await?;
            outln!(
                "outgoing mail {id} ({} to {}) queued again; it was {}{}",
                row.kind,
                row.rcpt_to.join(", "),
                row.status,
                row.last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
            if let Some((to, report)) = flush_outbox(config, store).await? {
                print_drain(&to, &report)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn daemon(config: &Config, store: &Store, once: bool) -> Result<ExitCode> {
    let config = std::sync::Arc::new(config.clone());
    if !once {
        buzon::daemon::run(config, store.clone()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = buzon::daemon::run_once(config, store.clone()).await?;
    let mut code = ExitCode::SUCCESS;
    for (folder, result) in report {
        match result {
            Ok(s) => outln!(
                "{folder}: {} stored, {} already stored, {} quarantined",
                s.stored,
                s.duplicates,
                s.quarantined
            ),
            Err(e) => {
                eprintln!("buzon: {folder}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
