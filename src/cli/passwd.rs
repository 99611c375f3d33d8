//! `buzon passwd NAME`: a person's password for the web workspace.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use buzon::actions::people;
use buzon::config::Config;
use buzon::store::{Store, now_ms};

/// Shortest password accepted.
const MIN_LENGTH: usize = 10;

pub async fn run(config: &Config, store: &Store, name: &str) -> Result<ExitCode> {
    let person = people::find(config, name).map_err(anyhow::Error::msg)?;
    let password = if std::io::stdin().is_terminal() {
        let first = prompt("Contraseña nueva: ")?;
        let again = prompt("Repítala: ")?;
        if first != again {
            bail!("las contraseñas no coinciden; nada cambió");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.chars().count() < MIN_LENGTH {
        bail!("la contraseña debe tener al menos {MIN_LENGTH} caracteres; nada cambió");
    }
    let hash = buzon::web::hash_password(&password).map_err(anyhow::Error::msg)?;
    store.set_password(&person.id, &hash, now_ms()).await?;
    super::outln!(
        "Contraseña guardada para {} ({}); sus sesiones abiertas se cerraron.",
        person.name,
        person.id
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a line from the terminal without echoing it.
fn prompt(text: &str) -> Result<String> {
    eprint!("{text}");
    std::io::stderr().flush().ok();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    let hidden = stty("-echo").is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        let _ = stty("echo");
        eprintln!();
    }
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
