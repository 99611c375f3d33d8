//! The rules directory on disk: which files, in which order, and what the
//! configuration lets rules refer to.
//!
//! Files load in byte order of their names, so admins order them with a
//! numeric prefix (`10-finanzas.toml`, `90-urgencias.toml`). Hidden files and
//! editor leftovers are skipped; only `*.toml` counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::compile::{BUILTIN_ACK, LoadContext};
use super::error::RuleError;
use crate::config::Config;

/// A rule file larger than this is refused (real ones are a few KB), so a
/// stray data file cannot make the daemon allocate without bound.
const MAX_FILE_BYTES: u64 = 4 << 20;

/// The rule files of `dir` as (display name, text), in load order.
pub fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, RuleError> {
    let shown = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        RuleError::whole_file(&shown, format!("cannot read the rules directory: {e}")).with_hint(
            "set [rules] dir in the configuration, or pass the directory: buzon rules check DIR",
        )
    })?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".toml") && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(&name);
        let display = path.display().to_string();
        files.push((display.clone(), read_file(&path, &display)?));
    }
    Ok(files)
}

fn read_file(path: &Path, display: &str) -> Result<String, RuleError> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > MAX_FILE_BYTES {
        return Err(RuleError::whole_file(
            display,
            format!("{size} bytes is too large for a rule file (limit {MAX_FILE_BYTES})"),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| RuleError::whole_file(display, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        RuleError::whole_file(
            display,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
        .with_hint("save the file as UTF-8")
    })
}

/// A digest of the rule files' names and contents, to notice any change
/// (including an edit within the same second, which mtimes can miss).
pub fn fingerprint(dir: &Path) -> Option<Vec<u8>> {
    let files = read_dir(dir).ok()?;
    let mut hash = Sha256::new();
    for (name, text) in files {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        hash.update([0]);
    }
    Some(hash.finalize().to_vec())
}

impl LoadContext {
    /// The configuration's mailboxes, and the templates rules may name: the
    /// built-in acknowledgement plus every `NAME.txt` in the templates directory.
    pub fn from_config(config: &Config) -> Result<LoadContext, RuleError> {
        let mailboxes: BTreeMap<String, String> = config
            .mailboxes
            .iter()
            .map(|(name, m)| (name.clone(), m.address.clone()))
            .collect();
        let mut templates = BTreeSet::from([BUILTIN_ACK.to_string()]);
        if let Some(dir) = &config.templates.dir {
            templates.extend(template_names(dir)?);
        }
        let people = config
            .people
            .iter()
            .map(|(name, p)| (name.clone(), p.address.clone()))
            .collect();
        Ok(LoadContext {
            mailboxes,
            templates,
            people,
        })
    }
}

pub(super) fn template_names(dir: &Path) -> Result<Vec<String>, RuleError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        RuleError::whole_file(
            dir.display().to_string(),
            format!("cannot read the templates directory: {e}"),
        )
        .with_hint("check [templates] dir in the configuration")
    })?;
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| n.strip_suffix(".txt").map(str::to_string))
        .collect())
}
