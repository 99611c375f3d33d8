//! `buzon generate man|completions DIR` (hidden): the man pages and the
//! shell completions, written from the command line's own definition, so
//! they never disagree with `--help`. The Debian package ships them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;

use super::{Cli, outln};

#[derive(Subcommand)]
pub enum GenerateCommand {
    /// Man pages: `buzon.1` and one page per command (`buzon-check.1` ...).
    Man {
        /// Directory to write them in (created if missing).
        dir: PathBuf,
    },
    /// Completions for bash (`buzon.bash`), zsh (`_buzon`) and fish
    /// (`buzon.fish`).
    Completions {
        /// Directory to write them in (created if missing).
        dir: PathBuf,
    },
}

pub fn run(command: GenerateCommand) -> Result<ExitCode> {
    match command {
        GenerateCommand::Man { dir } => {
            create(&dir)?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .with_context(|| format!("cannot write the man pages in {}", dir.display()))?;
            outln!("man pages written in {}", dir.display());
        }
        GenerateCommand::Completions { dir } => {
            create(&dir)?;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                let path = clap_complete::generate_to(shell, &mut Cli::command(), "buzon", &dir)
                    .with_context(|| {
                        format!("cannot write the {shell} completions in {}", dir.display())
                    })?;
                outln!("{}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}
