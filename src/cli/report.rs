//! `buzon report` (counts and times over a date range) and `buzon alerts`
//! (missed deadlines).

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};

use buzon::config::Config;
use buzon::store::{Store, now_ms};
use buzon::view;

use super::{ShowFormat, print_out, time_zone};

#[derive(Args)]
pub struct ReportArgs {
    /// First day, YYYY-MM-DD in deployment.time_zone.
    #[arg(long)]
    from: String,
    /// Last day, included (YYYY-MM-DD).
    #[arg(long)]
    to: String,
    /// text for people; json, or csv with one row per ticket.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// One group per pipeline, owner, type or mailbox (default: one group, "all").
    #[arg(long, value_parser = ["pipeline", "owner", "type", "mailbox"])]
    by: Option<String>,
    /// Start the CSV with the UTF-8 byte order mark, so Excel shows accents.
    #[arg(long)]
    bom: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
}

pub async fn report(config: &Config, store: &Store, args: ReportArgs) -> Result<ExitCode> {
    use buzon::report::{self, GroupBy};
    let ReportArgs {
        from,
        to,
        format,
        by,
        bom,
    } = args;
    let tz = time_zone(config);
    let (from_date, to_date) = (report::parse_date(&from)?, report::parse_date(&to)?);
    let (start, end) = report::range_ms(from_date, to_date, &tz)?;
    let by: GroupBy = by.as_deref().unwrap_or("none").parse()?;
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
                view::report_table(&summary, buzon::pipeline::load_rules(config).ok().as_ref())
            }
        }
    };
    print_out(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The alerts of one person's tickets (found by key or name, like every
/// person on the command line), or everyone's.
pub async fn alerts(
    config: &Config,
    store: &Store,
    owner: Option<&str>,
    all: bool,
    format: ShowFormat,
) -> Result<ExitCode> {
    let owner = match owner {
        // Owners named by rules need not be people when none are declared.
        Some(o) if config.people.is_empty() => Some(o.to_string()),
        Some(o) => Some(
            buzon::actions::people::find(config, o)
                .map_err(anyhow::Error::msg)?
                .id,
        ),
        None => None,
    };
    let rows = store.alerts(owner.as_deref(), all).await?;
    let prefix = &config.deployment.ticket_prefix;
    match format {
        ShowFormat::Text => {
            let rules = buzon::pipeline::load_rules(config).ok();
            print_out(&view::alerts_text(
                &rows,
                prefix,
                &time_zone(config),
                now_ms(),
                view::Labels::of(rules.as_ref()),
            ))?
        }
        ShowFormat::Json => print_out(&format!("{:#}\n", view::alerts_json(&rows, prefix)))?,
    }
    Ok(ExitCode::SUCCESS)
}
