//! `buzon rules`: check, explain and test the routing rules, before a reload.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use buzon::config::Config;

use super::{ShowFormat, print_out};

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Report every problem in the rule files (exit 1 on any error).
    Check {
        /// Rules directory (default: the config's rules.dir).
        dir: Option<PathBuf>,
    },
    /// Show how each rule treats a mail and the final decision.
    Explain {
        /// The mailbox the mail arrived in (a [mailboxes.NAME]).
        #[arg(long)]
        mailbox: String,
        /// The mail, as an .eml file.
        file: PathBuf,
        /// text for people, json for programs.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
        /// Rules directory (default: the config's rules.dir).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the test cases written in the rule files.
    Test {
        /// Rules directory (default: the config's rules.dir).
        dir: Option<PathBuf>,
    },
}

pub fn run(config: &Config, command: RulesCommand) -> Result<ExitCode> {
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
