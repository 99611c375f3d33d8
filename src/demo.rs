//! `buzon demo`: the real pipeline over bundled sample mail, no server needed.
//!
//! The sample lives in `examples/demo/mail/<mailbox>/NN-slug.eml` and is
//! compiled into the binary. The demo writes a fresh SQLite file and the
//! acknowledgements as `.eml` files into one directory, and returns what it
//! did so the CLI can print the ticket table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Config, Mailbox, Outbox};
use crate::outbound::deliver::{self, DrainReport, Transport};
use crate::pipeline::{Outcome, Pipeline, PipelineError};
use crate::store::{Store, StoreError};
use crate::ticket::Priority;

include!(concat!(env!("OUT_DIR"), "/demo_mail.rs"));

/// The demo's mailboxes: name, address, default pipeline and priority.
const MAILBOXES: &[(&str, &str, &str, Priority)] = &[
    (
        "soporte",
        "soporte@tupatrimonio.example",
        "Soporte",
        Priority::Medium,
    ),
    (
        "servicioalcliente",
        "servicioalcliente@generafactoring.example",
        "Comercial",
        Priority::Medium,
    ),
    (
        "finanzas",
        "finanzas@generafactoring.example",
        "Finanzas",
        Priority::Medium,
    ),
    (
        "sac",
        "sac@inmobiliaria-andes.example",
        "Solicitudes No Técnicas",
        Priority::Medium,
    ),
    (
        "clientes",
        "clientes@tuprocurador.example",
        "Procesos",
        Priority::Medium,
    ),
    (
        "cgu",
        "mesa-cgu@browse.example",
        "CGU+Plus",
        Priority::Medium,
    ),
    (
        "sigas",
        "mesa-sigas@browse.example",
        "SIGAS",
        Priority::Medium,
    ),
    (
        "sigfin",
        "mesa-sigfin@browse.example",
        "SIGFIN",
        Priority::Medium,
    ),
    (
        "sigper",
        "mesa-sigper@browse.example",
        "SIGPER",
        Priority::Medium,
    ),
];

/// What the demo did.
pub struct DemoRun {
    pub dir: PathBuf,
    pub database_url: String,
    pub outbox_dir: PathBuf,
    /// (file name, mailbox, outcome) per sample mail, in order.
    pub results: Vec<(String, String, Outcome)>,
    pub delivered: DrainReport,
    pub store: Store,
    pub config: Config,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot prepare demo directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// The configuration the demo runs with: one mailbox per sample folder.
pub fn config(database_url: String, outbox_dir: PathBuf) -> Config {
    let mut config = Config::with_defaults(database_url);
    config.deployment.name = "Mesa de demostración buzon".into();
    config.outbox = Outbox {
        dir: Some(outbox_dir),
        ..Outbox::default()
    };
    config.mailboxes = MAILBOXES
        .iter()
        .map(|(name, address, pipeline, priority)| {
            (
                name.to_string(),
                Mailbox {
                    address: address.to_string(),
                    display_name: None,
                    pipeline: pipeline.to_string(),
                    owner: None,
                    priority: *priority,
                    acknowledge: true,
                },
            )
        })
        .collect::<BTreeMap<_, _>>();
    config
}

/// Writes the demo's configuration, so the user can go on exploring the
/// demo database with the ordinary commands (`buzon --config ... tickets show 1`).
fn write_config_file(path: &Path, config: &Config) -> std::io::Result<()> {
    let mut text = format!(
        "# Written by `buzon demo`.\n[deployment]\nname = {:?}\ntime_zone = {:?}\n\n[database]\nurl = {:?}\n\n",
        config.deployment.name, config.deployment.time_zone, config.database.url
    );
    if let Some(dir) = &config.outbox.dir {
        text.push_str(&format!(
            "[outbox]\ndir = {:?}\n\n",
            dir.display().to_string()
        ));
    }
    for (name, m) in &config.mailboxes {
        text.push_str(&format!(
            "[mailboxes.{name}]\naddress = {:?}\npipeline = {:?}\npriority = {:?}\n\n",
            m.address,
            m.pipeline,
            m.priority.as_str()
        ));
    }
    std::fs::write(path, text)
}

/// Runs the demo into `dir` (created; must not hold an earlier demo).
pub async fn run(dir: &Path) -> Result<DemoRun, DemoError> {
    std::fs::create_dir_all(dir).map_err(|e| DemoError::Dir(dir.to_path_buf(), e))?;
    let db_path = dir.join("buzon-demo.db");
    for stale in ["buzon-demo.db", "buzon-demo.db-wal", "buzon-demo.db-shm"] {
        let p = dir.join(stale);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| DemoError::Dir(p.clone(), e))?;
        }
    }
    let outbox_dir = dir.join("acuses");
    let database_url = format!("sqlite:{}", db_path.display());
    let config = config(database_url.clone(), outbox_dir.clone());
    write_config_file(&dir.join("buzon.toml"), &config)
        .map_err(|e| DemoError::Dir(dir.join("buzon.toml"), e))?;
    let store = Store::open(&database_url, 4).await?;
    let pipeline = Pipeline::new(&config, &store).await?;
    let mut results = Vec::new();
    for (name, mailbox, raw) in DEMO_MAIL {
        let outcome = pipeline.ingest(raw, mailbox).await?;
        results.push((name.to_string(), mailbox.to_string(), outcome));
    }
    let delivered = deliver::drain(
        &store,
        &Transport::dir(outbox_dir.clone()),
        crate::store::now_ms(),
    )
    .await?;
    Ok(DemoRun {
        dir: dir.to_path_buf(),
        database_url,
        outbox_dir,
        results,
        delivered,
        store,
        config,
    })
}
