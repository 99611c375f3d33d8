//! Compiling what a rule (or a mailbox's defaults) sets, checking every
//! name against the vocabulary and the configuration.

use std::collections::BTreeSet;

use super::compile::{
    BUILTIN_ACK, Compiler, MAX_SLA_HOURS, did_you_mean, hint_for, is_plausible_address,
};
use super::error::Source;
use super::model::{Ack, Actions, Owner};
use super::sla::Sla;
use super::syntax::{AckAst, ActionsAst, At};

/// Which time target a pair of keys sets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target {
    /// The keys' common prefix: `sla` (`sla_hours`, `sla_business_hours`).
    key: &'static str,
    /// How messages name it.
    what: &'static str,
}

impl Target {
    pub(super) const SLA: Target = Target {
        key: "sla",
        what: "SLA",
    };
    pub(super) const FIRST_RESPONSE: Target = Target {
        key: "first_response",
        what: "first-response target",
    };
}

impl Compiler<'_> {
    pub(super) fn actions(&mut self, src: &Source, a: &ActionsAst) -> Actions {
        let mut out = Actions {
            pipeline: self.non_empty(src, a.pipeline.as_ref(), "pipeline"),
            owner: self.owner(src, a),
            priority: a.priority.as_ref().and_then(|p| self.priority(src, p)),
            state: a.state.as_ref().and_then(|s| self.state(src, s)),
            ticket_type: a
                .ticket_type
                .as_ref()
                .and_then(|t| self.ticket_type(src, t)),
            category: self.non_empty(src, a.category.as_ref(), "category"),
            area: self.non_empty(src, a.area.as_ref(), "area"),
            sla: self.target(
                src,
                Target::SLA,
                a.sla_hours.as_ref(),
                a.sla_business_hours.as_ref(),
            ),
            first_response: self.target(
                src,
                Target::FIRST_RESPONSE,
                a.first_response_hours.as_ref(),
                a.first_response_business_hours.as_ref(),
            ),
            ack: a.ack.as_ref().and_then(|ack| self.ack(src, ack)),
            ..Actions::default()
        };
        for t in &a.tags {
            if let Some(tag) = self.non_empty(src, Some(t), "tags") {
                out.tags.push(tag);
            }
        }
        for (name, value) in &a.fields {
            if self.field(src, name, value) {
                out.fields.push((name.value.clone(), value.value.clone()));
            }
        }
        for n in &a.notify {
            if let Some(address) = self.notify(src, n) {
                out.notify.push(address);
            }
        }
        out
    }

    pub(super) fn non_empty(
        &mut self,
        src: &Source,
        v: Option<&At<String>>,
        what: &str,
    ) -> Option<String> {
        let v = v?;
        if v.value.trim().is_empty() {
            self.error(
                src,
                &v.span,
                format!("`{what}` is empty"),
                Some("write a value or remove the key".into()),
            );
            return None;
        }
        Some(v.value.trim().to_string())
    }

    pub(super) fn owner(&mut self, src: &Source, a: &ActionsAst) -> Option<Owner> {
        match (&a.owner, &a.owner_group) {
            (Some(_), Some(g)) => {
                let message = "a rule sets either `owner` or `owner_group`, not both".to_string();
                self.error(src, &g.span, message, Some("keep the one you mean".into()));
                None
            }
            (Some(p), None) => {
                self.check_person(src, p);
                self.non_empty(src, Some(p), "owner").map(Owner::Person)
            }
            (None, Some(g)) => {
                if !self.groups.contains_key(&g.value) {
                    let hint = if self.groups.is_empty() {
                        "define it with [groups.NAME] members = [\"...\"]".to_string()
                    } else {
                        hint_for(
                            &g.value,
                            "groups are",
                            self.groups.keys().map(String::as_str),
                        )
                    };
                    self.error(
                        src,
                        &g.span,
                        format!("unknown group `{}`", g.value),
                        Some(hint),
                    );
                    return None;
                }
                Some(Owner::Group(g.value.clone()))
            }
            (None, None) => None,
        }
    }

    pub(super) fn priority(
        &mut self,
        src: &Source,
        p: &At<String>,
    ) -> Option<crate::ticket::Priority> {
        let found = self.labels.parse_priority(&p.value);
        if found.is_none() {
            let choices = self.labels.priority_choices();
            let mut names: Vec<&str> = crate::ticket::Priority::ALL
                .iter()
                .map(|p| p.as_str())
                .collect();
            names.extend(self.labels.priority.iter().map(String::as_str));
            let hint = match did_you_mean(&p.value, names) {
                Some(h) => format!("{h} (priorities are {})", choices.join(", ")),
                None => format!("priorities are {}", choices.join(", ")),
            };
            self.error(
                src,
                &p.span,
                format!("unknown priority `{}`", p.value),
                Some(hint),
            );
        }
        found
    }

    pub(super) fn state(&mut self, src: &Source, s: &At<String>) -> Option<crate::ticket::State> {
        let found = self.labels.parse_state(&s.value);
        if found.is_none() {
            let choices = self.labels.state_choices();
            let mut names: Vec<&str> = crate::ticket::State::ALL
                .iter()
                .map(|s| s.as_str())
                .collect();
            names.extend(self.labels.state.iter().map(String::as_str));
            let hint = match did_you_mean(&s.value, names) {
                Some(h) => format!("{h} (states are {})", choices.join(", ")),
                None => format!("states are {}", choices.join(", ")),
            };
            self.error(
                src,
                &s.span,
                format!("unknown state `{}`", s.value),
                Some(hint),
            );
        }
        found
    }

    /// When the files declare `[types]`, the list is closed: a misspelt type
    /// would silently lose its SLA.
    pub(super) fn ticket_type(&mut self, src: &Source, t: &At<String>) -> Option<String> {
        if !self.types.is_empty() && !self.types.contains_key(&t.value) {
            let hint = hint_for(
                &t.value,
                "declared types are",
                self.types.keys().map(String::as_str),
            );
            self.error(
                src,
                &t.span,
                format!("unknown type `{}`", t.value),
                Some(hint),
            );
            return None;
        }
        self.non_empty(src, Some(t), "type")
    }

    pub(super) fn field(&mut self, src: &Source, name: &At<String>, value: &At<String>) -> bool {
        if self.fields.is_empty() {
            return true;
        }
        let Some(def) = self.fields.get(&name.value) else {
            let hint = hint_for(
                &name.value,
                "declared fields are",
                self.fields.keys().map(String::as_str),
            );
            self.error(
                src,
                &name.span,
                format!("unknown field `fields.{}`", name.value),
                Some(hint),
            );
            return false;
        };
        if def.values.is_empty() || def.values.contains(&value.value) {
            return true;
        }
        let message = format!("`{}` is not a value of field `{}`", value.value, name.value);
        let values: Vec<String> = def.values.clone();
        let hint = hint_for(
            &value.value,
            "its values are",
            values.iter().map(String::as_str),
        );
        self.error(src, &value.span, message, Some(hint));
        false
    }

    /// A time target from its two keys (`sla_hours` / `sla_business_hours`,
    /// or the first-response pair): at most one of them, 1 to a year.
    pub(super) fn target(
        &mut self,
        src: &Source,
        target: Target,
        hours: Option<&At<i64>>,
        business: Option<&At<i64>>,
    ) -> Option<Sla> {
        let (value, is_business) = match (hours, business) {
            (Some(_), Some(b)) => {
                let message = format!(
                    "write either `{}_hours` or `{}_business_hours`, not both",
                    target.key, target.key
                );
                let hint = Some(
                    "hours count nights and weekends; business hours only [business_hours]".into(),
                );
                self.error(src, &b.span, message, hint);
                return None;
            }
            (Some(h), None) => (h, false),
            (None, Some(b)) => (b, true),
            (None, None) => return None,
        };
        if !(1..=MAX_SLA_HOURS).contains(&value.value) {
            let message = format!("{} hours is not a usable {}", value.value, target.what);
            let hint = Some(format!("write a number of hours from 1 to {MAX_SLA_HOURS}"));
            self.error(src, &value.span, message, hint);
            return None;
        }
        let hours = u32::try_from(value.value).ok()?;
        Some(Sla {
            hours,
            business: is_business,
        })
    }

    pub(super) fn ack(&mut self, src: &Source, ack: &At<AckAst>) -> Option<Ack> {
        match &ack.value {
            AckAst::None => Some(Ack::None),
            AckAst::Template(name) if name == BUILTIN_ACK || self.ctx.templates.contains(name) => {
                Some(Ack::Template(name.clone()))
            }
            AckAst::Template(name) => {
                let known: BTreeSet<&str> = std::iter::once(BUILTIN_ACK)
                    .chain(self.ctx.templates.iter().map(String::as_str))
                    .collect();
                let hint = format!(
                    "{}; templates are files NAME.txt in the templates directory, or write `ack = false` for none",
                    hint_for(name, "known templates are", known)
                );
                self.error(
                    src,
                    &ack.span,
                    format!("unknown template `{name}`"),
                    Some(hint),
                );
                None
            }
        }
    }

    pub(super) fn notify(&mut self, src: &Source, n: &At<String>) -> Option<String> {
        if n.value.contains('@') {
            if is_plausible_address(&n.value) {
                return Some(n.value.to_ascii_lowercase());
            }
            let message = format!("`{}` is not a mail address", n.value);
            self.error(
                src,
                &n.span,
                message,
                Some("write it as \"nombre@empresa.example\"".into()),
            );
            return None;
        }
        match self.ctx.people.get(&n.value) {
            Some(Some(address)) => Some(address.to_ascii_lowercase()),
            Some(None) => {
                let message = format!("person `{}` has no address to notify", n.value);
                let hint = Some(format!(
                    "add `address = \"...\"` to [people.{}] in the configuration",
                    n.value
                ));
                self.error(src, &n.span, message, hint);
                None
            }
            None => {
                let hint = if self.ctx.people.is_empty() {
                    "write a mail address, or a person of the configuration's [people.NAME]"
                        .to_string()
                } else {
                    hint_for(
                        &n.value,
                        "people in the configuration's [people]",
                        self.ctx.people.keys().map(String::as_str),
                    )
                };
                self.error(
                    src,
                    &n.span,
                    format!("`{}` is neither an address nor a person", n.value),
                    Some(hint),
                );
                None
            }
        }
    }
}
