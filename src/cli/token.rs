//! `buzon token create|list|revoke`: people's tokens for the JSON API.
//! A token is printed once, alone on the last line, and never again: the
//! database keeps its SHA-256.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;

use buzon::actions::people;
use buzon::config::Config;
use buzon::store::{Store, now_ms};
use buzon::view::local_time;

use super::{outln, time_zone};

/// The longest a token may last, in days (ten years): a typo of a few
/// zeros is caught, a long-lived script's token is not refused.
const MAX_DAYS: u32 = 3650;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// A new token for a person of [people]: it acts as them, with their
    /// role, on /api/v1. Printed once, alone on the last line.
    Create {
        /// A person of [people] (key or name).
        name: String,
        /// Days until it stops working; without it, until revoked.
        #[arg(long, value_name = "DAYS")]
        expires: Option<u32>,
    },
    /// The tokens (of one person), newest first: never the token itself,
    /// only its first characters.
    List {
        /// A person of [people] (key or name).
        name: Option<String>,
    },
    /// Revoke a token by the number `token list` shows: it stops working
    /// at once.
    Revoke {
        /// The token's number in `buzon token list`.
        id: i64,
    },
}

pub async fn run(config: &Config, store: &Store, command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create { name, expires } => create(config, store, &name, expires).await,
        TokenCommand::List { name } => list(config, store, name.as_deref()).await,
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(id, now_ms()).await? {
                bail!("no hay un token vigente con el número {id}: vea `buzon token list`");
            }
            outln!("Token {id} revocado: deja de funcionar desde ya.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn create(config: &Config, store: &Store, name: &str, days: Option<u32>) -> Result<ExitCode> {
    let person = people::find(config, name).map_err(anyhow::Error::msg)?;
    let now = now_ms();
    let expires_at = match days {
        Some(0) => bail!("--expires 0 no sirve: dé los días que el token debe durar (1 o más)"),
        Some(d) if d > MAX_DAYS => {
            bail!("--expires {d}: a lo más {MAX_DAYS} días; sin --expires dura hasta revocarlo")
        }
        Some(d) => Some(now + i64::from(d) * 24 * 60 * 60 * 1000),
        None => None,
    };
    let (token, record) =
        buzon::web::issue_token(&person.id, now, expires_at).map_err(anyhow::Error::msg)?;
    let id = store.create_token(&record).await?;
    let until = match expires_at {
        Some(at) => format!("vence el {}", local_time(at, &time_zone(config))),
        None => "no vence; revóquelo con `buzon token revoke` cuando no se use".into(),
    };
    outln!(
        "Token {id} para {} ({}), {until}. Guárdelo ahora: no se vuelve a mostrar.",
        person.name,
        person.id
    );
    outln!("{token}");
    Ok(ExitCode::SUCCESS)
}

async fn list(config: &Config, store: &Store, name: Option<&str>) -> Result<ExitCode> {
    let person = match name {
        Some(n) => Some(people::find(config, n).map_err(anyhow::Error::msg)?.id),
        None => None,
    };
    let tokens = store.tokens(person.as_deref()).await?;
    if tokens.is_empty() {
        outln!("No hay tokens. Cree uno con `buzon token create PERSONA`.");
        return Ok(ExitCode::SUCCESS);
    }
    let tz = time_zone(config);
    let now = now_ms();
    let when = |at: Option<i64>| at.map(|t| local_time(t, &tz)).unwrap_or_else(|| "-".into());
    let mut rows = vec![[
        "N°".to_string(),
        "PERSONA".into(),
        "TOKEN".into(),
        "CREADO".into(),
        "VENCE".into(),
        "ÚLTIMO USO".into(),
        "ESTADO".into(),
    ]];
    for t in &tokens {
        let state = match (t.revoked_at, t.expires_at) {
            (Some(_), _) => "revocado",
            (None, Some(e)) if e <= now => "vencido",
            _ if people::staff(config, &t.person).is_none() => "sin persona",
            _ => "vigente",
        };
        rows.push([
            t.id.to_string(),
            t.person.clone(),
            format!("{}…", t.hint),
            local_time(t.created_at, &tz),
            when(t.expires_at),
            when(t.last_used_at),
            state.into(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        outln!("{}", line.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}
