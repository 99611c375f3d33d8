//! Compiling conditions: each text condition becomes a leaf pattern of the
//! matchers (see `matcher`), combinators become boolean structure, and a
//! rule's `mailbox = ...` conditions become its scope.

use std::collections::BTreeSet;

use super::compile::{Compiler, hint_for};
use super::error::Source;
use super::fold::{Variant, fold, lower_pattern, unaccent_pattern};
use super::matcher::{LeafSpec, compile_one, literal_pattern, regex_pattern};
use super::model::{AutoCond, Cond};
use super::syntax::{At, AutoAst, CondAst, OpKind, TextCondAst, TextField};
use crate::classify::AutoKind;

const AUTO_KINDS: [AutoKind; 7] = [
    AutoKind::AutoReply,
    AutoKind::Bounce,
    AutoKind::Complaint,
    AutoKind::List,
    AutoKind::Generated,
    AutoKind::NoReply,
    AutoKind::Ours,
];

impl Compiler<'_> {
    pub(super) fn cond(&mut self, src: &Source, ast: &At<CondAst>) -> Option<Cond> {
        let many = |c: &mut Self, list: &[At<CondAst>]| -> Option<Vec<Cond>> {
            let compiled: Vec<Option<Cond>> = list.iter().map(|x| c.cond(src, x)).collect();
            compiled.into_iter().collect()
        };
        match &ast.value {
            CondAst::All(list) => Some(Cond::All(many(self, list)?)),
            CondAst::Any(list) => {
                if list.is_empty() {
                    self.error(
                        src,
                        &ast.span,
                        "`any` with no conditions never holds".into(),
                        None,
                    );
                    return None;
                }
                Some(Cond::Any(many(self, list)?))
            }
            CondAst::Not(inner) => Some(Cond::Not(Box::new(self.cond(src, inner)?))),
            CondAst::IsReply(b) => Some(Cond::IsReply(*b)),
            CondAst::Automatic(AutoAst::Is(b)) => Some(Cond::Automatic(AutoCond::Is(*b))),
            CondAst::Automatic(AutoAst::Kinds(kinds)) => self.auto_kinds(src, kinds),
            CondAst::Text(t) => self.text_cond(src, t),
        }
    }

    pub(super) fn auto_kinds(&mut self, src: &Source, kinds: &[At<String>]) -> Option<Cond> {
        let mut out = Vec::new();
        for k in kinds {
            match AUTO_KINDS.iter().find(|a| a.as_str() == k.value) {
                Some(kind) => out.push(*kind),
                None => {
                    let hint =
                        hint_for(&k.value, "kinds are", AUTO_KINDS.iter().map(|a| a.as_str()));
                    self.error(
                        src,
                        &k.span,
                        format!("unknown kind of automatic mail `{}`", k.value),
                        Some(hint),
                    );
                }
            }
        }
        (out.len() == kinds.len()).then_some(Cond::Automatic(AutoCond::Kinds(out)))
    }

    pub(super) fn text_cond(&mut self, src: &Source, t: &TextCondAst) -> Option<Cond> {
        let mut parts = Vec::new();
        for op in &t.ops {
            let leaves = if op.value.kind == OpKind::Regex {
                self.regex_leaves(src, t, &op.value.values)?
            } else {
                vec![self.literal_leaf(src, t, op.value.kind, &op.value.values)?]
            };
            parts.push(if leaves.len() == 1 {
                leaves.into_iter().next()?
            } else {
                Cond::Any(leaves)
            });
        }
        if parts.len() == 1 {
            parts.pop()
        } else {
            Some(Cond::All(parts))
        }
    }

    pub(super) fn literal_leaf(
        &mut self,
        src: &Source,
        t: &TextCondAst,
        kind: OpKind,
        values: &[At<String>],
    ) -> Option<Cond> {
        let variant = Variant::for_flags(t.ignore_case, t.ignore_accents);
        let mut ok = true;
        for v in values {
            if v.value.is_empty() {
                self.error(
                    src,
                    &v.span,
                    "empty text matches every message".into(),
                    Some("write the text to look for".into()),
                );
                ok = false;
            } else if t.field == TextField::Mailbox && kind == OpKind::Equals {
                self.check_mailbox(src, v);
            } else if t.field == TextField::Channel
                && let Err((message, hint)) = canonical_channel(&v.value)
            {
                self.error(src, &v.span, message, Some(hint));
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let compared: Vec<String> = values
            .iter()
            .map(|v| fold(&v.value, variant).into_owned())
            .collect();
        let case_flag = t.ignore_case && variant == Variant::Original;
        let pattern = literal_pattern(kind, t.field.is_multi_valued(), case_flag, &compared);
        let regex = match compile_one(&pattern) {
            Ok(r) => r,
            Err(e) => {
                let at = values.first().map(|v| v.span.clone()).unwrap_or_default();
                self.error(
                    src,
                    &at,
                    format!("these values cannot be compiled: {e}"),
                    None,
                );
                return None;
            }
        };
        Some(Cond::Leaf(self.matchers.add(LeafSpec {
            field: t.field.clone(),
            variant,
            kind,
            values: values.iter().map(|v| v.value.clone()).collect(),
            compared,
            pattern,
            regex,
            captures: false,
        })))
    }

    pub(super) fn regex_leaves(
        &mut self,
        src: &Source,
        t: &TextCondAst,
        values: &[At<String>],
    ) -> Option<Vec<Cond>> {
        let variant = Variant::for_flags(t.ignore_case, t.ignore_accents);
        let mut out = Vec::new();
        for v in values {
            if let Some(e) = super::regex_check::check(src, v) {
                self.problems.push(e);
                continue;
            }
            let written = if t.ignore_accents {
                unaccent_pattern(&v.value)
            } else {
                v.value.as_str().into()
            };
            // On folded text a lowered pattern needs no `(?i)`, which keeps
            // literal prefilters and the DFA engines fast.
            let (written, case_flag) = match variant {
                Variant::Folded => lower_pattern(&written, true),
                _ => (written.into_owned(), t.ignore_case),
            };
            let pattern = regex_pattern(&written, t.field.is_multi_valued(), case_flag);
            let regex = match compile_one(&pattern) {
                Ok(r) => r,
                Err(e) => {
                    let hint = Some("simplify the pattern (bounded repetitions such as {1,1000} grow it quickly)".into());
                    self.error(src, &v.span, format!("regex cannot be compiled: {e}"), hint);
                    continue;
                }
            };
            let captures = regex.capture_names().flatten().next().is_some();
            out.push(Cond::Leaf(self.matchers.add(LeafSpec {
                field: t.field.clone(),
                variant,
                kind: OpKind::Regex,
                values: vec![v.value.clone()],
                compared: vec![written],
                pattern,
                regex,
                captures,
            })));
        }
        (out.len() == values.len()).then_some(out)
    }

    /// The mailboxes a rule can match in, from its `mailbox = ...`
    /// conditions (folded names); `None` when it is not limited to some.
    pub(super) fn mailbox_scope(&self, when: Option<&Cond>) -> Option<BTreeSet<String>> {
        let mut conjuncts = Vec::new();
        top_conjuncts(when?, &mut conjuncts);
        let mut scope: Option<BTreeSet<String>> = None;
        for c in conjuncts {
            let Cond::Leaf(id) = c else { continue };
            let Some(leaf) = self.matchers.leaf(*id) else {
                continue;
            };
            if leaf.field != TextField::Mailbox
                || leaf.kind != OpKind::Equals
                || leaf.variant != Variant::Folded
            {
                continue;
            }
            let names: BTreeSet<String> = leaf.compared.iter().cloned().collect();
            scope = Some(match scope {
                None => names,
                Some(have) => have.intersection(&names).cloned().collect(),
            });
        }
        scope
    }

    pub(super) fn has_captures(&self, cond: &Cond) -> bool {
        match cond {
            Cond::All(list) | Cond::Any(list) => list.iter().any(|c| self.has_captures(c)),
            Cond::Leaf(id) => self.matchers.leaf_captures(*id),
            Cond::Not(_) | Cond::IsReply(_) | Cond::Automatic(_) => false,
        }
    }
}

/// Every leaf a condition reads.
pub(super) fn leaves_of(cond: &Cond, out: &mut Vec<usize>) {
    match cond {
        Cond::All(list) | Cond::Any(list) => list.iter().for_each(|c| leaves_of(c, out)),
        Cond::Not(inner) => leaves_of(inner, out),
        Cond::Leaf(id) => out.push(*id),
        Cond::IsReply(_) | Cond::Automatic(_) => {}
    }
}

/// The conditions that must all hold (nested `all` flattened).
fn top_conjuncts<'c>(cond: &'c Cond, out: &mut Vec<&'c Cond>) {
    match cond {
        Cond::All(list) => list.iter().for_each(|c| top_conjuncts(c, out)),
        other => out.push(other),
    }
}

/// A `channel` condition compares with the stored name (`phone`), so the
/// Spanish word is refused with the name to write instead.
fn canonical_channel(value: &str) -> Result<(), (String, String)> {
    let hint = "the channels are \"email\", \"phone\" and \"in_person\"".to_string();
    match value.parse::<crate::ticket::Channel>() {
        Ok(c) if c.as_str() == value.trim() => Ok(()),
        Ok(c) => Err((
            format!("unknown channel '{value}'"),
            format!("write \"{}\"", c.as_str()),
        )),
        Err(e) => Err((e, hint)),
    }
}
