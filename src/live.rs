//! What a running daemon may change without a restart: the rules, the
//! templates, the people and the mailboxes' defaults, as one `Snapshot`.
//!
//! Every unit of work (an IMAP batch drain, a pass of the outbox worker
//! over the agents' mails, a deadline check, a web request) takes the
//! snapshot in force when it starts and works with it to its end, so it
//! never mixes the rules of one reload with the people of another.
//!
//! `Live::reload` (SIGHUP) reads the configuration file again and checks
//! it exactly as `buzon check` does; only a file without problems, whose
//! rules and templates load, replaces the snapshot, in one swap. On any
//! problem the previous snapshot stays and the problems are returned. What
//! only a restart applies (listen addresses, database, accounts, ...) is
//! never taken from the new file; the sections that differ are named.
//! `Live::reload_rules_if_changed` (a timer) swaps in the rule files when
//! they change on disk, with the snapshot's people and templates.

use std::sync::{Arc, Mutex, RwLock};

use crate::actions::{ActionError, Agent};
use crate::check::{self, Status};
use crate::config::{Config, Sources};
use crate::deadline::Watch;
use crate::outbound::templates::Templates;
use crate::pipeline::{Pipeline, PipelineError, load_rules};
use crate::rules::{RuleError, RuleSet, fingerprint};
use crate::store::{Store, StoreError};
use crate::thread::IdSigner;

/// The reloadable part of a deployment, loaded and checked.
pub struct Snapshot {
    /// The configuration the daemon started with, with the people and the
    /// mailboxes' defaults of the last good reload.
    pub config: Arc<Config>,
    pub rules: Arc<RuleSet>,
    pub templates: Templates,
    /// Signs our Message-IDs (its key is in the database: never reloaded).
    pub signer: IdSigner,
}

impl Snapshot {
    /// Loads the rules and templates `config` names, refusing on the first
    /// that does not load (the caller has run `check::files` for the list).
    pub fn load(config: Arc<Config>, signer: IdSigner) -> Result<Snapshot, PipelineError> {
        let rules = Arc::new(load_rules(&config)?);
        let templates = Templates::load(config.templates.dir.as_deref())?;
        Ok(Snapshot {
            config,
            rules,
            templates,
            signer,
        })
    }

    /// The snapshot of `config`, with the Message-ID key from the store
    /// (the command line's one-off runs).
    pub async fn open(config: Arc<Config>, store: &Store) -> Result<Snapshot, LiveError> {
        let key = store.message_id_key().await?;
        Ok(Snapshot::load(config, IdSigner::new(key.as_bytes()))?)
    }

    /// A pipeline over this snapshot: what one batch of mail runs through.
    pub fn pipeline<'s>(&'s self, store: &'s Store) -> Result<Pipeline<'s>, PipelineError> {
        Pipeline::from_parts(
            &self.config,
            store,
            self.signer.clone(),
            self.templates.clone(),
            self.rules.clone(),
        )
    }

    /// The person `actor` acting with this snapshot's people and words.
    pub fn agent<'s>(&'s self, store: &'s Store, actor: &str) -> Result<Agent<'s>, ActionError> {
        Agent::with_snapshot(self, store, actor)
    }

    /// A deadline check with this snapshot's templates and people.
    pub fn watch<'s>(&'s self, store: &'s Store) -> Watch<'s> {
        Watch {
            config: &self.config,
            store,
            signer: self.signer.clone(),
            templates: self.templates.clone(),
        }
    }
}

/// What a reload did.
#[derive(Debug)]
pub enum Reload {
    /// Nothing to do (the rule files are as they were).
    Unchanged,
    /// The new snapshot is in force.
    Reloaded {
        rules: usize,
        /// The rules' warnings, worth logging.
        warnings: Vec<RuleError>,
        /// Sections of the file that changed and wait for a restart.
        restart: Vec<&'static str>,
    },
    /// The previous snapshot stays; each problem names its file, line or key.
    Refused(Vec<String>),
}

/// The snapshot in force, swapped whole on a good reload.
pub struct Live {
    /// The configuration as the daemon started: what needs a restart is
    /// taken from it, never from a reloaded file.
    started: Arc<Config>,
    current: RwLock<Arc<Snapshot>>,
    /// Digest of the rule files last tried (valid or not), so a refused set
    /// is reported once, not on every poll.
    rules_seen: Mutex<Option<Vec<u8>>>,
}

impl Live {
    /// The first snapshot; the daemon has checked the files already.
    pub async fn load(config: Arc<Config>, store: &Store) -> Result<Live, LiveError> {
        let rules_seen = config.rules.dir.as_deref().and_then(fingerprint);
        let snapshot = Snapshot::open(config.clone(), store).await?;
        Ok(Live::with(config, snapshot, rules_seen))
    }

    fn with(started: Arc<Config>, snapshot: Snapshot, rules_seen: Option<Vec<u8>>) -> Live {
        Live {
            started,
            current: RwLock::new(Arc::new(snapshot)),
            rules_seen: Mutex::new(rules_seen),
        }
    }

    /// The snapshot to start a unit of work with; holders keep theirs
    /// across a reload.
    pub fn current(&self) -> Arc<Snapshot> {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&guard)
    }

    fn swap(&self, next: Snapshot) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    fn remember_rules(&self) -> bool {
        let digest = self.started.rules.dir.as_deref().and_then(fingerprint);
        let mut seen = self.rules_seen.lock().unwrap_or_else(|p| p.into_inner());
        let changed = *seen != digest;
        *seen = digest;
        changed
    }

    /// SIGHUP: the configuration file (people, mailboxes' defaults), the
    /// rules and the templates, checked as `buzon check` does.
    pub fn reload(&self) -> Reload {
        self.remember_rules();
        let fresh = match &self.started.source {
            Some(path) => match Config::load(Sources {
                file: Some(path.clone()),
                env: std::env::vars().collect(),
            }) {
                Ok(fresh) => fresh,
                Err(e) => return Reload::Refused(vec![e.to_string()]),
            },
            // No file (the environment only): the rules and templates.
            None => (*self.started).clone(),
        };
        let problems: Vec<String> = check::files(&fresh)
            .into_iter()
            .filter(|f| f.status == Status::Config)
            .map(|f| format!("{}: {}", f.topic, f.text))
            .collect();
        if !problems.is_empty() {
            return Reload::Refused(problems);
        }
        let restart = needs_restart(&self.started, &fresh);
        let next = Arc::new(applied(&self.started, &fresh));
        self.try_swap(next, restart)
    }

    /// The timer: the rule files, if any changed since the last attempt.
    pub fn reload_rules_if_changed(&self) -> Reload {
        if self.started.rules.dir.is_none() || !self.remember_rules() {
            return Reload::Unchanged;
        }
        let config = self.current().config.clone();
        self.try_swap(config, Vec::new())
    }

    fn try_swap(&self, config: Arc<Config>, restart: Vec<&'static str>) -> Reload {
        let signer = self.current().signer.clone();
        match Snapshot::load(config, signer) {
            Ok(next) => {
                let rules = next.rules.rule_count();
                let warnings = next.rules.warnings().to_vec();
                self.swap(next);
                Reload::Reloaded {
                    rules,
                    warnings,
                    restart,
                }
            }
            Err(e) => Reload::Refused(vec![e.to_string()]),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// The running configuration with what a reload may change taken from
/// `fresh`: every person, and each mailbox's defaults (display name,
/// pipeline, owner, priority, acknowledgement) when the mailbox is still
/// there with the same address.
fn applied(started: &Config, fresh: &Config) -> Config {
    let mut next = started.clone();
    next.people = fresh.people.clone();
    for (name, mailbox) in &mut next.mailboxes {
        if let Some(new) = fresh.mailboxes.get(name)
            && new.address == mailbox.address
        {
            *mailbox = new.clone();
        }
    }
    next
}

/// The sections that differ between the running configuration and the
/// file, apart from what a reload applies.
fn needs_restart(started: &Config, fresh: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut differs = |name: &'static str, x: String, y: String| {
        if x != y {
            out.push(name);
        }
    };
    macro_rules! section {
        ($($field:ident),*) => {
            $(differs(
                stringify!($field),
                format!("{:?}", started.$field),
                format!("{:?}", fresh.$field),
            );)*
        };
    }
    section!(
        deployment, database, limits, outbox, smtp, rules, templates, daemon, web, security,
        deadlines, accounts, webhooks
    );
    // Mailboxes added, removed or given another address.
    let addresses = |c: &Config| {
        c.mailboxes
            .iter()
            .map(|(name, m)| format!("{name}={}", m.address))
            .collect::<Vec<_>>()
    };
    if addresses(started) != addresses(fresh) {
        out.push("mailboxes");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `text` as the configuration file of `dir` (the same path for
    /// every version, as on a server).
    fn config(dir: &tempfile::TempDir, text: &str) -> Config {
        let path = dir.path().join("buzon.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Sources {
            file: Some(path),
            env: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn a_reload_takes_people_and_defaults_and_names_the_rest() {
        let base = "[database]\nurl = \"sqlite:buzon.db\"\n\
            [mailboxes.soporte]\naddress = \"soporte@x.example\"\npipeline = \"Soporte\"\n\
            [people.ana]\nname = \"Ana\"\nrole = \"admin\"\n";
        let dir = tempfile::tempdir().unwrap();
        let started = config(&dir, base);
        let fresh = config(
            &dir,
            &base
                .replace("\"Ana\"", "\"Ana María\"")
                .replace("\"Soporte\"", "\"Mesa\"")
                .replace("sqlite:buzon.db", "sqlite:otra.db"),
        );
        let next = applied(&started, &fresh);
        assert_eq!(next.people["ana"].name.as_deref(), Some("Ana María"));
        assert_eq!(next.mailboxes["soporte"].pipeline, "Mesa");
        assert_eq!(next.database.url, started.database.url);
        assert_eq!(needs_restart(&started, &fresh), vec!["database"]);
        let moved = config(&dir, &base.replace("soporte@x", "ayuda@x"));
        assert_eq!(needs_restart(&started, &moved), vec!["mailboxes"]);
        assert_eq!(
            applied(&started, &moved).mailboxes["soporte"].address,
            "soporte@x.example"
        );
    }

    #[test]
    fn a_broken_template_is_refused_with_its_line_and_the_old_set_stays() {
        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("plantillas");
        std::fs::create_dir(&templates).unwrap();
        let ack = templates.join("acknowledgement.txt");
        std::fs::write(&ack, "Subject: Recibido {{ ticket }}\n\nVersión uno.\n").unwrap();
        let text = format!(
            "[database]\nurl = \"sqlite:buzon.db\"\n[templates]\ndir = \"{}\"\n\
             [mailboxes.soporte]\naddress = \"soporte@x.example\"\npipeline = \"Soporte\"\n\
             [people.ana]\nname = \"Ana\"\nrole = \"admin\"\n",
            templates.display()
        );
        let started = Arc::new(config(&dir, &text));
        let snap = Snapshot::load(started.clone(), IdSigner::new(b"k")).unwrap();
        let live = Live::with(started, snap, None);
        let words = |live: &Live| {
            let snap = live.current();
            let vars = crate::outbound::templates::Vars::default();
            let out = snap.templates.render("acknowledgement", &vars).unwrap();
            (out.text, snap.config.people["ana"].name.clone().unwrap())
        };
        assert!(words(&live).0.contains("Versión uno"));

        // A good change of both files is taken whole.
        std::fs::write(&ack, "Subject: Recibido\n\nVersión dos.\n").unwrap();
        config(&dir, &text.replace("\"Ana\"", "\"Ana María\""));
        assert!(matches!(live.reload(), Reload::Reloaded { .. }));
        let (ack_text, name) = words(&live);
        assert!(ack_text.contains("Versión dos"), "{ack_text}");
        assert_eq!(name, "Ana María");

        // A broken template refuses everything, the person's name too.
        std::fs::write(&ack, "Subject: Recibido\n\nHola {{ nombre_raro }\n").unwrap();
        config(&dir, &text.replace("\"Ana\"", "\"Ana Luisa\""));
        match live.reload() {
            Reload::Refused(problems) => {
                let all = problems.join("\n");
                assert!(all.contains("acknowledgement.txt:3"), "{all}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let (ack_text, name) = words(&live);
        assert!(ack_text.contains("Versión dos"), "{ack_text}");
        assert_eq!(name, "Ana María");
    }
}
