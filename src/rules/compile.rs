//! Syntax trees of all files → one validated, compiled rule set.
//!
//! Three passes, so that declarations may live in any file: first the
//! vocabulary (types, fields, labels, business hours), then groups (which
//! name the configuration's people), then rules, defaults and tests (which
//! name all of it). Every problem is collected; nothing stops at the first.
//!
//! This file holds the driver and the rules themselves; `vocabulary`,
//! `conditions` and `actions` hold the other passes.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{RuleError, Source};
use super::fold::fold_default;
use super::group::Group;
use super::matcher::{MatcherBuilder, Matchers};
use super::model::{
    Actions, Defaults, FieldDef, Labels, Overrides, Rule, RuleIndex, TestCase, TypeDef,
};
use super::sla::BusinessHours;
use super::syntax::{ActionsAst, At, ExpectValue, FileAst, OverrideAst, RuleAst, TestAst};
use crate::config::closest;

/// What the rules may refer to outside the rule files.
#[derive(Debug, Clone, Default)]
pub struct LoadContext {
    /// Mailbox name → its address (the configuration's `[mailboxes.NAME]`).
    pub mailboxes: BTreeMap<String, String>,
    /// Template names an `ack` may name (`acknowledgement` is always known).
    pub templates: BTreeSet<String>,
    /// The configuration's `[people.NAME]` and their addresses. When not
    /// empty, owners and group members must be among them, and `notify`
    /// may name them instead of writing an address.
    pub people: BTreeMap<String, Option<String>>,
}

/// The name of the built-in acknowledgement template.
pub const BUILTIN_ACK: &str = "acknowledgement";

const OVERRIDABLE: &[&str] = &[
    "pipeline",
    "owner",
    "priority",
    "state",
    "type",
    "category",
    "area",
    "sla",
    "first_response",
    "ack",
];

/// The longest target accepted (SLA or first response): a year. Longer is
/// a typo (days for hours).
pub(super) const MAX_SLA_HOURS: i64 = 24 * 366;

/// Everything a rule set is made of, before it is wrapped in a `RuleSet`.
pub struct Compiled {
    pub rules: Vec<Rule>,
    pub index: RuleIndex,
    pub matchers: Matchers,
    pub defaults: BTreeMap<String, Defaults>,
    pub types: BTreeMap<String, TypeDef>,
    pub groups: BTreeMap<String, Group>,
    pub fields: BTreeMap<String, FieldDef>,
    pub labels: Labels,
    pub business_hours: BusinessHours,
    pub tests: Vec<TestCase>,
}

/// "did you mean `x`?" when a close candidate exists.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let all: Vec<&str> = candidates.into_iter().collect();
    closest(word, &all).map(|c| format!("did you mean `{c}`?"))
}

pub(super) fn listing<'a>(what: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let all: Vec<&str> = candidates.into_iter().collect();
    format!("{what}: {}", all.join(", "))
}

pub(super) fn hint_for<'a>(
    word: &str,
    what: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> String {
    match did_you_mean(word, candidates.clone()) {
        Some(h) => format!("{h} ({})", listing(what, candidates)),
        None => listing(what, candidates),
    }
}

pub use crate::config::is_plausible_address;

/// Where something was first defined, for "already defined at" messages.
type Defined = BTreeMap<String, String>;

/// The state of one compilation; its passes live in `vocabulary`,
/// `conditions` and `actions`.
pub(super) struct Compiler<'c> {
    pub(super) ctx: &'c LoadContext,
    pub(super) problems: Vec<RuleError>,
    pub(super) matchers: MatcherBuilder,
    pub(super) groups: BTreeMap<String, Group>,
    pub(super) types: BTreeMap<String, TypeDef>,
    pub(super) fields: BTreeMap<String, FieldDef>,
    pub(super) labels: Labels,
    /// The set's business hours and where they were defined.
    pub(super) business_hours: Option<(BusinessHours, String)>,
    pub(super) defined: BTreeMap<&'static str, Defined>,
}

/// Compiles parsed files (in load order). Returns the rule set when no
/// error was found, and every problem (errors and warnings) either way.
pub fn compile(
    files: Vec<(Source, FileAst)>,
    ctx: &LoadContext,
) -> (Option<Compiled>, Vec<RuleError>) {
    let mut c = Compiler {
        ctx,
        problems: Vec::new(),
        matchers: MatcherBuilder::default(),
        groups: BTreeMap::new(),
        types: BTreeMap::new(),
        fields: BTreeMap::new(),
        labels: Labels::default(),
        business_hours: None,
        defined: BTreeMap::new(),
    };
    for (src, file) in &files {
        c.declare_vocabulary(src, file);
    }
    for (src, file) in &files {
        for g in &file.groups {
            c.declare_group(src, g);
        }
    }
    let mut rules = Vec::new();
    let mut defaults = BTreeMap::new();
    let mut tests = Vec::new();
    for (src, file) in files {
        let mut names = BTreeMap::new();
        for ast in file.rules {
            if let Some(rule) = c.rule(&src, ast, &mut names) {
                rules.push(rule);
            }
        }
        for d in file.defaults {
            c.defaults(&src, d.mailbox, &d.actions, &mut defaults);
        }
        for t in file.tests {
            if let Some(test) = c.test(&src, t) {
                tests.push(test);
            }
        }
    }
    let mailboxes: BTreeSet<String> = ctx
        .mailboxes
        .keys()
        .map(|m| fold_default(m).into_owned())
        .collect();
    let matchers = match std::mem::take(&mut c.matchers).build(&mailboxes) {
        Ok(m) => m,
        Err(message) => {
            let file = rules
                .first()
                .map(|r: &Rule| r.file.clone())
                .unwrap_or_default();
            c.problems.push(RuleError::whole_file(file, message));
            Matchers::default()
        }
    };
    if c.problems.iter().any(|p| p.is_error()) {
        return (None, c.problems);
    }
    let index = RuleIndex::new(&rules, &mailboxes);
    let compiled = Compiled {
        index,
        rules,
        matchers,
        defaults,
        types: c.types,
        groups: c.groups,
        fields: c.fields,
        labels: c.labels,
        business_hours: c.business_hours.map(|(b, _)| b).unwrap_or_default(),
        tests,
    };
    (Some(compiled), c.problems)
}
impl Compiler<'_> {
    pub(super) fn error(
        &mut self,
        src: &Source,
        span: &std::ops::Range<usize>,
        message: String,
        hint: Option<String>,
    ) {
        let mut e = src.error(span.start, message);
        e.hint = hint;
        self.problems.push(e);
    }

    pub(super) fn warn(&mut self, src: &Source, at: usize, message: String, hint: Option<String>) {
        let mut w = src.warning(at, message);
        w.hint = hint;
        self.problems.push(w);
    }

    /// Records a definition; reports a duplicate with where the first one is.
    pub(super) fn first_definition(
        &mut self,
        src: &Source,
        kind: &'static str,
        name: &At<String>,
    ) -> bool {
        let (line, _) = src.position(name.span.start);
        let here = format!("{}:{line}", src.name);
        let seen = self.defined.entry(kind).or_default();
        if let Some(first) = seen.get(&name.value) {
            let message = format!("{kind} `{}` is defined twice", name.value);
            let hint = Some(format!("the first definition is at {first}; keep one"));
            self.error(src, &name.span, message, hint);
            return false;
        }
        seen.insert(name.value.clone(), here);
        true
    }

    fn rule(
        &mut self,
        src: &Source,
        ast: RuleAst,
        names: &mut BTreeMap<String, usize>,
    ) -> Option<Rule> {
        let (line, _) = src.position(ast.at);
        if let Some(first) = names.get(&ast.name.value) {
            let message = format!("rule `{}` is defined twice in this file", ast.name.value);
            let hint = Some(format!(
                "the first one is at line {first}; rule names must be unique in a file"
            ));
            self.error(src, &ast.name.span, message, hint);
        }
        names.insert(ast.name.value.clone(), line);
        // Actions are checked even when the conditions failed, so that one
        // run reports every problem of the rule.
        let when = ast.when.as_ref().map(|w| self.cond(src, w));
        let actions = self.actions(src, &ast.actions);
        let overrides = self.overrides(src, ast.overrides.as_ref(), &actions);
        let when = match when {
            Some(Some(cond)) => Some(cond),
            Some(None) => return None,
            None => None,
        };
        let extracts = when.as_ref().is_some_and(|w| self.has_captures(w));
        if actions.is_empty() && !ast.stop && !extracts && !ast.had_problems {
            let message = format!(
                "rule `{}` sets nothing, extracts no keys and does not stop",
                ast.name.value
            );
            let hint =
                Some("add an action such as `pipeline = \"...\"`, or remove the rule".into());
            self.warn(src, ast.at, message, hint);
        }
        let scope = self.mailbox_scope(when.as_ref());
        if let Some(w) = &when {
            let mut leaves = Vec::new();
            super::conditions::leaves_of(w, &mut leaves);
            self.matchers.need(&leaves, scope.as_ref());
        }
        Some(Rule {
            origin: format!("rule:{}/{}", src.file_name, ast.name.value),
            name: ast.name.value,
            file: src.name.clone(),
            line,
            when,
            actions,
            overrides,
            stop: ast.stop,
            scope,
        })
    }

    fn overrides(
        &mut self,
        src: &Source,
        ast: Option<&At<OverrideAst>>,
        actions: &Actions,
    ) -> Overrides {
        let Some(ast) = ast else {
            return Overrides::None;
        };
        let fields = match &ast.value {
            OverrideAst::All => return Overrides::All,
            OverrideAst::Fields(fields) => fields,
        };
        let sets = actions.scalar_fields();
        let mut out = BTreeSet::new();
        for f in fields {
            let known = OVERRIDABLE.contains(&f.value.as_str()) || f.value.starts_with("fields.");
            if !known {
                let hint = hint_for(
                    &f.value,
                    "fields that can be overridden",
                    OVERRIDABLE.iter().copied(),
                );
                self.error(
                    src,
                    &f.span,
                    format!("`{}` cannot be overridden", f.value),
                    Some(hint),
                );
            } else if !sets.contains(&f.value) {
                let message = format!(
                    "`override` names `{}`, which this rule does not set",
                    f.value
                );
                self.error(
                    src,
                    &f.span,
                    message,
                    Some(listing("this rule sets", sets.iter().map(String::as_str))),
                );
            }
            out.insert(f.value.clone());
        }
        Overrides::Fields(out)
    }

    fn defaults(
        &mut self,
        src: &Source,
        mailbox: At<String>,
        a: &ActionsAst,
        out: &mut BTreeMap<String, Defaults>,
    ) {
        self.check_mailbox(src, &mailbox);
        if !self.first_definition(src, "defaults for mailbox", &mailbox) {
            return;
        }
        let actions = self.actions(src, a);
        let origin = format!("defaults:{}/{}", src.file_name, mailbox.value);
        out.insert(mailbox.value, Defaults { origin, actions });
    }

    pub(super) fn check_mailbox(&mut self, src: &Source, name: &At<String>) {
        if self.ctx.mailboxes.contains_key(&name.value) {
            return;
        }
        let hint = if self.ctx.mailboxes.is_empty() {
            "the configuration defines no [mailboxes.NAME]".to_string()
        } else {
            hint_for(
                &name.value,
                "configured mailboxes are",
                self.ctx.mailboxes.keys().map(String::as_str),
            )
        };
        self.error(
            src,
            &name.span,
            format!("unknown mailbox `{}`", name.value),
            Some(hint),
        );
    }

    fn test(&mut self, src: &Source, t: TestAst) -> Option<TestCase> {
        self.check_mailbox(src, &t.mailbox);
        for (key, value) in &t.expect {
            self.check_expectation(src, key, value);
        }
        let (line, _) = src.position(t.at);
        Some(TestCase::from_ast(t, &src.name, line))
    }

    /// Catches misspelt expectations at load time, where the position is known.
    fn check_expectation(&mut self, src: &Source, key: &At<String>, value: &ExpectValue) {
        let ExpectValue::Text(text) = value else {
            return;
        };
        let at = At::new(text.clone(), key.span.clone());
        match key.value.as_str() {
            "priority" if !text.is_empty() => {
                self.priority(src, &at);
            }
            "state" if !text.is_empty() => {
                self.state(src, &at);
            }
            "owner_group" if !text.is_empty() && !self.groups.contains_key(text) => {
                let hint = hint_for(text, "groups are", self.groups.keys().map(String::as_str));
                self.error(
                    src,
                    &key.span,
                    format!("unknown group `{text}`"),
                    Some(hint),
                );
            }
            _ => {}
        }
    }
}
