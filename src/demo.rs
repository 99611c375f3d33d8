//! `buzon demo`: the real pipeline over bundled sample mail, no server needed.
//!
//! The sample mail lives in `examples/demo/mail/<mailbox>/NN-slug.eml` and
//! the five teams' ready deployments in `examples/<team>/` (configuration,
//! rules, templates); both are compiled into the binary. The demo writes
//! each team's deployment into its own folder of the demo directory (a
//! fresh SQLite file, acknowledgements as `.eml` files), runs the mail of
//! that team's mailboxes through it, and returns what happened so the CLI
//! can print each team's tickets.

use std::path::{Path, PathBuf};

use crate::config::{Config, Sources};
use crate::outbound::deliver::{self, DrainReport, Transport};
use crate::pipeline::{Outcome, Pipeline, PipelineError};
use crate::store::{Store, StoreError};

include!(concat!(env!("OUT_DIR"), "/demo_mail.rs"));

/// One team's part of the demo.
pub struct TeamRun {
    pub team: String,
    pub dir: PathBuf,
    pub config: Config,
    pub store: Store,
    /// (file name, mailbox, outcome) per sample mail, in order.
    pub results: Vec<(String, String, Outcome)>,
    pub delivered: DrainReport,
}

/// What the demo did, team by team.
pub struct DemoRun {
    pub dir: PathBuf,
    pub teams: Vec<TeamRun>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot prepare demo directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error(
        "{0} is not empty, and the demo writes fresh databases there: choose a new or empty \
         directory, or add --force to replace an earlier demo in it"
    )]
    NotEmpty(PathBuf),
    #[error("the bundled example {0} does not load: {1}")]
    Example(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// The teams bundled with the binary, in name order.
pub fn teams() -> Vec<&'static str> {
    let mut names: Vec<&str> = DEMO_TEAMS.iter().map(|(team, _, _)| *team).collect();
    names.dedup();
    names
}

/// Writes a team's bundled deployment into `dir` (replacing an earlier
/// demo's database and acknowledgements).
fn write_team(team: &str, dir: &Path) -> Result<(), DemoError> {
    let io = |p: &Path, e| DemoError::Dir(p.to_path_buf(), e);
    for stale in ["buzon.db", "buzon.db-wal", "buzon.db-shm", "outbox"] {
        let p = dir.join(stale);
        let gone = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else if p.exists() {
            std::fs::remove_file(&p)
        } else {
            Ok(())
        };
        gone.map_err(|e| io(&p, e))?;
    }
    for (_, rel, bytes) in DEMO_TEAMS.iter().filter(|(t, _, _)| *t == team) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

/// Runs one team's sample mail through its own deployment.
async fn run_team(team: &str, dir: &Path) -> Result<TeamRun, DemoError> {
    write_team(team, dir)?;
    // The demo is hermetic: no BUZON_* variable of the caller applies.
    let config = Config::load(Sources {
        file: Some(dir.join("buzon.toml")),
        env: Vec::new(),
    })
    .map_err(|e| DemoError::Example(team.to_string(), e.to_string()))?;
    let store = Store::open(&config.database.url, 4).await?;
    let pipeline = Pipeline::new(&config, &store).await?;
    let mut results = Vec::new();
    for (name, mailbox, raw) in DEMO_MAIL {
        if config.mailboxes.contains_key(*mailbox) {
            let outcome = pipeline.ingest(raw, mailbox).await?;
            results.push((name.to_string(), mailbox.to_string(), outcome));
        }
    }
    let delivered = match Transport::from_config(&config)
        .map_err(|e| DemoError::Example(team.to_string(), e.to_string()))?
    {
        Some(transport) => {
            deliver::drain(
                &store,
                &transport,
                &crate::instance::one_off(),
                crate::store::now_ms(),
            )
            .await?
        }
        None => DrainReport::default(),
    };
    Ok(TeamRun {
        team: team.to_string(),
        dir: dir.to_path_buf(),
        config,
        store,
        results,
        delivered,
    })
}

/// Runs the demo into `dir`, one folder per team. A directory that is not
/// empty is refused (it may hold a real deployment's database) unless
/// `force`: then an earlier demo's databases and outboxes are replaced.
pub async fn run(dir: &Path, force: bool) -> Result<DemoRun, DemoError> {
    let dir_err = |e| DemoError::Dir(dir.to_path_buf(), e);
    if !force && dir.exists() && std::fs::read_dir(dir).map_err(dir_err)?.next().is_some() {
        return Err(DemoError::NotEmpty(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir).map_err(dir_err)?;
    let mut runs = Vec::new();
    for team in teams() {
        runs.push(run_team(team, &dir.join(team)).await?);
    }
    Ok(DemoRun {
        dir: dir.to_path_buf(),
        teams: runs,
    })
}
