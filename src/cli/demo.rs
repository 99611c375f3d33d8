//! `buzon demo`: each example team's deployment over the sample mail.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use buzon::pipeline::Outcome;
use buzon::store::TicketFilter;
use buzon::ticket::display_number;
use buzon::view;

use super::{outln, time_zone};

pub async fn run(dir: Option<PathBuf>, force: bool) -> Result<ExitCode> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("buzon-demo-{}", std::process::id())),
    };
    let run = buzon::demo::run(&dir, force).await?;
    let mails: usize = run.teams.iter().map(|t| t.results.len()).sum();
    outln!(
        "buzon demo: {mails} sample mails through the real pipeline, each team with its own rules\n"
    );
    for team in &run.teams {
        let prefix = &team.config.deployment.ticket_prefix;
        outln!(
            "== {} (examples/{})",
            team.config.deployment.name,
            team.team
        );
        for (name, mailbox, outcome) in &team.results {
            outln!(
                "  {mailbox:<18} {name:<44} {}",
                demo_outcome(prefix, outcome)
            );
        }
        let rows = team.store.list_tickets(&TicketFilter::default()).await?;
        let rules = buzon::pipeline::load_rules(&team.config).ok();
        outln!(
            "\n{}",
            view::tickets_table(
                &rows,
                prefix,
                &time_zone(&team.config),
                view::Labels::of(rules.as_ref())
            )
        );
        outln!(
            "  acknowledgements: {} written to {}",
            team.delivered.sent,
            team.dir.join("outbox").display()
        );
        outln!(
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
