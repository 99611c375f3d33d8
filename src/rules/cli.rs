//! `buzon rules check|explain|test`: the admin's tools, as functions that
//! return their output and whether it succeeded, so `main` only prints and
//! picks the exit code.

use std::path::Path;

use super::eval::RuleInput;
use super::{LoadContext, RuleErrors, RuleSet};
use crate::classify::classify;
use crate::config::Config;
use crate::parse;

/// Output format of `rules explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Loads `dir` with the configuration's mailboxes and templates.
fn load(dir: &Path, config: &Config) -> Result<RuleSet, RuleErrors> {
    let ctx = LoadContext::from_config(config).map_err(|e| RuleErrors::new(vec![e]))?;
    RuleSet::load(dir, &ctx)
}

fn failure_summary(errors: &RuleErrors) -> String {
    let count = errors.error_count();
    let warnings = errors.0.len() - count;
    format!(
        "{errors}\n\nerror: {count} problem(s){} in the rules; nothing was loaded\n",
        if warnings > 0 {
            format!(" and {warnings} warning(s)")
        } else {
            String::new()
        }
    )
}

/// `buzon rules check [DIR]`: every problem at once; ok when there is no error.
pub fn check(dir: &Path, config: &Config) -> (String, bool) {
    match load(dir, config) {
        Ok(set) => {
            let mut out = String::new();
            for w in set.warnings() {
                out.push_str(&format!("{w}\n"));
            }
            out.push_str(&format!(
                "rules ok: {} file(s), {} rule(s), {} test(s), {} warning(s)\n",
                set.files().len(),
                set.rule_count(),
                set.test_count(),
                set.warnings().len()
            ));
            (out, true)
        }
        Err(errors) => (failure_summary(&errors), false),
    }
}

/// `buzon rules explain --mailbox M FILE.eml`: why the rules decide what they do.
pub fn explain(
    dir: &Path,
    config: &Config,
    mailbox: &str,
    eml: &Path,
    format: Format,
) -> (String, bool) {
    let mailbox_cfg = match config.mailbox(mailbox) {
        Ok(m) => m,
        Err(e) => return (format!("error: {e}\n"), false),
    };
    let set = match load(dir, config) {
        Ok(set) => set,
        Err(errors) => return (failure_summary(&errors), false),
    };
    let raw = match std::fs::read(eml) {
        Ok(raw) => raw,
        Err(e) => {
            return (
                format!("error: cannot read {}: {e}\n", eml.display()),
                false,
            );
        }
    };
    let mail = match parse::parse(&raw, config.limits.max_message_bytes) {
        Ok(mail) => mail,
        Err(e) => {
            return (
                format!(
                    "error: {} is not a mail buzon can ticket: {e}\n",
                    eml.display()
                ),
                false,
            );
        }
    };
    let automatic = classify(&mail, &|a: &str| config.is_own_address(a));
    let input = RuleInput::new(mailbox, &mail, automatic.as_ref());
    let mut explanation = set.explain(&input);
    explanation.route = Some(explanation.decision.clone().complete(mailbox, mailbox_cfg));
    match format {
        Format::Text => (explanation.to_text(), true),
        Format::Json => match serde_json::to_string_pretty(&explanation) {
            Ok(json) => (json + "\n", true),
            Err(e) => (format!("error: cannot write JSON: {e}\n"), false),
        },
    }
}

/// `buzon rules test [DIR]`: runs the files' `[[test]]` cases.
pub fn test(dir: &Path, config: &Config) -> (String, bool) {
    let set = match load(dir, config) {
        Ok(set) => set,
        Err(errors) => return (failure_summary(&errors), false),
    };
    let report = set.run_tests(config);
    let ok = report.failed() == 0;
    (report.to_text(), ok)
}
