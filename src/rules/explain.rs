//! `rules explain`: every rule in order, which condition held or failed and
//! why, and the final decision with the rule that set each field.
//!
//! Built by the same evaluation that routes mail (see `eval::run`), so it
//! cannot drift from what the daemon does. Serializes to JSON as is; the
//! text form is for people.

use std::fmt::Write as _;

use serde::Serialize;

use super::eval::{Change, ChangeOutcome, RuleInput};
use super::model::{Labels, Rule};
use crate::route::{Decision, Key, Route};

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub mailbox: String,
    pub subject: String,
    pub from: Option<String>,
    pub is_reply: bool,
    /// The classifier's verdict ("autoreply: Auto-Submitted: auto-replied").
    pub automatic: Option<String>,
    pub rules: Vec<RuleTrace>,
    /// What the mailbox's `[defaults]` and the ticket type's SLA filled.
    pub defaults: Vec<Change>,
    /// The rules' decision.
    pub decision: Decision,
    /// The decision completed with the configuration's mailbox defaults, when
    /// the caller has the configuration (the CLI does).
    pub route: Option<Route>,
    #[serde(skip)]
    labels: Labels,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOutcome {
    Matched,
    NotMatched,
    /// An earlier rule stopped the evaluation.
    NotEvaluated,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleTrace {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub origin: String,
    pub outcome: RuleOutcome,
    pub stops: bool,
    /// The rule that stopped evaluation before this one.
    pub stopped_by: Option<String>,
    /// `None` for a rule without `when` (it matches everything).
    pub condition: Option<CondTrace>,
    pub changes: Vec<Change>,
    pub keys: Vec<Key>,
}

/// One condition, whether it held, and the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct CondTrace {
    pub condition: String,
    pub held: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<CondTrace>,
}

impl CondTrace {
    pub fn leaf(condition: String, held: bool, detail: impl Into<String>) -> CondTrace {
        CondTrace {
            condition,
            held,
            detail: detail.into(),
            children: Vec::new(),
        }
    }
}

impl RuleTrace {
    pub fn new(
        rule: &Rule,
        outcome: RuleOutcome,
        condition: Option<CondTrace>,
        changes: Vec<Change>,
        keys: Vec<Key>,
    ) -> RuleTrace {
        RuleTrace {
            name: rule.name.clone(),
            file: rule.file.clone(),
            line: rule.line,
            origin: rule.origin.clone(),
            outcome,
            stops: rule.stop,
            stopped_by: None,
            condition,
            changes,
            keys,
        }
    }

    pub fn not_evaluated(rule: &Rule, stopped_by: &str) -> RuleTrace {
        RuleTrace {
            stopped_by: Some(stopped_by.to_string()),
            ..RuleTrace::new(
                rule,
                RuleOutcome::NotEvaluated,
                None,
                Vec::new(),
                Vec::new(),
            )
        }
    }
}

impl Explanation {
    pub fn new(
        input: &RuleInput<'_>,
        rules: Vec<RuleTrace>,
        defaults: Vec<Change>,
        decision: Decision,
        labels: &Labels,
    ) -> Explanation {
        Explanation {
            mailbox: input.mailbox.to_string(),
            subject: input.mail.subject.clone(),
            from: input.mail.from.as_ref().map(|f| match &f.name {
                Some(name) => format!("{name} <{}>", f.address),
                None => f.address.clone(),
            }),
            is_reply: input.is_reply,
            automatic: input
                .automatic
                .map(|a| format!("{}: {}", a.kind.as_str(), a.reason)),
            rules,
            defaults,
            decision,
            route: None,
            labels: labels.clone(),
        }
    }

    /// The explanation for people, in the order things happened.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.header(&mut out);
        out.push_str("\nRules, in order:\n");
        if self.rules.is_empty() {
            out.push_str("  (no rules)\n");
        }
        for rule in &self.rules {
            rule_text(&mut out, rule);
        }
        // Defaults only fill; what they could not fill is not news.
        let filled: Vec<&Change> = self
            .defaults
            .iter()
            .filter(|c| !matches!(c.outcome, ChangeOutcome::Kept { .. }))
            .collect();
        if !filled.is_empty() {
            out.push_str("\nAfter the rules (mailbox defaults, type deadlines):\n");
            for change in filled {
                change_text(&mut out, change, "    ");
            }
        }
        out.push_str("\nDecision:\n");
        self.decision_text(&mut out);
        out
    }

    fn header(&self, out: &mut String) {
        let _ = writeln!(out, "Message:  {:?}", self.subject);
        let _ = writeln!(
            out,
            "From:     {}",
            self.from.as_deref().unwrap_or("(no sender)")
        );
        let _ = writeln!(out, "Mailbox:  {}", self.mailbox);
        let _ = writeln!(
            out,
            "Reply:    {}",
            if self.is_reply { "yes" } else { "no" }
        );
        let _ = writeln!(
            out,
            "Automatic: {}",
            self.automatic.as_deref().unwrap_or("no")
        );
    }

    fn decision_text(&self, out: &mut String) {
        let set_by = match &self.route {
            Some(r) => &r.set_by,
            None => &self.decision.set_by,
        };
        let mut row = |field: &str, value: Option<String>| {
            let Some(value) = value else { return };
            let by = set_by.get(field).map(String::as_str).unwrap_or("default");
            let _ = writeln!(out, "  {field:<18} {value:<40} {by}");
        };
        let d = &self.decision;
        match &self.route {
            Some(r) => {
                row("pipeline", Some(r.pipeline.clone()));
                row("priority", Some(self.priority_text(r.priority)));
                row("state", Some(self.state_text(r.state)));
                row(
                    "owner",
                    owner_text(r.owner.as_deref(), r.owner_group.as_deref()),
                );
                row(
                    "ack",
                    Some(r.ack_template.clone().unwrap_or_else(|| "none".into())),
                );
            }
            None => {
                row("pipeline", d.pipeline.clone());
                row("priority", d.priority.map(|p| self.priority_text(p)));
                row("state", d.state.map(|s| self.state_text(s)));
                row(
                    "owner",
                    owner_text(d.owner.as_deref(), d.owner_group.as_deref()),
                );
                row(
                    "ack",
                    d.ack_template
                        .clone()
                        .map(|a| if a.is_empty() { "none".into() } else { a }),
                );
            }
        }
        row("type", d.ticket_type.clone());
        row("category", d.category.clone());
        row("area", d.area.clone());
        for (name, value) in &d.fields {
            row(&format!("fields.{name}"), Some(value.clone()));
        }
        let target = |hours: Option<u32>, business: bool| {
            hours.map(|hours| super::sla::Sla { hours, business }.to_string())
        };
        row(
            "first_response",
            target(d.first_response_hours, d.first_response_business_hours),
        );
        row("sla", target(d.sla_hours, d.sla_business_hours));
        for key in &d.keys {
            row(&format!("keys.{}", key.name), Some(key.value.clone()));
        }
        let list = |l: &[String]| (!l.is_empty()).then(|| l.join(", "));
        row("tags", list(&d.tags));
        row("notify", list(&d.notify));
    }

    fn priority_text(&self, p: crate::ticket::Priority) -> String {
        with_label(p.as_str(), self.labels.priority_label(p))
    }

    fn state_text(&self, s: crate::ticket::State) -> String {
        with_label(s.as_str(), self.labels.state_label(s))
    }
}

fn with_label(canonical: &str, label: &str) -> String {
    if canonical == label {
        canonical.to_string()
    } else {
        format!("{canonical} ({label})")
    }
}

fn owner_text(owner: Option<&str>, group: Option<&str>) -> Option<String> {
    match (owner, group) {
        (Some(o), _) => Some(o.to_string()),
        (None, Some(g)) => Some(format!("group {g}")),
        (None, None) => None,
    }
}

fn rule_text(out: &mut String, rule: &RuleTrace) {
    let (mark, status) = match rule.outcome {
        RuleOutcome::Matched if rule.stops => ("✓", "matched, stops evaluation".to_string()),
        RuleOutcome::Matched => ("✓", "matched".to_string()),
        RuleOutcome::NotMatched => ("✗", "no match".to_string()),
        RuleOutcome::NotEvaluated => (
            "·",
            format!(
                "not evaluated: `{}` stopped evaluation",
                rule.stopped_by.as_deref().unwrap_or("?")
            ),
        ),
    };
    let _ = writeln!(
        out,
        "  {mark} {}:{}  {}  ({status})",
        rule.file, rule.line, rule.name
    );
    match &rule.condition {
        Some(c) => cond_text(out, c, 3),
        None if rule.outcome != RuleOutcome::NotEvaluated => {
            out.push_str("      (no conditions: matches every message)\n")
        }
        None => {}
    }
    for key in &rule.keys {
        let _ = writeln!(out, "      key {} = {}", key.name, key.value);
    }
    for change in &rule.changes {
        change_text(out, change, "      ");
    }
}

fn cond_text(out: &mut String, c: &CondTrace, depth: usize) {
    let mark = if c.held { "✓" } else { "✗" };
    let indent = "  ".repeat(depth);
    if c.detail.is_empty() {
        let _ = writeln!(out, "{indent}{mark} {}", c.condition);
    } else {
        let _ = writeln!(out, "{indent}{mark} {}: {}", c.condition, c.detail);
    }
    for child in &c.children {
        cond_text(out, child, depth + 1);
    }
}

fn change_text(out: &mut String, c: &Change, indent: &str) {
    let _ = match &c.outcome {
        ChangeOutcome::Set => writeln!(out, "{indent}set {} = {:?}", c.field, c.value),
        ChangeOutcome::Added => writeln!(out, "{indent}add {} {:?}", c.field, c.value),
        ChangeOutcome::Overrode { previous_by } => writeln!(
            out,
            "{indent}override {} = {:?} (was set by {previous_by})",
            c.field, c.value
        ),
        ChangeOutcome::Kept { by } => writeln!(
            out,
            "{indent}keep {}: {:?} ignored, already set by {by}",
            c.field, c.value
        ),
    };
}
