//! The rules engine: admins route mail by editing TOML files, not code.
//!
//! A rule reads a message (mailbox, sender, recipients, subject, body,
//! headers, attachments, reply or automatic) and decides the ticket's
//! pipeline, owner, priority, state, type, category, area, the team's own
//! fields, tags, deadlines (first response and resolution), acknowledgement
//! and who else to notify; named regex captures become ticket keys
//! (`order = 75321`). The language and its semantics are documented in
//! `rules/README.md`.
//!
//! Layout, in the order a rule set is built and used:
//! - `load`: the directory → file texts (the only I/O besides `cli`); the daemon's
//!   live set is `crate::live`, with the templates and people;
//! - `syntax`: TOML → syntax tree, every problem located by line and column;
//! - `compile`: trees → validated rules; `matcher`: the `RegexSet` prefilter;
//! - `lint`: rules that can never match or never change anything;
//! - `eval`: message → [`Decision`] (pure); `explain`: the same, with reasons;
//! - `testcase`: the `[[test]]` cases; `cli`: `buzon rules check|explain|test`;
//! - `fold`, `quote`, `group`, `sla`, `error`: accents, quoted history,
//!   owner groups, deadlines and the working calendar, errors.
//!
//! Invariant: loading either yields a fully valid set or every problem
//! found; evaluation never fails and never panics.

mod actions;
pub mod cli;
mod compile;
mod conditions;
mod error;
mod eval;
mod explain;
mod fold;
mod group;
mod lint;
mod load;
mod matcher;
mod model;
mod quote;
mod regex_check;
mod sla;
mod syntax;
mod testcase;
mod vocabulary;

use std::collections::BTreeMap;
use std::path::Path;

use jiff::tz::TimeZone;

pub use compile::{BUILTIN_ACK, LoadContext};
pub use error::{RuleError, RuleErrors, Severity};
pub use eval::{Change, ChangeOutcome, RuleInput, is_reply};
pub use explain::{CondTrace, Explanation, RuleOutcome, RuleTrace};
pub use fold::fold_default as fold_text;
pub use group::{Group, Strategy};
pub use load::fingerprint;
pub use sla::{BusinessHours, Sla};
pub use testcase::{TestReport, TestResult};

use crate::route::Decision;
use crate::ticket::{Priority, State};
use matcher::Matchers;
use model::{Defaults, FieldDef, Labels, Rule, RuleIndex, TestCase, TypeDef};

/// A loaded, validated rule set. Cheap to share (`Arc`) between tasks;
/// evaluation only reads it.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: RuleIndex,
    matchers: Matchers,
    defaults: BTreeMap<String, Defaults>,
    types: BTreeMap<String, TypeDef>,
    groups: BTreeMap<String, Group>,
    fields: BTreeMap<String, FieldDef>,
    labels: Labels,
    business_hours: BusinessHours,
    tests: Vec<TestCase>,
    warnings: Vec<RuleError>,
    files: Vec<String>,
}

impl RuleSet {
    /// No rules: every ticket gets its mailbox's defaults.
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// Loads every `*.toml` file of `dir`, in file name order.
    pub fn load(dir: &Path, ctx: &LoadContext) -> Result<RuleSet, RuleErrors> {
        let files = load::read_dir(dir).map_err(|e| RuleErrors::new(vec![e]))?;
        RuleSet::from_texts(files, ctx)
    }

    /// Builds a rule set from (display name, text) pairs, in the given order.
    /// `load` uses this; tests and benchmarks call it directly.
    pub fn from_texts(
        files: Vec<(String, String)>,
        ctx: &LoadContext,
    ) -> Result<RuleSet, RuleErrors> {
        let mut problems = Vec::new();
        let mut parsed = Vec::new();
        let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        for (name, text) in files {
            let file_name = Path::new(&name)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| name.clone());
            let src = error::Source::new(name, file_name, text);
            let (ast, found) = syntax::parse_file(&src);
            problems.extend(found);
            parsed.push((src, ast));
        }
        let (compiled, found) = compile::compile(parsed, ctx);
        problems.extend(found);
        let Some(c) = compiled.filter(|_| !problems.iter().any(RuleError::is_error)) else {
            return Err(RuleErrors::new(problems));
        };
        problems.extend(lint::check(&c.rules, &c.matchers));
        if problems.iter().any(RuleError::is_error) {
            return Err(RuleErrors::new(problems));
        }
        Ok(RuleSet {
            rules: c.rules,
            index: c.index,
            matchers: c.matchers,
            defaults: c.defaults,
            types: c.types,
            groups: c.groups,
            fields: c.fields,
            labels: c.labels,
            business_hours: c.business_hours,
            tests: c.tests,
            warnings: RuleErrors::new(problems).0,
            files: names,
        })
    }

    /// The decision for one message. Pure, allocation-light, never fails.
    pub fn evaluate(&self, input: &RuleInput<'_>) -> Decision {
        eval::run(self, input, false).0
    }

    /// The same evaluation, with every rule's conditions and effects.
    pub fn explain(&self, input: &RuleInput<'_>) -> Explanation {
        match eval::run(self, input, true) {
            (_, Some(explanation)) => explanation,
            (decision, None) => {
                Explanation::new(input, Vec::new(), Vec::new(), decision, &self.labels)
            }
        }
    }

    /// Problems that did not stop loading (shown by `rules check`).
    pub fn warnings(&self) -> &[RuleError] {
        &self.warnings
    }

    /// A `[groups.NAME]`, to resolve `Decision::owner_group` with [`Group::pick`].
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// How this deployment names a priority ("Alta").
    pub fn priority_label(&self, p: Priority) -> &str {
        self.labels.priority_label(p)
    }

    /// How this deployment names a state ("En ejecución").
    pub fn state_label(&self, s: State) -> &str {
        self.labels.state_label(s)
    }

    /// The due time (Unix ms) of a target of `hours` started at `now_ms`:
    /// plain hours, or business hours of `[business_hours]` in `tz`
    /// (skipping nights, non-working days and holidays) when `business`.
    /// Used for both the first-response and the resolution target.
    pub fn due_at_ms(&self, now_ms: i64, hours: u32, business: bool, tz: &TimeZone) -> i64 {
        self.business_hours
            .due_at_ms(now_ms, Sla { hours, business }, tz)
    }

    /// The working time (ms) from `from_ms` to `to_ms`: `to - from` in
    /// calendar time, only the time inside working windows in business
    /// time; 0 when `to_ms <= from_ms`. On resuming a paused ticket,
    /// `work_ms_between(paused_at, due)` is the time it had left.
    pub fn work_ms_between(&self, from_ms: i64, to_ms: i64, business: bool, tz: &TimeZone) -> i64 {
        self.business_hours
            .work_ms_between(from_ms, to_ms, business, tz)
    }

    /// The instant (Unix ms) `ms` of working time after `from_ms`: a plain
    /// addition in calendar time. On resuming, `add_work_ms(now, left)` is
    /// the new due time.
    pub fn add_work_ms(&self, from_ms: i64, ms: i64, business: bool, tz: &TimeZone) -> i64 {
        self.business_hours.add_work_ms(from_ms, ms, business, tz)
    }

    /// The deployment's working calendar (`[business_hours]`).
    pub fn business_hours(&self) -> &BusinessHours {
        &self.business_hours
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    pub fn test_count(&self) -> usize {
        self.tests.len()
    }

    /// The files the set was loaded from, in load order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The request types the rule files define (`[types."NAME"]`).
    pub fn type_names(&self) -> Vec<&str> {
        self.types.keys().map(String::as_str).collect()
    }

    /// The team fields the rule files define (`[fields.NAME]`).
    pub fn field_names(&self) -> Vec<&str> {
        self.fields.keys().map(String::as_str).collect()
    }

    /// The team field definitions (`[fields.NAME]`) and their allowed values.
    pub fn field_values(&self, name: &str) -> Option<&[String]> {
        self.fields.get(name).map(|f| f.values.as_slice())
    }

    /// Runs the files' `[[test]]` cases against this set.
    pub fn run_tests(&self, config: &crate::config::Config) -> TestReport {
        testcase::run(self, config)
    }
}

#[cfg(test)]
mod tests;
