//! Evaluation: one message against the compiled rules → a [`Decision`].
//!
//! The semantics an admin can predict:
//! 1. rules run in order (files by name, rules as written);
//! 2. the first rule that sets a field wins; a later rule sets it again only
//!    when it says `override`;
//! 3. lists (tags, notifications, keys) collect from every matching rule;
//! 4. a rule with `stop = true` ends the evaluation when it matches;
//! 5. then the mailbox's `[defaults]` fill what is still empty, the ticket
//!    type's deadlines (first response, resolution) apply where no rule set
//!    them, and last the defaults' deadlines.
//!
//! Pure and total: no I/O, no panics, and the same code path produces the
//! explanation, so `rules explain` always tells what `evaluate` did.

use serde::Serialize;

use super::RuleSet;
use super::explain::{CondTrace, Explanation, RuleOutcome, RuleTrace};
use super::matcher::{Hits, MessageView, Texts};
use super::model::{Ack, Actions, AutoCond, Cond, Overrides, Owner, Rule};
use super::sla::Sla;
use crate::classify::Automatic;
use crate::parse::ParsedMail;
use crate::route::{Decision, Key};
use crate::thread::reply_prefix_len;

/// What the rules read about one message.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    /// The mailbox the message arrived in (a `[mailboxes.NAME]`).
    pub mailbox: &'a str,
    pub mail: &'a ParsedMail,
    /// The classifier's verdict, if the mail is automatic.
    pub automatic: Option<&'a Automatic>,
    /// See [`is_reply`].
    pub is_reply: bool,
    /// How the request arrived: mail, or by hand (`buzon tickets new`).
    pub channel: crate::ticket::Channel,
}

impl<'a> RuleInput<'a> {
    /// An input with `is_reply` computed from the mail.
    pub fn new(mailbox: &'a str, mail: &'a ParsedMail, automatic: Option<&'a Automatic>) -> Self {
        RuleInput {
            mailbox,
            mail,
            automatic,
            is_reply: is_reply(mail),
            channel: crate::ticket::Channel::Email,
        }
    }

    /// The same input for a request that arrived by `channel`.
    pub fn via(self, channel: crate::ticket::Channel) -> Self {
        RuleInput { channel, ..self }
    }
}

/// Whether a mail answers or forwards an earlier one: it has In-Reply-To or
/// References, or its subject starts with RE:, RV:, Fwd: and the like.
pub fn is_reply(mail: &ParsedMail) -> bool {
    !mail.in_reply_to.is_empty()
        || !mail.references.is_empty()
        || reply_prefix_len(mail.subject.trim_start()).is_some()
}

/// How one field fared when a rule tried to set it (for explanations).
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub field: String,
    pub value: String,
    #[serde(flatten)]
    pub outcome: ChangeOutcome,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChangeOutcome {
    /// The field was empty and is now set.
    Set,
    /// The rule overrides the earlier value.
    Overrode { previous_by: String },
    /// Already set by an earlier rule, which wins.
    Kept { by: String },
    /// Added to a list.
    Added,
}

/// The decision being built, and the explanation when asked for.
struct Acc {
    decision: Decision,
    changes: Option<Vec<Change>>,
}

impl Acc {
    fn note(&mut self, field: &str, value: impl FnOnce() -> String, outcome: ChangeOutcome) {
        if let Some(changes) = &mut self.changes {
            changes.push(Change {
                field: field.to_string(),
                value: value(),
                outcome,
            });
        }
    }

    /// Whether `origin` may write `field`; records who set it.
    fn claim(
        &mut self,
        field: &str,
        value: impl FnOnce() -> String,
        origin: &str,
        ov: &Overrides,
    ) -> bool {
        let outcome = match self.decision.set_by.get(field) {
            None => ChangeOutcome::Set,
            Some(prev) if ov.allows(field) && prev != origin => ChangeOutcome::Overrode {
                previous_by: prev.clone(),
            },
            Some(prev) => {
                let by = prev.clone();
                self.note(field, value, ChangeOutcome::Kept { by });
                return false;
            }
        };
        self.decision
            .set_by
            .insert(field.to_string(), origin.to_string());
        self.note(field, value, outcome);
        true
    }

    fn text(
        &mut self,
        field: &str,
        new: &Option<String>,
        origin: &str,
        ov: &Overrides,
    ) -> Option<String> {
        let v = new.as_ref()?;
        self.claim(field, || v.clone(), origin, ov)
            .then(|| v.clone())
    }

    fn apply(&mut self, a: &Actions, origin: &str, ov: &Overrides, with_deadlines: bool) {
        if let Some(v) = self.text("pipeline", &a.pipeline, origin, ov) {
            self.decision.pipeline = Some(v);
        }
        self.apply_owner(a.owner.as_ref(), origin, ov);
        if let Some(p) = a.priority
            && self.claim("priority", || p.to_string(), origin, ov)
        {
            self.decision.priority = Some(p);
        }
        if let Some(s) = a.state
            && self.claim("state", || s.to_string(), origin, ov)
        {
            self.decision.state = Some(s);
        }
        if let Some(v) = self.text("type", &a.ticket_type, origin, ov) {
            self.decision.ticket_type = Some(v);
        }
        if let Some(v) = self.text("category", &a.category, origin, ov) {
            self.decision.category = Some(v);
        }
        if let Some(v) = self.text("area", &a.area, origin, ov) {
            self.decision.area = Some(v);
        }
        for (name, value) in &a.fields {
            if self.claim(&format!("fields.{name}"), || value.clone(), origin, ov) {
                self.decision.fields.insert(name.clone(), value.clone());
            }
        }
        if with_deadlines {
            self.apply_deadlines(a.first_response, a.sla, origin, ov);
        }
        self.apply_ack(a.ack.as_ref(), origin, ov);
        self.apply_lists(a, origin);
    }

    fn apply_owner(&mut self, owner: Option<&Owner>, origin: &str, ov: &Overrides) {
        let Some(owner) = owner else { return };
        let shown = || match owner {
            Owner::Person(p) => p.clone(),
            Owner::Group(g) => format!("group {g}"),
        };
        if self.claim("owner", shown, origin, ov) {
            let (person, group) = match owner {
                Owner::Person(p) => (Some(p.clone()), None),
                Owner::Group(g) => (None, Some(g.clone())),
            };
            self.decision.owner = person;
            self.decision.owner_group = group;
        }
    }

    /// The first-response target (claim `first_response`) and the
    /// resolution target (claim `sla`), each claimed on its own.
    fn apply_deadlines(
        &mut self,
        first_response: Option<Sla>,
        sla: Option<Sla>,
        origin: &str,
        ov: &Overrides,
    ) {
        if let Some(t) = first_response
            && self.claim("first_response", || t.to_string(), origin, ov)
        {
            self.decision.first_response_hours = Some(t.hours);
            self.decision.first_response_business_hours = t.business;
        }
        if let Some(t) = sla
            && self.claim("sla", || t.to_string(), origin, ov)
        {
            self.decision.sla_hours = Some(t.hours);
            self.decision.sla_business_hours = t.business;
        }
    }

    fn apply_ack(&mut self, ack: Option<&Ack>, origin: &str, ov: &Overrides) {
        let Some(ack) = ack else { return };
        let name = match ack {
            Ack::Template(t) => t.clone(),
            Ack::None => String::new(),
        };
        let shown = || {
            if name.is_empty() {
                "none".to_string()
            } else {
                name.clone()
            }
        };
        if self.claim("ack", shown, origin, ov) {
            self.decision.ack_template = Some(name);
        }
    }

    fn apply_lists(&mut self, a: &Actions, origin: &str) {
        for tag in &a.tags {
            if !self.decision.tags.contains(tag) {
                self.decision.tags.push(tag.clone());
                self.add_origin("tags", origin);
                self.note("tags", || tag.clone(), ChangeOutcome::Added);
            }
        }
        for address in &a.notify {
            if !self.decision.notify.contains(address) {
                self.decision.notify.push(address.clone());
                self.add_origin("notify", origin);
                self.note("notify", || address.clone(), ChangeOutcome::Added);
            }
        }
    }

    /// Lists record every contributor: "rule:a.toml/x, rule:a.toml/y".
    fn add_origin(&mut self, field: &str, origin: &str) {
        let entry = self.decision.set_by.entry(field.to_string()).or_default();
        if !entry.split(", ").any(|o| o == origin) {
            if !entry.is_empty() {
                entry.push_str(", ");
            }
            entry.push_str(origin);
        }
    }

    fn add_key(&mut self, name: String, value: String, origin: &str) -> Option<Key> {
        let key = Key { name, value };
        if self.decision.keys.contains(&key) {
            return None;
        }
        self.decision
            .set_by
            .entry(format!("keys.{}", key.name))
            .or_insert_with(|| origin.to_string());
        self.decision.keys.push(key.clone());
        Some(key)
    }
}

/// One evaluation: the message's texts, the prefilter hits and the input.
struct Run<'r, 'a> {
    set: &'r RuleSet,
    input: &'r RuleInput<'a>,
    texts: Texts<'a>,
    hits: Hits,
}

impl Run<'_, '_> {
    fn holds(&self, cond: &Cond) -> bool {
        match cond {
            Cond::All(list) => list.iter().all(|c| self.holds(c)),
            Cond::Any(list) => list.iter().any(|c| self.holds(c)),
            Cond::Not(inner) => !self.holds(inner),
            Cond::Leaf(id) => self.hits.get(*id),
            Cond::IsReply(want) => self.input.is_reply == *want,
            Cond::Automatic(AutoCond::Is(want)) => self.input.automatic.is_some() == *want,
            Cond::Automatic(AutoCond::Kinds(kinds)) => self
                .input
                .automatic
                .is_some_and(|a| kinds.contains(&a.kind)),
        }
    }

    /// The capturing leaves that made a holding condition hold: all of an
    /// `all`, the first holding member of an `any`, nothing under `not`.
    fn witnesses(&self, cond: &Cond, out: &mut Vec<usize>) {
        match cond {
            Cond::All(list) => list.iter().for_each(|c| self.witnesses(c, out)),
            Cond::Any(list) => {
                if let Some(c) = list.iter().find(|c| self.holds(c)) {
                    self.witnesses(c, out);
                }
            }
            Cond::Leaf(id)
                if self
                    .set
                    .matchers
                    .leaves
                    .get(*id)
                    .is_some_and(|l| l.captures) =>
            {
                out.push(*id)
            }
            _ => {}
        }
    }

    fn keys(&self, cond: &Cond) -> Vec<(String, String)> {
        let mut leaves = Vec::new();
        self.witnesses(cond, &mut leaves);
        leaves
            .into_iter()
            .flat_map(|leaf| self.set.matchers.captures(&self.texts, leaf))
            .collect()
    }

    /// Applies a matching rule: its keys first, then its actions.
    fn fire(&self, rule: &Rule, acc: &mut Acc) -> Vec<Key> {
        let found = rule.when.as_ref().map(|c| self.keys(c)).unwrap_or_default();
        let keys = found
            .into_iter()
            .filter_map(|(name, value)| acc.add_key(name, value, &rule.origin))
            .collect();
        acc.apply(&rule.actions, &rule.origin, &rule.overrides, true);
        keys
    }

    /// A rule's explanation, taking the changes recorded since the last one.
    fn trace_rule(&self, rule: &Rule, matched: bool, keys: Vec<Key>, acc: &mut Acc) -> RuleTrace {
        let condition = rule.when.as_ref().map(|c| self.trace(c));
        let changes = acc.changes.as_mut().map(std::mem::take).unwrap_or_default();
        let outcome = if matched {
            RuleOutcome::Matched
        } else {
            RuleOutcome::NotMatched
        };
        RuleTrace::new(rule, outcome, condition, changes, keys)
    }

    fn trace(&self, cond: &Cond) -> CondTrace {
        let combine = |what: &str, list: &[Cond], held: bool| CondTrace {
            condition: what.to_string(),
            held,
            detail: String::new(),
            children: list.iter().map(|c| self.trace(c)).collect(),
        };
        match cond {
            Cond::All(list) => combine("all of", list, self.holds(cond)),
            Cond::Any(list) => combine("any of", list, self.holds(cond)),
            Cond::Not(inner) => CondTrace {
                condition: "not".into(),
                held: self.holds(cond),
                detail: String::new(),
                children: vec![self.trace(inner)],
            },
            Cond::Leaf(id) => self.trace_leaf(*id),
            Cond::IsReply(want) => CondTrace::leaf(
                format!("is_reply = {want}"),
                self.holds(cond),
                if self.input.is_reply {
                    "the message is a reply (In-Reply-To/References or a RE:/RV:/Fwd: subject)"
                } else {
                    "the message is not a reply"
                },
            ),
            Cond::Automatic(a) => self.trace_automatic(cond, a),
        }
    }

    fn trace_automatic(&self, cond: &Cond, a: &AutoCond) -> CondTrace {
        let what = match a {
            AutoCond::Is(b) => format!("automatic = {b}"),
            AutoCond::Kinds(k) => {
                let names: Vec<&str> = k.iter().map(|k| k.as_str()).collect();
                format!("automatic is {}", names.join(" or "))
            }
        };
        let detail = match self.input.automatic {
            Some(auto) => format!("automatic mail ({}): {}", auto.kind.as_str(), auto.reason),
            None => "not automatic mail".to_string(),
        };
        CondTrace::leaf(what, self.holds(cond), detail)
    }

    fn trace_leaf(&self, id: usize) -> CondTrace {
        let m = &self.set.matchers;
        let what = m.leaves.get(id).map(|l| l.describe()).unwrap_or_default();
        let text = m.text(&self.texts, id);
        let held = self.hits.get(id);
        let detail = match m.locate(&self.texts, id).filter(|_| held) {
            Some(range) => format!("found {:?}", excerpt(text.get(range).unwrap_or(""), 80)),
            None if text.is_empty() => "the message has no such text".to_string(),
            None => format!("not found in {:?}", excerpt(text, 100)),
        };
        CondTrace::leaf(what, held, detail)
    }
}

/// The first `max` characters of a text on one line, for explanations.
fn excerpt(text: &str, max: usize) -> String {
    let one_line = crate::parse::collapse_ws(text);
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max).collect();
    format!("{cut}…")
}

/// Evaluates; with `explain`, also records why.
pub fn run(set: &RuleSet, input: &RuleInput<'_>, explain: bool) -> (Decision, Option<Explanation>) {
    let view = MessageView {
        mailbox: input.mailbox,
        channel: input.channel.as_str(),
        mail: input.mail,
    };
    let (texts, hits) = if explain {
        set.matchers.run_all(view)
    } else {
        set.matchers.run(view)
    };
    let mailbox = super::fold::fold_default(input.mailbox);
    let run = Run {
        set,
        input,
        texts,
        hits,
    };
    let mut acc = Acc {
        decision: Decision::default(),
        changes: explain.then(Vec::new),
    };
    let mut traces = Vec::new();
    let mut stopped_by: Option<&str> = None;
    // Rules scoped to other mailboxes cannot match; an explanation still
    // lists them, with the condition that failed.
    let candidates = set.index.rules_for(&mailbox, explain);
    for rule in candidates.iter().filter_map(|&i| set.rules.get(i)) {
        if let Some(by) = stopped_by {
            if explain {
                traces.push(RuleTrace::not_evaluated(rule, by));
            }
            continue;
        }
        let matched = rule.when.as_ref().is_none_or(|c| run.holds(c));
        let keys = if matched {
            run.fire(rule, &mut acc)
        } else {
            Vec::new()
        };
        if matched && rule.stop {
            stopped_by = Some(&rule.name);
        }
        if explain {
            traces.push(run.trace_rule(rule, matched, keys, &mut acc));
        }
    }
    let defaults = finish(set, input.mailbox, &mut acc);
    let decision = acc.decision;
    let explanation =
        explain.then(|| Explanation::new(input, traces, defaults, decision.clone(), &set.labels));
    (decision, explanation)
}

/// Defaults and deadlines after the rules (see the module docs for the order).
fn finish(set: &RuleSet, mailbox: &str, acc: &mut Acc) -> Vec<Change> {
    let none = Overrides::None;
    let defaults = set.defaults.get(mailbox);
    if let Some(d) = defaults {
        acc.apply(&d.actions, &d.origin, &none, false);
    }
    let ticket_type = acc
        .decision
        .ticket_type
        .as_ref()
        .and_then(|t| set.types.get(t));
    if let Some(t) = ticket_type {
        acc.apply_deadlines(t.first_response, t.sla, &t.origin, &none);
    }
    if let Some(d) = defaults {
        acc.apply_deadlines(d.actions.first_response, d.actions.sla, &d.origin, &none);
    }
    acc.changes.as_mut().map(std::mem::take).unwrap_or_default()
}
