//! The active rule set of a running daemon, replaced only by a valid one.
//!
//! The daemon calls [`LiveRules::reload_if_changed`] on a timer (a cheap
//! digest of the files tells whether anything changed) and
//! [`LiveRules::reload`] on SIGHUP. An invalid set is refused with the same
//! messages as `buzon rules check`, and the previous set stays active, so a
//! typo saved in an editor never stops routing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use super::compile::LoadContext;
use super::error::{RuleError, RuleErrors};
use super::{RuleSet, load};

/// What a reload attempt did.
#[derive(Debug)]
pub enum Reload {
    /// The files are as they were.
    Unchanged,
    /// The new set is active; warnings are worth logging.
    Reloaded {
        rules: usize,
        warnings: Vec<RuleError>,
    },
    /// The new set is invalid; the previous one stays active.
    Refused(RuleErrors),
}

pub struct LiveRules {
    dir: PathBuf,
    ctx: LoadContext,
    /// The templates directory, listed again at each load: a rule naming a
    /// template added since the start is accepted, as `rules check` does.
    templates_dir: Option<PathBuf>,
    current: RwLock<Arc<RuleSet>>,
    /// Digest of the files last tried (valid or not), so a refused set is
    /// reported once, not on every poll.
    seen: Mutex<Option<Vec<u8>>>,
}

impl LiveRules {
    /// Loads the initial set; at start-up an invalid set is an error.
    pub fn load(dir: &Path, ctx: LoadContext) -> Result<LiveRules, RuleErrors> {
        let seen = load::fingerprint(dir);
        let set = RuleSet::load(dir, &ctx)?;
        Ok(LiveRules {
            dir: dir.to_path_buf(),
            ctx,
            templates_dir: None,
            current: RwLock::new(Arc::new(set)),
            seen: Mutex::new(seen),
        })
    }

    /// Lists `dir` for template names at every reload.
    pub fn with_templates_dir(mut self, dir: Option<PathBuf>) -> LiveRules {
        self.templates_dir = dir;
        self
    }

    /// The set to evaluate with; holders keep theirs across a reload.
    pub fn current(&self) -> Arc<RuleSet> {
        let guard = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&guard)
    }

    /// Re-reads the directory unconditionally (SIGHUP).
    pub fn reload(&self) -> Reload {
        let digest = load::fingerprint(&self.dir);
        self.remember(digest);
        self.try_load()
    }

    /// Re-reads the directory if any file changed since the last attempt.
    pub fn reload_if_changed(&self) -> Reload {
        let digest = load::fingerprint(&self.dir);
        {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == digest {
                return Reload::Unchanged;
            }
        }
        self.remember(digest);
        self.try_load()
    }

    fn remember(&self, digest: Option<Vec<u8>>) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = digest;
    }

    fn try_load(&self) -> Reload {
        let mut ctx = self.ctx.clone();
        if let Some(dir) = &self.templates_dir {
            match load::template_names(dir) {
                Ok(names) => ctx.templates.extend(names),
                Err(e) => return Reload::Refused(RuleErrors::new(vec![e])),
            }
        }
        match RuleSet::load(&self.dir, &ctx) {
            Ok(set) => {
                let rules = set.rule_count();
                let warnings = set.warnings().to_vec();
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
                Reload::Reloaded { rules, warnings }
            }
            Err(errors) => Reload::Refused(errors),
        }
    }
}
