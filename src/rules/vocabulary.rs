//! Compiling the vocabulary the rule files declare: ticket types, the
//! team's fields, priority and state labels, business hours and owner
//! groups (whose members are the configuration's people).

use super::actions::Target;
use super::compile::{Compiler, hint_for};
use super::error::Source;
use super::group::{Group, Strategy};
use super::model::{FieldDef, TypeDef};
use super::sla::{BusinessHours, DAY_NAMES, parse_clock, parse_date};
use super::syntax::{At, FileAst};

impl Compiler<'_> {
    pub(super) fn declare_vocabulary(&mut self, src: &Source, file: &FileAst) {
        for t in &file.types {
            if !self.first_definition(src, "type", &t.name) {
                continue;
            }
            let sla = self.target(
                src,
                Target::SLA,
                t.sla_hours.as_ref(),
                t.sla_business_hours.as_ref(),
            );
            let first_response = self.target(
                src,
                Target::FIRST_RESPONSE,
                t.first_response_hours.as_ref(),
                t.first_response_business_hours.as_ref(),
            );
            let def = TypeDef {
                origin: format!("type:{}/{}", src.file_name, t.name.value),
                sla,
                first_response,
            };
            self.types.insert(t.name.value.clone(), def);
        }
        for f in &file.fields {
            if !self.first_definition(src, "field", &f.name) {
                continue;
            }
            let values = f.values.iter().map(|v| v.value.clone()).collect();
            self.fields
                .insert(f.name.value.clone(), FieldDef { values });
        }
        for l in &file.labels {
            self.label(src, l);
        }
        if let Some(bh) = &file.business_hours {
            self.declare_business_hours(src, bh);
        }
    }

    pub(super) fn label(&mut self, src: &Source, l: &super::syntax::LabelAst) {
        let names: Vec<&str> = match l.kind.as_str() {
            "priority" => crate::ticket::Priority::ALL
                .iter()
                .map(|p| p.as_str())
                .collect(),
            _ => crate::ticket::State::ALL
                .iter()
                .map(|s| s.as_str())
                .collect(),
        };
        let Some(i) = names.iter().position(|n| *n == l.canonical.value) else {
            let message = format!(
                "unknown {} `{}` in [labels.{}]",
                l.kind, l.canonical.value, l.kind
            );
            let hint = hint_for(
                &l.canonical.value,
                "the names to label are",
                names.iter().copied(),
            );
            self.error(src, &l.canonical.span, message, Some(hint));
            return;
        };
        let slot = match l.kind.as_str() {
            "priority" => self.labels.priority.get_mut(i),
            _ => self.labels.state.get_mut(i),
        };
        if let Some(slot) = slot {
            *slot = l.label.value.clone();
        }
    }

    pub(super) fn declare_business_hours(
        &mut self,
        src: &Source,
        bh: &super::syntax::BusinessHoursAst,
    ) {
        let (line, _) = src.position(bh.at);
        if let Some((_, first)) = &self.business_hours {
            let message = "[business_hours] is defined twice".to_string();
            let hint = Some(format!("the first definition is at {first}; keep one"));
            self.error(src, &(bh.at..bh.at), message, hint);
            return;
        }
        let mut hours = BusinessHours::default();
        if let Some(days) = &bh.days {
            hours.days = [false; 7];
            for d in days {
                match DAY_NAMES
                    .iter()
                    .position(|n| *n == d.value.to_ascii_lowercase())
                {
                    Some(i) => hours.days[i] = true,
                    None => {
                        let hint = hint_for(&d.value, "days are", DAY_NAMES.iter().copied());
                        self.error(
                            src,
                            &d.span,
                            format!("unknown day `{}`", d.value),
                            Some(hint),
                        );
                    }
                }
            }
        }
        for (slot, value) in [(&mut hours.start, &bh.start), (&mut hours.end, &bh.end)] {
            if let Some(v) = value {
                match parse_clock(&v.value) {
                    Some(minutes) => *slot = minutes,
                    None => self.problems.push(
                        src.error(v.span.start, format!("`{}` is not a time of day", v.value))
                            .with_hint("write it as \"09:00\""),
                    ),
                }
            }
        }
        for h in &bh.holidays {
            match parse_date(h.value.trim()) {
                Some(date) => {
                    if !hours.holidays.insert(date) {
                        let message = format!("holiday {date} is listed twice");
                        let hint = Some("remove one; was another date meant?".into());
                        self.warn(src, h.span.start, message, hint);
                    }
                }
                None => self.error(
                    src,
                    &h.span,
                    format!("`{}` is not a date", h.value),
                    Some("write holidays as YYYY-MM-DD dates: holidays = [\"2026-12-08\", \"2026-12-25\"]".into()),
                ),
            }
        }
        if hours.start >= hours.end {
            let message = "business hours end before they start".to_string();
            self.error(
                src,
                &(bh.at..bh.at),
                message,
                Some("write start = \"09:00\", end = \"18:00\"".into()),
            );
        }
        self.business_hours = Some((hours, format!("{}:{line}", src.name)));
    }

    pub(super) fn declare_group(&mut self, src: &Source, g: &super::syntax::GroupAst) {
        if !self.first_definition(src, "group", &g.name) {
            return;
        }
        let strategy = match &g.strategy {
            None => Strategy::RoundRobin,
            Some(s) => match Strategy::parse(&s.value) {
                Some(strategy) => strategy,
                None => {
                    let hint =
                        hint_for(&s.value, "strategies are", Strategy::NAMES.iter().copied());
                    self.error(
                        src,
                        &s.span,
                        format!("unknown strategy `{}`", s.value),
                        Some(hint),
                    );
                    Strategy::RoundRobin
                }
            },
        };
        if g.members.is_empty() {
            let message = format!("group `{}` has no members", g.name.value);
            self.error(
                src,
                &g.name.span,
                message,
                Some("add `members = [\"...\"]`".into()),
            );
        }
        for m in &g.members {
            self.check_person(src, m);
        }
        let group = Group {
            name: g.name.value.clone(),
            members: g.members.iter().map(|m| m.value.clone()).collect(),
            strategy,
        };
        self.groups.insert(g.name.value.clone(), group);
    }

    /// When the configuration declares `[people]`, every owner must be one
    /// of them (a misspelt owner would own tickets nobody sees).
    pub(super) fn check_person(&mut self, src: &Source, who: &At<String>) {
        let people = &self.ctx.people;
        if people.is_empty() || people.contains_key(&who.value) {
            return;
        }
        let mut hint = hint_for(
            &who.value,
            "people in the configuration's [people]",
            people.keys().map(String::as_str),
        );
        if self.groups.contains_key(&who.value) {
            hint = format!(
                "`{}` is a group: write `owner_group = \"{}\"`",
                who.value, who.value
            );
        }
        self.error(
            src,
            &who.span,
            format!("unknown person `{}`", who.value),
            Some(hint),
        );
    }
}
