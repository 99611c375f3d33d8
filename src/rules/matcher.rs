//! The compiled text conditions and the `RegexSet` prefilter.
//!
//! Every text condition of every rule becomes one pattern ("leaf"). Leaves
//! are grouped by mailbox, by the part of the message they read and by the
//! text form they compare against ([`Variant`]); each group is one
//! `RegexSet`, so a message is scanned once per group no matter how many
//! rules there are, and only with its own mailbox's patterns. The result is
//! a bit per leaf, and rules are then plain boolean logic over those bits.
//! The `regex` crate guarantees linear time, so no rule can stall the daemon.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use regex::{Regex, RegexSet, RegexSetBuilder};

use super::fold::{Variant, fold, original_range};
use super::syntax::{OpKind, TextField};
use crate::parse::ParsedMail;
use crate::thread::strip_reply_prefixes;

/// Compiled pattern size limits: generous, because hundreds of rules share
/// one set, but bounded so a pathological rule file cannot exhaust memory.
const SET_SIZE_LIMIT: usize = 256 << 20;
const SET_DFA_LIMIT: usize = 64 << 20;
const REGEX_SIZE_LIMIT: usize = 16 << 20;

/// One text condition, ready to match.
#[derive(Debug)]
pub struct Leaf {
    pub field: TextField,
    pub variant: Variant,
    pub kind: OpKind,
    /// Values as the admin wrote them, for explanations.
    pub values: Vec<String>,
    /// Values in the form they are compared in (folded), for the shadowing
    /// analysis of `rules check`.
    pub compared: Vec<String>,
    /// The final pattern; identical patterns share one leaf.
    pub pattern: String,
    /// The same pattern on its own, to locate matches and read captures.
    pub regex: Regex,
    /// Whether the pattern has named groups that become ticket keys.
    pub captures: bool,
    source: usize,
}

impl Leaf {
    /// `subject contains "rescate" or "retiro"`, for explanations.
    pub fn describe(&self) -> String {
        let values: Vec<String> = self
            .values
            .iter()
            .map(|v| match self.kind {
                OpKind::Regex => format!("'{v}'"),
                _ => format!("{v:?}"),
            })
            .collect();
        let flags = match self.variant {
            Variant::Folded => "",
            Variant::Unaccented => " (case-sensitive)",
            Variant::Original if self.pattern.starts_with("(?i") => " (accents matter)",
            Variant::Original => " (case-sensitive, accents matter)",
        };
        format!(
            "{} {} {}{flags}",
            self.field.name(),
            self.kind.name(),
            values.join(" or ")
        )
    }
}

/// Builds the pattern of a literal operator (equals, contains, starts_with,
/// ends_with) over already-folded values.
pub fn literal_pattern(kind: OpKind, multi: bool, case_flag: bool, values: &[String]) -> String {
    let alts: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
    let alts = alts.join("|");
    let (start, end) = if multi { ("^", "$") } else { (r"\A", r"\z") };
    let flags = flags(case_flag, multi);
    match kind {
        OpKind::Equals => format!("{flags}{start}(?:{alts}){end}"),
        OpKind::Contains | OpKind::Regex => format!("{flags}(?:{alts})"),
        OpKind::StartsWith => format!("{flags}{start}(?:{alts})"),
        OpKind::EndsWith => format!("{flags}(?:{alts}){end}"),
    }
}

/// The admin's regex with our flags in front. Flags go first rather than
/// wrapping the pattern in a group, because a wrapped `(?x)` pattern ending
/// in a comment would swallow the closing parenthesis.
pub fn regex_pattern(pattern: &str, multi: bool, case_flag: bool) -> String {
    format!("{}{pattern}", flags(case_flag, multi))
}

fn flags(case_insensitive: bool, multi: bool) -> &'static str {
    match (case_insensitive, multi) {
        (true, true) => "(?im)",
        (true, false) => "(?i)",
        (false, true) => "(?m)",
        (false, false) => "",
    }
}

/// Compiles one standalone pattern with the shared size limit.
pub fn compile_one(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

/// Which messages a leaf must be checked for.
#[derive(Debug, Clone)]
enum Need {
    /// Only rules that failed to compile read it.
    Unused,
    /// Only rules scoped to these mailboxes (folded names) read it.
    Mailboxes(BTreeSet<String>),
    /// Some rule that applies to every mailbox reads it.
    Everywhere,
}

impl Need {
    fn covers(&self, mailbox: Option<&str>) -> bool {
        match (self, mailbox) {
            (Need::Everywhere, _) => true,
            (Need::Mailboxes(set), Some(m)) => set.contains(m),
            _ => false,
        }
    }
}

/// Collects leaves while rules are compiled.
#[derive(Default)]
pub struct MatcherBuilder {
    leaves: Vec<Leaf>,
    needs: Vec<Need>,
    sources: Vec<TextField>,
    by_pattern: BTreeMap<(usize, Variant, String), usize>,
}

/// What a new leaf is; see [`Leaf`].
pub struct LeafSpec {
    pub field: TextField,
    pub variant: Variant,
    pub kind: OpKind,
    pub values: Vec<String>,
    pub compared: Vec<String>,
    pub pattern: String,
    pub regex: Regex,
    pub captures: bool,
}

impl MatcherBuilder {
    /// Adds a leaf, or returns the existing one with the same pattern (rules
    /// often repeat `mailbox = "..."`; the set then checks it once).
    pub fn add(&mut self, spec: LeafSpec) -> usize {
        let source = match self.sources.iter().position(|s| *s == spec.field) {
            Some(i) => i,
            None => {
                self.sources.push(spec.field.clone());
                self.sources.len() - 1
            }
        };
        let key = (source, spec.variant, spec.pattern.clone());
        if let Some(&id) = self.by_pattern.get(&key) {
            return id;
        }
        self.leaves.push(Leaf {
            field: spec.field,
            variant: spec.variant,
            kind: spec.kind,
            values: spec.values,
            compared: spec.compared,
            pattern: spec.pattern,
            regex: spec.regex,
            captures: spec.captures,
            source,
        });
        self.needs.push(Need::Unused);
        let id = self.leaves.len() - 1;
        self.by_pattern.insert(key, id);
        id
    }

    pub fn leaf(&self, id: usize) -> Option<&Leaf> {
        self.leaves.get(id)
    }

    /// Whether a leaf already added has named captures.
    pub fn leaf_captures(&self, id: usize) -> bool {
        self.leaf(id).is_some_and(|l| l.captures)
    }

    /// Records that a rule for `scope` (folded mailbox names; `None`: all)
    /// reads these leaves.
    pub fn need(&mut self, leaves: &[usize], scope: Option<&BTreeSet<String>>) {
        for &id in leaves {
            let Some(need) = self.needs.get_mut(id) else {
                continue;
            };
            *need = match (std::mem::replace(need, Need::Unused), scope) {
                (Need::Everywhere, _) | (_, None) => Need::Everywhere,
                (Need::Unused, Some(s)) => Need::Mailboxes(s.clone()),
                (Need::Mailboxes(mut have), Some(s)) => {
                    have.extend(s.iter().cloned());
                    Need::Mailboxes(have)
                }
            };
        }
    }

    /// One group of sets per mailbox, holding only the leaves its rules can
    /// read: a message is scanned for its own mailbox's patterns, not for
    /// every team's. `mailboxes` are the folded names of the configuration.
    pub fn build(self, mailboxes: &BTreeSet<String>) -> Result<Matchers, String> {
        let mut by_mailbox = BTreeMap::new();
        for mailbox in mailboxes {
            let sets = self.sets(|need| need.covers(Some(mailbox)))?;
            by_mailbox.insert(mailbox.clone(), sets);
        }
        let elsewhere = self.sets(|need| need.covers(None))?;
        Ok(Matchers {
            leaves: self.leaves,
            sources: self.sources,
            by_mailbox,
            elsewhere,
        })
    }

    fn sets(&self, wanted: impl Fn(&Need) -> bool) -> Result<Vec<SetEntry>, String> {
        let mut groups: BTreeMap<(usize, Variant), Vec<usize>> = BTreeMap::new();
        for (id, leaf) in self.leaves.iter().enumerate() {
            if self.needs.get(id).is_some_and(&wanted) {
                groups
                    .entry((leaf.source, leaf.variant))
                    .or_default()
                    .push(id);
            }
        }
        let mut sets = Vec::new();
        for ((source, variant), ids) in groups {
            let patterns = ids
                .iter()
                .filter_map(|&id| self.leaves.get(id))
                .map(|l| l.pattern.as_str());
            let set = RegexSetBuilder::new(patterns)
                .size_limit(SET_SIZE_LIMIT)
                .dfa_size_limit(SET_DFA_LIMIT)
                .build()
                .map_err(|e| {
                    let field = self
                        .sources
                        .get(source)
                        .map(|f| f.name())
                        .unwrap_or_default();
                    format!("the patterns on `{field}` together are too large to compile: {e}")
                })?;
            sets.push(SetEntry {
                source,
                variant,
                set,
                leaves: ids,
            });
        }
        Ok(sets)
    }
}

#[derive(Debug)]
struct SetEntry {
    source: usize,
    variant: Variant,
    set: RegexSet,
    /// Set pattern `i` is leaf `leaves[i]`.
    leaves: Vec<usize>,
}

/// All leaves and their sets, grouped by mailbox.
#[derive(Debug, Default)]
pub struct Matchers {
    pub leaves: Vec<Leaf>,
    sources: Vec<TextField>,
    /// Folded mailbox name → the sets its messages are scanned with.
    by_mailbox: BTreeMap<String, Vec<SetEntry>>,
    /// For a mailbox the configuration does not know: unscoped leaves only.
    elsewhere: Vec<SetEntry>,
}

/// Which leaves matched one message.
pub struct Hits(Vec<u64>);

impl Hits {
    fn new(leaves: usize) -> Hits {
        Hits(vec![0; leaves.div_ceil(64)])
    }

    pub fn get(&self, leaf: usize) -> bool {
        self.0
            .get(leaf / 64)
            .is_some_and(|word| word & (1 << (leaf % 64)) != 0)
    }

    fn set(&mut self, leaf: usize) {
        if let Some(word) = self.0.get_mut(leaf / 64) {
            *word |= 1 << (leaf % 64);
        }
    }
}

/// The texts of one message that the rule set reads, each computed once
/// and only when a pattern needs it.
pub struct Texts<'a> {
    view: MessageView<'a>,
    originals: Vec<Option<Cow<'a, str>>>,
    /// Per source, per variant: `None` until computed; `Some(None)` when the
    /// variant equals the original (the common case for ASCII text).
    variants: Vec<[Option<Option<String>>; 3]>,
}

impl<'a> Texts<'a> {
    fn new(view: MessageView<'a>, sources: usize) -> Texts<'a> {
        Texts {
            view,
            originals: vec![None; sources],
            variants: vec![[None, None, None]; sources],
        }
    }

    pub fn original(&self, source: usize) -> &str {
        match self.originals.get(source) {
            Some(Some(text)) => text,
            _ => "",
        }
    }

    fn ensure(&mut self, source: usize, field: &TextField, variant: Variant) {
        if let Some(slot) = self.originals.get_mut(source)
            && slot.is_none()
        {
            *slot = Some(source_text(field, &self.view));
        }
        let original = match self.originals.get(source) {
            Some(Some(text)) => text.as_ref(),
            _ => "",
        };
        if let Some(slots) = self.variants.get_mut(source) {
            let slot = &mut slots[variant.index()];
            if slot.is_none() {
                *slot = Some(match fold(original, variant) {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(s) => Some(s),
                });
            }
        }
    }

    /// The text in the given form (the original when not computed).
    pub fn variant(&self, source: usize, variant: Variant) -> &str {
        match self
            .variants
            .get(source)
            .and_then(|slots| slots[variant.index()].as_ref())
        {
            Some(Some(folded)) => folded,
            _ => self.original(source),
        }
    }
}

/// A message as the rules see it.
#[derive(Clone, Copy)]
pub struct MessageView<'a> {
    pub mailbox: &'a str,
    /// `email`, `phone`, `in_person`.
    pub channel: &'a str,
    pub mail: &'a ParsedMail,
}

fn joined<'a>(values: impl Iterator<Item = &'a str>) -> Cow<'a, str> {
    let all: Vec<&str> = values.collect();
    match all.as_slice() {
        [] => Cow::Borrowed(""),
        [one] => Cow::Borrowed(one),
        _ => Cow::Owned(all.join("\n")),
    }
}

fn source_text<'a>(field: &TextField, view: &MessageView<'a>) -> Cow<'a, str> {
    let mail = view.mail;
    match field {
        TextField::Mailbox => Cow::Borrowed(view.mailbox),
        TextField::Channel => Cow::Borrowed(view.channel),
        TextField::From => {
            Cow::Borrowed(mail.from.as_ref().map(|f| f.address.as_str()).unwrap_or(""))
        }
        TextField::FromDomain => {
            Cow::Borrowed(mail.from.as_ref().map(|f| f.domain()).unwrap_or(""))
        }
        TextField::FromName => Cow::Borrowed(
            mail.from
                .as_ref()
                .and_then(|f| f.name.as_deref())
                .unwrap_or(""),
        ),
        TextField::To => joined(mail.to.iter().map(|a| a.address.as_str())),
        TextField::Cc => joined(mail.cc.iter().map(|a| a.address.as_str())),
        TextField::Subject => Cow::Borrowed(strip_reply_prefixes(&mail.subject)),
        TextField::Body => Cow::Borrowed(&mail.text),
        TextField::NewText => super::quote::new_text(&mail.text),
        TextField::SubjectOrBody => Cow::Owned(format!(
            "{}\n{}",
            strip_reply_prefixes(&mail.subject),
            mail.text
        )),
        TextField::Header(name) => joined(
            mail.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
        ),
        TextField::AttachmentName => joined(mail.attachments.iter().map(|a| a.name.as_str())),
        TextField::AttachmentType => {
            joined(mail.attachments.iter().map(|a| a.content_type.as_str()))
        }
    }
}

impl Matchers {
    /// Runs the sets of the message's mailbox once over the texts they read.
    pub fn run<'a>(&self, view: MessageView<'a>) -> (Texts<'a>, Hits) {
        let mut texts = Texts::new(view, self.sources.len());
        let mut hits = Hits::new(self.leaves.len());
        let mailbox = super::fold::fold_default(view.mailbox);
        let sets = self
            .by_mailbox
            .get(mailbox.as_ref())
            .unwrap_or(&self.elsewhere);
        for entry in sets {
            let Some(field) = self.sources.get(entry.source) else {
                continue;
            };
            texts.ensure(entry.source, field, entry.variant);
            let text = texts.variant(entry.source, entry.variant);
            for i in entry.set.matches(text).iter() {
                if let Some(&leaf) = entry.leaves.get(i) {
                    hits.set(leaf);
                }
            }
        }
        (texts, hits)
    }

    /// Checks every leaf on its own, whatever the mailbox: slower, but an
    /// explanation then shows the true value of every condition, also in
    /// rules scoped to other mailboxes. Same patterns, so the same results.
    pub fn run_all<'a>(&self, view: MessageView<'a>) -> (Texts<'a>, Hits) {
        let mut texts = Texts::new(view, self.sources.len());
        let mut hits = Hits::new(self.leaves.len());
        for (id, leaf) in self.leaves.iter().enumerate() {
            texts.ensure(leaf.source, &leaf.field, leaf.variant);
            if leaf
                .regex
                .is_match(texts.variant(leaf.source, leaf.variant))
            {
                hits.set(id);
            }
        }
        (texts, hits)
    }

    /// Where a leaf matched, in the original text (for explanations).
    pub fn locate(&self, texts: &Texts<'_>, leaf: usize) -> Option<Range<usize>> {
        let leaf = self.leaves.get(leaf)?;
        let text = texts.variant(leaf.source, leaf.variant);
        let found = leaf.regex.find(text)?;
        Some(original_range(
            texts.original(leaf.source),
            leaf.variant,
            found.range(),
        ))
    }

    /// The original text a leaf reads.
    pub fn text<'t>(&self, texts: &'t Texts<'_>, leaf: usize) -> &'t str {
        self.leaves
            .get(leaf)
            .map(|l| texts.original(l.source))
            .unwrap_or("")
    }

    /// Named groups of a leaf's first match, as (name, value) in the
    /// customer's own spelling; groups that did not take part are skipped.
    pub fn captures(&self, texts: &Texts<'_>, leaf: usize) -> Vec<(String, String)> {
        let Some(leaf) = self.leaves.get(leaf).filter(|l| l.captures) else {
            return Vec::new();
        };
        let text = texts.variant(leaf.source, leaf.variant);
        let original = texts.original(leaf.source);
        let Some(caps) = leaf.regex.captures(text) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for name in leaf.regex.capture_names().flatten() {
            let Some(m) = caps.name(name) else { continue };
            let range = original_range(original, leaf.variant, m.range());
            let value = original.get(range).unwrap_or("").trim();
            if !value.is_empty() {
                out.push((name.to_string(), value.to_string()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_patterns_anchor_per_value_on_lists() {
        let p = literal_pattern(OpKind::Equals, true, false, &["a.b".into()]);
        assert_eq!(p, r"(?m)^(?:a\.b)$");
        let re = Regex::new(&p).unwrap();
        assert!(re.is_match("x@y\na.b"));
        assert!(!re.is_match("a.bc"));
        let p = literal_pattern(OpKind::StartsWith, false, true, &["x".into(), "y".into()]);
        assert_eq!(p, r"(?i)\A(?:x|y)");
    }
}
