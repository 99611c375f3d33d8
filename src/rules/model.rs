//! The compiled rule set's parts: rules, their conditions and actions, and
//! the vocabulary the files declare (people, groups, types, fields, labels).
//!
//! Everything here is validated: names resolve, regexes compile, priorities
//! are real priorities. Evaluation can therefore never fail.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::sla::Sla;
use super::syntax::{At, ExpectValue};
use crate::classify::AutoKind;
use crate::ticket::{Priority, State};

/// One `[[rule]]`.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    /// The file as displayed in messages.
    pub file: String,
    pub line: usize,
    /// `rule:FILE/NAME`, recorded in `Decision::set_by`.
    pub origin: String,
    /// `None`: matches every message.
    pub when: Option<Cond>,
    pub actions: Actions,
    pub overrides: Overrides,
    pub stop: bool,
    /// The folded mailbox names the rule is limited to by its conditions;
    /// `None`: any mailbox.
    pub scope: Option<BTreeSet<String>>,
}

/// Which rules can match in which mailbox, so that evaluation skips the
/// other teams' rules. Order within each list is load order.
#[derive(Debug, Default)]
pub struct RuleIndex {
    /// Folded mailbox name → rules that may match there.
    by_mailbox: BTreeMap<String, Vec<usize>>,
    /// Rules without a mailbox scope (for mailboxes the configuration lacks).
    unscoped: Vec<usize>,
    /// Every rule (explanations show them all).
    all: Vec<usize>,
}

impl RuleIndex {
    pub fn new(rules: &[Rule], mailboxes: &BTreeSet<String>) -> RuleIndex {
        let applies =
            |rule: &Rule, mailbox: &str| rule.scope.as_ref().is_none_or(|s| s.contains(mailbox));
        let pick = |keep: &dyn Fn(&Rule) -> bool| -> Vec<usize> {
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| keep(r))
                .map(|(i, _)| i)
                .collect()
        };
        RuleIndex {
            by_mailbox: mailboxes
                .iter()
                .map(|m| (m.clone(), pick(&|r| applies(r, m))))
                .collect(),
            unscoped: pick(&|r| r.scope.is_none()),
            all: (0..rules.len()).collect(),
        }
    }

    /// Rules to evaluate for a message of `mailbox` (folded), or all of them.
    pub fn rules_for(&self, mailbox: &str, all: bool) -> &[usize] {
        if all {
            return &self.all;
        }
        self.by_mailbox.get(mailbox).unwrap_or(&self.unscoped)
    }
}

/// A compiled condition; leaves index into the rule set's matchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Leaf(usize),
    IsReply(bool),
    Automatic(AutoCond),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoCond {
    /// `automatic = true` / `false`.
    Is(bool),
    /// `automatic = ["autoreply", "bounce"]`: one of these kinds.
    Kinds(Vec<AutoKind>),
}

/// Who owns the ticket: one person, or a group the pipeline picks from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Person(String),
    Group(String),
}

/// Which acknowledgement to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    Template(String),
    None,
}

/// What a rule or a mailbox's defaults set.
#[derive(Debug, Clone, Default)]
pub struct Actions {
    pub pipeline: Option<String>,
    pub owner: Option<Owner>,
    pub priority: Option<Priority>,
    pub state: Option<State>,
    pub ticket_type: Option<String>,
    pub category: Option<String>,
    pub area: Option<String>,
    pub tags: Vec<String>,
    pub fields: Vec<(String, String)>,
    /// Resolution target.
    pub sla: Option<Sla>,
    pub first_response: Option<Sla>,
    pub ack: Option<Ack>,
    /// Addresses (people of the configuration are resolved to their
    /// address at load).
    pub notify: Vec<String>,
}

impl Actions {
    /// The single-valued fields this sets, by the names used in `override`
    /// and `set_by` (`fields.NAME` for the team's own fields).
    pub fn scalar_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            ("pipeline", self.pipeline.is_some()),
            ("owner", self.owner.is_some()),
            ("priority", self.priority.is_some()),
            ("state", self.state.is_some()),
            ("type", self.ticket_type.is_some()),
            ("category", self.category.is_some()),
            ("area", self.area.is_some()),
            ("sla", self.sla.is_some()),
            ("first_response", self.first_response.is_some()),
            ("ack", self.ack.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name.to_string())
        .collect();
        out.extend(self.fields.iter().map(|(name, _)| format!("fields.{name}")));
        out
    }

    /// Whether this adds to the lists (tags, notifications) that every
    /// matching rule contributes to.
    pub fn adds_to_lists(&self) -> bool {
        !self.tags.is_empty() || !self.notify.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.scalar_fields().is_empty() && !self.adds_to_lists()
    }
}

/// Which already-set fields a rule may replace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Overrides {
    #[default]
    None,
    All,
    Fields(BTreeSet<String>),
}

impl Overrides {
    pub fn allows(&self, field: &str) -> bool {
        match self {
            Overrides::None => false,
            Overrides::All => true,
            Overrides::Fields(f) => f.contains(field),
        }
    }
}

/// `[defaults.MAILBOX]`: fills what no rule set, for one mailbox.
#[derive(Debug)]
pub struct Defaults {
    /// `defaults:FILE/MAILBOX`.
    pub origin: String,
    pub actions: Actions,
}

/// `[types."NAME"]`: the deadlines of a ticket type.
#[derive(Debug, Clone)]
pub struct TypeDef {
    /// `type:FILE/NAME`.
    pub origin: String,
    /// Resolution target.
    pub sla: Option<Sla>,
    pub first_response: Option<Sla>,
}

/// `[fields.NAME]`: one of the team's own ticket fields.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// Empty: free text.
    pub values: Vec<String>,
}

/// How a deployment names priorities and states ("Alta", "En ejecución").
#[derive(Debug, Clone, Serialize)]
pub struct Labels {
    pub priority: [String; 4],
    pub state: [String; 5],
}

impl Default for Labels {
    fn default() -> Self {
        Labels {
            priority: Priority::ALL.map(|p| p.as_str().to_string()),
            state: State::ALL.map(|s| s.as_str().to_string()),
        }
    }
}

impl Labels {
    pub fn priority_label(&self, p: Priority) -> &str {
        let i = Priority::ALL.iter().position(|x| *x == p).unwrap_or(0);
        self.priority
            .get(i)
            .map(String::as_str)
            .unwrap_or(p.as_str())
    }

    pub fn state_label(&self, s: State) -> &str {
        let i = State::ALL.iter().position(|x| *x == s).unwrap_or(0);
        self.state.get(i).map(String::as_str).unwrap_or(s.as_str())
    }

    /// A priority by its canonical name or its label, ignoring case and accents.
    pub fn parse_priority(&self, text: &str) -> Option<Priority> {
        let want = super::fold::fold_default(text.trim());
        Priority::ALL.into_iter().find(|p| {
            want == p.as_str() || want == super::fold::fold_default(self.priority_label(*p))
        })
    }

    /// A state by its canonical name (or with spaces for underscores) or its label.
    pub fn parse_state(&self, text: &str) -> Option<State> {
        let want = super::fold::fold_default(text.trim());
        text.parse::<State>().ok().or_else(|| {
            State::ALL
                .into_iter()
                .find(|s| want == super::fold::fold_default(self.state_label(*s)))
        })
    }

    pub fn priority_choices(&self) -> Vec<String> {
        Priority::ALL
            .iter()
            .zip(&self.priority)
            .map(|(p, l)| choice(p.as_str(), l))
            .collect()
    }

    pub fn state_choices(&self) -> Vec<String> {
        State::ALL
            .iter()
            .zip(&self.state)
            .map(|(s, l)| choice(s.as_str(), l))
            .collect()
    }
}

fn choice(canonical: &str, label: &str) -> String {
    if canonical == label {
        canonical.to_string()
    } else {
        format!("{canonical} ({label})")
    }
}

/// A `[[test]]` case, kept as written and run by `rules test`.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub mailbox: String,
    /// How the request arrived (`channel = "phone"`); mail by default.
    pub channel: crate::ticket::Channel,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<(String, Option<String>)>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub expect: Vec<(String, ExpectValue)>,
}

impl TestCase {
    pub fn from_ast(t: super::syntax::TestAst, file: &str, line: usize) -> TestCase {
        let name_of = |a: At<String>| a.value;
        TestCase {
            name: t.name.value,
            file: file.to_string(),
            line,
            mailbox: t.mailbox.value,
            channel: t.channel.unwrap_or_default(),
            from: t.from,
            to: t.to,
            cc: t.cc,
            subject: t.subject,
            body: t.body,
            headers: t
                .headers
                .into_iter()
                .map(|(k, v)| (name_of(k), v))
                .collect(),
            attachments: t.attachments,
            in_reply_to: t.in_reply_to,
            references: t.references,
            expect: t.expect.into_iter().map(|(k, v)| (name_of(k), v)).collect(),
        }
    }
}
