//! `buzon webhooks`: what was told to other systems, what gave up, and
//! retrying it.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use buzon::config::Config;
use buzon::store::{Store, now_ms};
use buzon::ticket::OutboxStatus;
use buzon::view;

use super::{ShowFormat, outln, print_out, time_zone};

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Deliveries: endpoint, event, ticket, attempts, next attempt, last error.
    List {
        /// Only the ones that gave up (to retry with `webhooks retry ID`).
        #[arg(long)]
        failed: bool,
        /// text for people, json for programs.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Queue a delivery that gave up (or is waiting) again, due now with a
    /// fresh retry schedule, and try to deliver what is due.
    Retry {
        /// The delivery's id (`webhooks list`).
        id: i64,
    },
}

pub async fn run(config: &Config, store: &Store, command: WebhooksCommand) -> Result<ExitCode> {
    match command {
        WebhooksCommand::List { failed, format } => {
            let rows = store
                .hook_list(failed.then_some(OutboxStatus::Failed))
                .await?;
            match format {
                ShowFormat::Text => print_out(&view::webhooks_table(
                    &rows,
                    &config.deployment.ticket_prefix,
                    &time_zone(config),
                ))?,
                ShowFormat::Json => print_out(&format!(
                    "{:#}\n",
                    view::json_times(serde_json::json!({ "webhooks": rows }))
                ))?,
            }
        }
        WebhooksCommand::Retry { id } => {
            let Some(row) = store.hook_get(id).await? else {
                bail!("there is no webhook delivery {id}: see `buzon webhooks list`");
            };
            if row.status == OutboxStatus::Sent {
                bail!("webhook delivery {id} was already delivered: nothing to retry");
            }
            store.hook_requeue(id, now_ms()).await?;
            outln!(
                "webhook delivery {id} ({} to {}) queued again; it was {}{}",
                row.kind,
                row.endpoint,
                row.status,
                row.last_error
                    .as_ref()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            );
            if config.webhooks.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            let hooks = buzon::webhooks::Webhooks::load(config)?;
            let report = buzon::webhooks::deliver::Deliverer::new(hooks)?
                .drain(store, &buzon::instance::one_off(), now_ms(), None)
                .await?;
            outln!(
                "webhooks: {} delivered, {} to retry, {} failed",
                report.sent,
                report.retrying,
                report.failed
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
