//! Rule files → syntax tree, with every problem located.
//!
//! The TOML is read as a spanned tree (`toml::de::DeTable`) and walked by
//! hand instead of through serde: a hand walk can report *every* unknown key,
//! wrong type and missing name in a file at once, each at its own line and
//! column, and suggest the closest valid key. Nothing here knows about other
//! files; cross references (groups, templates, mailboxes) are checked when
//! compiling.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::error::{RuleError, Source};
use crate::config::closest;

/// A value with the bytes of the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<T> At<T> {
    pub fn new(value: T, span: Range<usize>) -> At<T> {
        At { value, span }
    }
}

/// Everything one rule file defines.
#[derive(Debug, Default)]
pub struct FileAst {
    pub rules: Vec<RuleAst>,
    pub groups: Vec<GroupAst>,
    pub types: Vec<TypeAst>,
    pub fields: Vec<FieldDefAst>,
    pub defaults: Vec<DefaultsAst>,
    pub labels: Vec<LabelAst>,
    pub business_hours: Option<BusinessHoursAst>,
    pub tests: Vec<TestAst>,
}

#[derive(Debug)]
pub struct RuleAst {
    pub name: At<String>,
    /// Where `[[rule]]` is written, for messages about the whole rule.
    pub at: usize,
    pub when: Option<At<CondAst>>,
    pub actions: ActionsAst,
    pub overrides: Option<At<OverrideAst>>,
    pub stop: bool,
    /// Whether reading the rule already reported a problem (later checks
    /// then stay quiet instead of piling follow-up messages on it).
    pub had_problems: bool,
}

/// What a rule (or a mailbox's defaults) sets.
#[derive(Debug, Default)]
pub struct ActionsAst {
    pub pipeline: Option<At<String>>,
    pub owner: Option<At<String>>,
    pub owner_group: Option<At<String>>,
    pub priority: Option<At<String>>,
    pub state: Option<At<String>>,
    pub ticket_type: Option<At<String>>,
    pub category: Option<At<String>>,
    pub area: Option<At<String>>,
    pub tags: Vec<At<String>>,
    pub fields: Vec<(At<String>, At<String>)>,
    pub sla_hours: Option<At<i64>>,
    pub sla_business_hours: Option<At<i64>>,
    pub first_response_hours: Option<At<i64>>,
    pub first_response_business_hours: Option<At<i64>>,
    pub ack: Option<At<AckAst>>,
    pub notify: Vec<At<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckAst {
    Template(String),
    None,
}

#[derive(Debug)]
pub enum OverrideAst {
    All,
    Fields(Vec<At<String>>),
}

/// A condition as written.
#[derive(Debug)]
pub enum CondAst {
    All(Vec<At<CondAst>>),
    Any(Vec<At<CondAst>>),
    Not(Box<At<CondAst>>),
    Text(TextCondAst),
    IsReply(bool),
    Automatic(AutoAst),
}

#[derive(Debug)]
pub struct TextCondAst {
    pub field: TextField,
    pub ops: Vec<At<OpAst>>,
    pub ignore_case: bool,
    pub ignore_accents: bool,
}

#[derive(Debug)]
pub enum AutoAst {
    Is(bool),
    Kinds(Vec<At<String>>),
}

/// The parts of a message a text condition can look at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TextField {
    Mailbox,
    /// How the request arrived: `email`, `phone`, `in_person`.
    Channel,
    From,
    FromDomain,
    FromName,
    To,
    Cc,
    Subject,
    Body,
    /// The body without quoted earlier messages (see `quote`).
    NewText,
    SubjectOrBody,
    /// Lower-case header name.
    Header(String),
    AttachmentName,
    AttachmentType,
}

impl TextField {
    pub fn from_name(name: &str) -> Option<TextField> {
        Some(match name {
            "mailbox" => TextField::Mailbox,
            "channel" => TextField::Channel,
            "from" => TextField::From,
            "from_domain" => TextField::FromDomain,
            "from_name" => TextField::FromName,
            "to" => TextField::To,
            "cc" => TextField::Cc,
            "subject" => TextField::Subject,
            "body" => TextField::Body,
            "new_text" => TextField::NewText,
            "subject_or_body" => TextField::SubjectOrBody,
            "attachment_name" => TextField::AttachmentName,
            "attachment_type" => TextField::AttachmentType,
            _ => return None,
        })
    }

    pub fn name(&self) -> String {
        match self {
            TextField::Mailbox => "mailbox".into(),
            TextField::Channel => "channel".into(),
            TextField::From => "from".into(),
            TextField::FromDomain => "from_domain".into(),
            TextField::FromName => "from_name".into(),
            TextField::To => "to".into(),
            TextField::Cc => "cc".into(),
            TextField::Subject => "subject".into(),
            TextField::Body => "body".into(),
            TextField::NewText => "new_text".into(),
            TextField::SubjectOrBody => "subject_or_body".into(),
            TextField::Header(h) => format!("header.{h}"),
            TextField::AttachmentName => "attachment_name".into(),
            TextField::AttachmentType => "attachment_type".into(),
        }
    }

    /// Fields whose values are identifiers (addresses, names, types), where a
    /// bare value reads naturally as "equals": `from_domain = "sunat.example"`.
    /// Free text needs an explicit operator, so nobody writes
    /// `subject = "factura"` believing it means "contains".
    pub fn takes_bare_value(&self) -> bool {
        matches!(
            self,
            TextField::Mailbox
                | TextField::Channel
                | TextField::From
                | TextField::FromDomain
                | TextField::To
                | TextField::Cc
                | TextField::AttachmentType
        )
    }

    /// Fields with several values per message (each value is matched on its own).
    pub fn is_multi_valued(&self) -> bool {
        matches!(
            self,
            TextField::To
                | TextField::Cc
                | TextField::Header(_)
                | TextField::AttachmentName
                | TextField::AttachmentType
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Equals => "equals",
            OpKind::Contains => "contains",
            OpKind::StartsWith => "starts_with",
            OpKind::EndsWith => "ends_with",
            OpKind::Regex => "regex",
        }
    }
}

/// One operator with its values; any value may match.
#[derive(Debug)]
pub struct OpAst {
    pub kind: OpKind,
    pub values: Vec<At<String>>,
}

#[derive(Debug)]
pub struct GroupAst {
    pub name: At<String>,
    pub members: Vec<At<String>>,
    pub strategy: Option<At<String>>,
}

#[derive(Debug)]
pub struct TypeAst {
    pub name: At<String>,
    pub sla_hours: Option<At<i64>>,
    pub sla_business_hours: Option<At<i64>>,
    pub first_response_hours: Option<At<i64>>,
    pub first_response_business_hours: Option<At<i64>>,
}

#[derive(Debug)]
pub struct FieldDefAst {
    pub name: At<String>,
    /// Empty: any value is accepted.
    pub values: Vec<At<String>>,
}

#[derive(Debug)]
pub struct DefaultsAst {
    pub mailbox: At<String>,
    pub actions: ActionsAst,
}

#[derive(Debug)]
pub struct LabelAst {
    /// `priority` or `state`.
    pub kind: String,
    pub canonical: At<String>,
    pub label: At<String>,
}

#[derive(Debug)]
pub struct BusinessHoursAst {
    pub at: usize,
    pub days: Option<Vec<At<String>>>,
    pub start: Option<At<String>>,
    pub end: Option<At<String>>,
    /// As written: ISO dates, checked when compiling.
    pub holidays: Vec<At<String>>,
}

/// A test case: a short message and what the rules must decide for it.
#[derive(Debug)]
pub struct TestAst {
    pub name: At<String>,
    pub at: usize,
    pub mailbox: At<String>,
    /// `channel = "phone"`: the case is a ticket opened by hand.
    pub channel: Option<crate::ticket::Channel>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub headers: Vec<(At<String>, String)>,
    pub attachments: Vec<(String, Option<String>)>,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub expect: Vec<(At<String>, ExpectValue)>,
}

/// An expected value as written; interpreted when the test runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectValue {
    Text(String),
    List(Vec<String>),
    Bool(bool),
    Int(i64),
    /// `keys`, `fields`, `set_by`: name → value(s).
    Map(Vec<(String, Vec<String>)>),
}

const TOP_KEYS: &[&str] = &[
    "rule",
    "groups",
    "types",
    "fields",
    "defaults",
    "labels",
    "business_hours",
    "test",
];

pub const ACTION_KEYS: &[&str] = &[
    "pipeline",
    "owner",
    "owner_group",
    "priority",
    "state",
    "type",
    "category",
    "area",
    "tags",
    "fields",
    "sla_hours",
    "sla_business_hours",
    "first_response_hours",
    "first_response_business_hours",
    "ack",
    "notify",
];

const RULE_META_KEYS: &[&str] = &["name", "description", "when", "override", "stop"];

const CONDITION_KEYS: &[&str] = &[
    "all",
    "any",
    "not",
    "is_reply",
    "automatic",
    "header",
    "mailbox",
    "channel",
    "from",
    "from_domain",
    "from_name",
    "to",
    "cc",
    "subject",
    "body",
    "new_text",
    "subject_or_body",
    "attachment_name",
    "attachment_type",
];

const OPERATOR_KEYS: &[&str] = &[
    "equals",
    "in",
    "contains",
    "starts_with",
    "ends_with",
    "regex",
    "ignore_case",
    "ignore_accents",
];

pub const EXPECT_KEYS: &[&str] = &[
    "pipeline",
    "owner",
    "owner_group",
    "priority",
    "state",
    "type",
    "category",
    "area",
    "tags",
    "fields",
    "keys",
    "ack",
    "notify",
    "sla_hours",
    "sla_business_hours",
    "first_response_hours",
    "first_response_business_hours",
    "set_by",
];

const TEST_KEYS: &[&str] = &[
    "name",
    "mailbox",
    "channel",
    "from",
    "to",
    "cc",
    "subject",
    "body",
    "headers",
    "attachments",
    "in_reply_to",
    "references",
    "expect",
];

/// Words Spanish-speaking admins naturally write, and the key they mean.
const SPANISH_KEYS: &[(&str, &str)] = &[
    ("nombre", "name"),
    ("cuando", "when"),
    ("si", "when"),
    ("prioridad", "priority"),
    ("responsable", "owner"),
    ("propietario", "owner"),
    ("dueno", "owner"),
    ("grupo", "owner_group"),
    ("estado", "state"),
    ("tipo", "type"),
    ("categoria", "category"),
    ("etiquetas", "tags"),
    ("campos", "fields"),
    ("plantilla", "ack"),
    ("acuse", "ack"),
    ("notificar", "notify"),
    ("detener", "stop"),
    ("parar", "stop"),
    ("asunto", "subject"),
    ("cuerpo", "body"),
    ("remitente", "from"),
    ("dominio", "from_domain"),
    ("adjunto", "attachment_name"),
    ("contiene", "contains"),
    ("igual", "equals"),
    ("empieza_con", "starts_with"),
    ("termina_con", "ends_with"),
    ("regla", "rule"),
    ("grupos", "groups"),
    ("tipos", "types"),
    ("prueba", "test"),
    ("esperado", "expect"),
];

/// The valid key an unknown key most likely meant.
pub fn suggest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    let folded = super::fold::fold_default(key);
    if let Some((_, meant)) = SPANISH_KEYS.iter().find(|(es, _)| *es == folded) {
        return valid.iter().find(|v| *v == meant).copied();
    }
    closest(&folded, valid)
}

/// Reads one file's tree, collecting problems instead of stopping at the first.
pub struct Reader<'s> {
    pub src: &'s Source,
    pub problems: Vec<RuleError>,
}

type Value<'i> = Spanned<DeValue<'i>>;
type Key<'i> = Spanned<DeString<'i>>;

/// A table's entries in the order they are written (the map itself may be
/// sorted by key), so problems and conditions come out in reading order.
fn entries<'a, 'i>(table: &'a DeTable<'i>) -> Vec<(&'a Key<'i>, &'a Value<'i>)> {
    let mut all: Vec<_> = table.iter().collect();
    all.sort_by_key(|(k, _)| k.span().start);
    all
}

fn describe(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'s> Reader<'s> {
    pub fn new(src: &'s Source) -> Reader<'s> {
        Reader {
            src,
            problems: Vec::new(),
        }
    }

    pub fn error(&mut self, span: &Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let mut e = self.src.error(span.start, message);
        e.hint = hint;
        self.problems.push(e);
    }

    fn unknown(&mut self, key: &Key<'_>, what: &str, valid: &[&str]) {
        let name = key.get_ref().as_ref();
        let hint = match suggest(name, valid) {
            Some(c) => format!("did you mean `{c}`? valid keys here: {}", valid.join(", ")),
            None => format!("valid keys here: {}", valid.join(", ")),
        };
        self.error(
            &key.span(),
            format!("unknown field `{name}` in {what}"),
            Some(hint),
        );
    }

    fn wrong_type(&mut self, value: &Value<'_>, key: &str, expected: &str, example: &str) {
        self.error(
            &value.span(),
            format!(
                "`{key}` must be {expected}, found {}",
                describe(value.get_ref())
            ),
            Some(format!("write it as {example}")),
        );
    }

    pub fn string(&mut self, value: &Value<'_>, key: &str) -> Option<At<String>> {
        match value.get_ref() {
            DeValue::String(s) => Some(At::new(s.to_string(), value.span())),
            _ => {
                self.wrong_type(value, key, "a string", &format!("{key} = \"...\""));
                None
            }
        }
    }

    /// A string or an array of strings (one value or several).
    pub fn strings(&mut self, value: &Value<'_>, key: &str) -> Option<Vec<At<String>>> {
        match value.get_ref() {
            DeValue::String(s) => Some(vec![At::new(s.to_string(), value.span())]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    out.push(self.string(item, key)?);
                }
                Some(out)
            }
            _ => {
                self.wrong_type(
                    value,
                    key,
                    "a string or an array of strings",
                    &format!("{key} = [\"...\", \"...\"]"),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, value: &Value<'_>, key: &str) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(value, key, "true or false", &format!("{key} = true"));
                None
            }
        }
    }

    pub fn integer(&mut self, value: &Value<'_>, key: &str) -> Option<At<i64>> {
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.wrong_type(value, key, "a whole number", &format!("{key} = 24"));
        }
        parsed.map(|n| At::new(n, value.span()))
    }

    pub fn table<'a, 'i>(&mut self, value: &'a Value<'i>, key: &str) -> Option<&'a DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(
                    value,
                    key,
                    "a table",
                    &format!("[{key}] or {key} = {{ ... }}"),
                );
                None
            }
        }
    }

    /// `[[key]]` entries (or an inline array of tables).
    fn tables<'a, 'i>(&mut self, value: &'a Value<'i>, key: &str) -> Vec<(&'a DeTable<'i>, usize)> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, key, "a list of tables", &format!("[[{key}]]"));
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| self.table(item, key).map(|t| (t, item.span().start)))
            .collect()
    }
}

/// Parses one rule file. Syntax errors end the reading of that file (a
/// half-parsed tree would only produce confusing follow-up errors).
pub fn parse_file(src: &Source) -> (FileAst, Vec<RuleError>) {
    let mut reader = Reader::new(src);
    let (root, syntax) = DeTable::parse_recoverable(&src.text);
    if !syntax.is_empty() {
        for e in syntax {
            let at = e.span().map(|s| s.start).unwrap_or(0);
            reader.error(
                &(at..at),
                format!("invalid TOML: {}", e.message()),
                Some("check quotes, brackets and `=` around this point".into()),
            );
        }
        return (FileAst::default(), reader.problems);
    }
    let mut file = FileAst::default();
    for (key, value) in entries(root.get_ref()) {
        match key.get_ref().as_ref() {
            "rule" => {
                for (table, at) in reader.tables(value, "rule") {
                    if let Some(rule) = read_rule(&mut reader, table, at) {
                        file.rules.push(rule);
                    }
                }
            }
            "test" => {
                for (table, at) in reader.tables(value, "test") {
                    if let Some(test) = read_test(&mut reader, table, at) {
                        file.tests.push(test);
                    }
                }
            }
            "groups" => read_named(&mut reader, value, "groups", |r, name, t| {
                file.groups.push(read_group(r, name, t))
            }),
            "types" => read_named(&mut reader, value, "types", |r, name, t| {
                file.types.push(read_type(r, name, t))
            }),
            "fields" => read_named(&mut reader, value, "fields", |r, name, t| {
                file.fields.push(read_field_def(r, name, t))
            }),
            "defaults" => read_named(&mut reader, value, "defaults", |r, mailbox, t| {
                let actions = read_actions_table(r, t, "defaults");
                file.defaults.push(DefaultsAst { mailbox, actions });
            }),
            "labels" => read_labels(&mut reader, value, &mut file.labels),
            "business_hours" => {
                if let Some(t) = reader.table(value, "business_hours") {
                    file.business_hours =
                        Some(read_business_hours(&mut reader, t, key.span().start));
                }
            }
            _ => reader.unknown(key, "a rule file", TOP_KEYS),
        }
    }
    (file, reader.problems)
}

/// `[section.NAME]` tables: calls `each` with the name and its table.
fn read_named<'i>(
    reader: &mut Reader<'_>,
    value: &Value<'i>,
    section: &str,
    mut each: impl FnMut(&mut Reader<'_>, At<String>, &DeTable<'i>),
) {
    let Some(table) = reader.table(value, section) else {
        return;
    };
    for (name, entry) in entries(table) {
        let name_at = At::new(name.get_ref().to_string(), name.span());
        if let Some(t) = reader.table(entry, &format!("{section}.{}", name_at.value)) {
            each(reader, name_at, t);
        }
    }
}

fn read_rule(reader: &mut Reader<'_>, table: &DeTable<'_>, at: usize) -> Option<RuleAst> {
    let before = reader.problems.len();
    let mut name = None;
    let mut when = None;
    let mut overrides = None;
    let mut stop = false;
    let mut actions = ActionsAst::default();
    let valid: Vec<&str> = RULE_META_KEYS.iter().chain(ACTION_KEYS).copied().collect();
    for (key, value) in entries(table) {
        match key.get_ref().as_ref() {
            "name" => name = reader.string(value, "name"),
            "description" => {
                reader.string(value, "description");
            }
            "when" => {
                if let Some(t) = reader.table(value, "when") {
                    when = read_conjunction(reader, t, value.span());
                }
            }
            "override" => overrides = read_override(reader, value),
            "stop" => stop = reader.boolean(value, "stop").unwrap_or(false),
            k if ACTION_KEYS.contains(&k) => read_action(reader, k, value, &mut actions),
            _ => reader.unknown(key, "a rule", &valid),
        }
    }
    let Some(name) = name else {
        reader.error(
            &(at..at),
            "rule without a name",
            Some(
                "add `name = \"...\"`: the name is shown in explanations and in the ticket history"
                    .into(),
            ),
        );
        return None;
    };
    if name.value.trim().is_empty() {
        reader.error(&name.span, "rule name is empty", None);
    }
    Some(RuleAst {
        name,
        at,
        when,
        actions,
        overrides,
        stop,
        had_problems: reader.problems.len() > before,
    })
}

fn read_override(reader: &mut Reader<'_>, value: &Value<'_>) -> Option<At<OverrideAst>> {
    match value.get_ref() {
        DeValue::Boolean(true) => Some(At::new(OverrideAst::All, value.span())),
        DeValue::Boolean(false) => None,
        _ => reader
            .strings(value, "override")
            .map(|fields| At::new(OverrideAst::Fields(fields), value.span())),
    }
}

fn read_actions_table(reader: &mut Reader<'_>, table: &DeTable<'_>, what: &str) -> ActionsAst {
    let mut actions = ActionsAst::default();
    for (key, value) in entries(table) {
        let k = key.get_ref().as_ref();
        if ACTION_KEYS.contains(&k) {
            read_action(reader, k, value, &mut actions);
        } else {
            reader.unknown(key, what, ACTION_KEYS);
        }
    }
    actions
}

fn read_action(reader: &mut Reader<'_>, key: &str, value: &Value<'_>, a: &mut ActionsAst) {
    match key {
        "pipeline" => a.pipeline = reader.string(value, key),
        "owner" => a.owner = reader.string(value, key),
        "owner_group" => a.owner_group = reader.string(value, key),
        "priority" => a.priority = reader.string(value, key),
        "state" => a.state = reader.string(value, key),
        "type" => a.ticket_type = reader.string(value, key),
        "category" => a.category = reader.string(value, key),
        "area" => a.area = reader.string(value, key),
        "tags" => a.tags = reader.strings(value, key).unwrap_or_default(),
        "notify" => a.notify = reader.strings(value, key).unwrap_or_default(),
        "sla_hours" => a.sla_hours = reader.integer(value, key),
        "sla_business_hours" => a.sla_business_hours = reader.integer(value, key),
        "first_response_hours" => a.first_response_hours = reader.integer(value, key),
        "first_response_business_hours" => {
            a.first_response_business_hours = reader.integer(value, key)
        }
        "ack" => {
            a.ack = match value.get_ref() {
                DeValue::Boolean(false) => Some(At::new(AckAst::None, value.span())),
                DeValue::Boolean(true) => Some(At::new(
                    AckAst::Template("acknowledgement".into()),
                    value.span(),
                )),
                _ => reader
                    .string(value, key)
                    .map(|s| At::new(AckAst::Template(s.value), s.span)),
            }
        }
        "fields" => {
            if let Some(t) = reader.table(value, key) {
                for (name, v) in entries(t) {
                    let field = At::new(name.get_ref().to_string(), name.span());
                    if let Some(s) = reader.string(v, &format!("fields.{}", field.value)) {
                        a.fields.push((field, s));
                    }
                }
            }
        }
        _ => {}
    }
}

/// The entries of a condition table, all of which must hold.
fn read_conjunction(
    reader: &mut Reader<'_>,
    table: &DeTable<'_>,
    span: Range<usize>,
) -> Option<At<CondAst>> {
    let before = reader.problems.len();
    let mut parts = Vec::new();
    for (key, value) in entries(table) {
        read_condition_entry(reader, key, value, &mut parts);
    }
    match parts.len() {
        // The entries' own problems are already reported.
        0 if reader.problems.len() > before => None,
        0 => {
            reader.error(
                &span,
                "empty condition",
                Some("remove `when` to match every message, or add a condition such as `subject.contains = \"...\"`".into()),
            );
            None
        }
        1 => parts.pop(),
        _ => Some(At::new(CondAst::All(parts), span)),
    }
}

fn read_condition_entry(
    reader: &mut Reader<'_>,
    key: &Key<'_>,
    value: &Value<'_>,
    parts: &mut Vec<At<CondAst>>,
) {
    let span = key.span().start..value.span().end;
    let name = key.get_ref().as_ref();
    match name {
        "all" | "any" => {
            let mut list = Vec::new();
            for (t, at) in reader.tables(value, name) {
                if let Some(c) = read_conjunction(reader, t, at..at) {
                    list.push(c);
                }
            }
            let cond = if name == "all" {
                CondAst::All(list)
            } else {
                CondAst::Any(list)
            };
            parts.push(At::new(cond, span));
        }
        "not" => {
            if let Some(t) = reader.table(value, "not")
                && let Some(inner) = read_conjunction(reader, t, value.span())
            {
                parts.push(At::new(CondAst::Not(Box::new(inner)), span));
            }
        }
        "is_reply" => {
            if let Some(b) = reader.boolean(value, "is_reply") {
                parts.push(At::new(CondAst::IsReply(b), span));
            }
        }
        "automatic" => {
            let auto = match value.get_ref() {
                DeValue::Boolean(b) => Some(AutoAst::Is(*b)),
                _ => reader.strings(value, "automatic").map(AutoAst::Kinds),
            };
            if let Some(a) = auto {
                parts.push(At::new(CondAst::Automatic(a), span));
            }
        }
        "header" => {
            let Some(headers) = reader.table(value, "header") else {
                return;
            };
            for (h, spec) in entries(headers) {
                let field = TextField::Header(h.get_ref().to_ascii_lowercase());
                let span = h.span().start..spec.span().end;
                if let Some(c) = read_text_condition(reader, field, spec) {
                    parts.push(At::new(CondAst::Text(c), span));
                }
            }
        }
        _ => match TextField::from_name(name) {
            Some(field) => {
                if let Some(c) = read_text_condition(reader, field, value) {
                    parts.push(At::new(CondAst::Text(c), span));
                }
            }
            None => reader.unknown(key, "a condition", CONDITION_KEYS),
        },
    }
}

fn read_text_condition(
    reader: &mut Reader<'_>,
    field: TextField,
    value: &Value<'_>,
) -> Option<TextCondAst> {
    let fname = field.name();
    let before = reader.problems.len();
    let mut cond = TextCondAst {
        field,
        ops: Vec::new(),
        ignore_case: true,
        ignore_accents: true,
    };
    let table = match value.get_ref() {
        DeValue::Table(t) => t,
        DeValue::String(_) | DeValue::Array(_) if cond.field.takes_bare_value() => {
            let values = reader.strings(value, &fname)?;
            cond.ops.push(At::new(
                OpAst {
                    kind: OpKind::Equals,
                    values,
                },
                value.span(),
            ));
            return Some(cond);
        }
        _ => {
            reader.error(
                &value.span(),
                format!("`{fname}` needs an operator"),
                Some(format!(
                    "write `{fname}.contains = \"...\"` (or equals, in, starts_with, ends_with, regex)"
                )),
            );
            return None;
        }
    };
    for (key, v) in entries(table) {
        let op = match key.get_ref().as_ref() {
            "equals" | "in" => OpKind::Equals,
            "contains" => OpKind::Contains,
            "starts_with" => OpKind::StartsWith,
            "ends_with" => OpKind::EndsWith,
            "regex" => OpKind::Regex,
            "ignore_case" => {
                cond.ignore_case = reader.boolean(v, "ignore_case").unwrap_or(true);
                continue;
            }
            "ignore_accents" => {
                cond.ignore_accents = reader.boolean(v, "ignore_accents").unwrap_or(true);
                continue;
            }
            _ => {
                reader.unknown(key, &format!("the condition on `{fname}`"), OPERATOR_KEYS);
                continue;
            }
        };
        let what = format!("{fname}.{}", key.get_ref());
        if let Some(values) = reader.strings(v, &what) {
            if values.is_empty() {
                reader.error(&v.span(), format!("`{what}` has no values"), None);
                continue;
            }
            let span = key.span().start..v.span().end;
            cond.ops.push(At::new(OpAst { kind: op, values }, span));
        }
    }
    if cond.ops.is_empty() {
        if reader.problems.len() == before {
            reader.error(
                &value.span(),
                format!("the condition on `{fname}` has no operator"),
                Some("add one of equals, in, contains, starts_with, ends_with, regex".into()),
            );
        }
        return None;
    }
    Some(cond)
}

fn read_group(reader: &mut Reader<'_>, name: At<String>, table: &DeTable<'_>) -> GroupAst {
    let mut group = GroupAst {
        name,
        members: Vec::new(),
        strategy: None,
    };
    for (key, value) in entries(table) {
        match key.get_ref().as_ref() {
            "members" => group.members = reader.strings(value, "members").unwrap_or_default(),
            "strategy" => group.strategy = reader.string(value, "strategy"),
            _ => reader.unknown(key, "a group", &["members", "strategy"]),
        }
    }
    group
}

const TYPE_KEYS: &[&str] = &[
    "description",
    "first_response_hours",
    "first_response_business_hours",
    "sla_hours",
    "sla_business_hours",
];

fn read_type(reader: &mut Reader<'_>, name: At<String>, table: &DeTable<'_>) -> TypeAst {
    let mut ty = TypeAst {
        name,
        sla_hours: None,
        sla_business_hours: None,
        first_response_hours: None,
        first_response_business_hours: None,
    };
    for (key, value) in entries(table) {
        let k = key.get_ref().as_ref();
        match k {
            "sla_hours" => ty.sla_hours = reader.integer(value, k),
            "sla_business_hours" => ty.sla_business_hours = reader.integer(value, k),
            "first_response_hours" => ty.first_response_hours = reader.integer(value, k),
            "first_response_business_hours" => {
                ty.first_response_business_hours = reader.integer(value, k)
            }
            "description" => {
                reader.string(value, "description");
            }
            _ => reader.unknown(key, "a ticket type", TYPE_KEYS),
        }
    }
    ty
}

fn read_field_def(reader: &mut Reader<'_>, name: At<String>, table: &DeTable<'_>) -> FieldDefAst {
    let mut def = FieldDefAst {
        name,
        values: Vec::new(),
    };
    for (key, value) in entries(table) {
        match key.get_ref().as_ref() {
            "values" => def.values = reader.strings(value, "values").unwrap_or_default(),
            "description" => {
                reader.string(value, "description");
            }
            _ => reader.unknown(key, "a field definition", &["values", "description"]),
        }
    }
    def
}

fn read_labels(reader: &mut Reader<'_>, value: &Value<'_>, out: &mut Vec<LabelAst>) {
    let Some(table) = reader.table(value, "labels") else {
        return;
    };
    for (kind, entry) in entries(table) {
        let kind_name = kind.get_ref().to_string();
        if kind_name != "priority" && kind_name != "state" {
            reader.unknown(kind, "labels", &["priority", "state"]);
            continue;
        }
        let Some(t) = reader.table(entry, &format!("labels.{kind_name}")) else {
            continue;
        };
        for (canonical, label) in entries(t) {
            if let Some(label) = reader.string(label, &format!("labels.{kind_name}")) {
                out.push(LabelAst {
                    kind: kind_name.clone(),
                    canonical: At::new(canonical.get_ref().to_string(), canonical.span()),
                    label,
                });
            }
        }
    }
}

fn read_business_hours(
    reader: &mut Reader<'_>,
    table: &DeTable<'_>,
    at: usize,
) -> BusinessHoursAst {
    let mut bh = BusinessHoursAst {
        at,
        days: None,
        start: None,
        end: None,
        holidays: Vec::new(),
    };
    for (key, value) in entries(table) {
        match key.get_ref().as_ref() {
            "days" => bh.days = reader.strings(value, "days"),
            "start" => bh.start = reader.string(value, "start"),
            "end" => bh.end = reader.string(value, "end"),
            "holidays" => bh.holidays = read_dates(reader, value, "holidays"),
            _ => reader.unknown(key, "business_hours", &["days", "start", "end", "holidays"]),
        }
    }
    bh
}

/// Dates as strings (`"2026-12-25"`) or TOML dates (`2026-12-25`), one or a
/// list; whether each is a real date is checked when compiling.
fn read_dates(reader: &mut Reader<'_>, value: &Value<'_>, key: &str) -> Vec<At<String>> {
    let one = |reader: &mut Reader<'_>, v: &Value<'_>| match v.get_ref() {
        DeValue::String(s) => Some(At::new(s.to_string(), v.span())),
        DeValue::Datetime(d) => Some(At::new(d.to_string(), v.span())),
        _ => {
            reader.wrong_type(
                v,
                key,
                "a list of dates",
                &format!("{key} = [\"2026-12-08\", \"2026-12-25\"]"),
            );
            None
        }
    };
    match value.get_ref() {
        DeValue::Array(items) => items.iter().filter_map(|v| one(reader, v)).collect(),
        _ => one(reader, value).into_iter().collect(),
    }
}

fn read_test(reader: &mut Reader<'_>, table: &DeTable<'_>, at: usize) -> Option<TestAst> {
    let mut name = None;
    let mut mailbox = None;
    let mut test = TestAst {
        name: At::new(String::new(), at..at),
        at,
        mailbox: At::new(String::new(), at..at),
        channel: None,
        from: None,
        to: Vec::new(),
        cc: Vec::new(),
        subject: String::new(),
        body: String::new(),
        headers: Vec::new(),
        attachments: Vec::new(),
        in_reply_to: None,
        references: Vec::new(),
        expect: Vec::new(),
    };
    let text = |r: &mut Reader<'_>, v: &Value<'_>, k: &str| r.string(v, k).map(|s| s.value);
    let texts = |r: &mut Reader<'_>, v: &Value<'_>, k: &str| {
        r.strings(v, k)
            .map(|l| l.into_iter().map(|s| s.value).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    for (key, value) in entries(table) {
        match key.get_ref().as_ref() {
            "name" => name = reader.string(value, "name"),
            "mailbox" => mailbox = reader.string(value, "mailbox"),
            "channel" => {
                if let Some(c) = reader.string(value, "channel") {
                    match c.value.parse::<crate::ticket::Channel>() {
                        Ok(channel) => test.channel = Some(channel),
                        Err(e) => reader.error(&c.span, e, None),
                    }
                }
            }
            "from" => test.from = text(reader, value, "from"),
            "to" => test.to = texts(reader, value, "to"),
            "cc" => test.cc = texts(reader, value, "cc"),
            "subject" => test.subject = text(reader, value, "subject").unwrap_or_default(),
            "body" => test.body = text(reader, value, "body").unwrap_or_default(),
            "in_reply_to" => test.in_reply_to = text(reader, value, "in_reply_to"),
            "references" => test.references = texts(reader, value, "references"),
            "headers" => test.headers = read_test_headers(reader, value),
            "attachments" => test.attachments = read_test_attachments(reader, value),
            "expect" => {
                if let Some(t) = reader.table(value, "expect") {
                    test.expect = read_expect(reader, t);
                }
            }
            _ => reader.unknown(key, "a test", TEST_KEYS),
        }
    }
    let missing = |r: &mut Reader<'_>, what: &str, example: &str| {
        r.error(
            &(at..at),
            format!("test without `{what}`"),
            Some(format!("add `{what} = {example}`")),
        )
    };
    match (name, mailbox) {
        (Some(n), Some(m)) => {
            test.name = n;
            test.mailbox = m;
            Some(test)
        }
        (n, m) => {
            if n.is_none() {
                missing(reader, "name", "\"...\"");
            }
            if m.is_none() {
                missing(reader, "mailbox", "\"soporte\"");
            }
            None
        }
    }
}

fn read_test_headers(reader: &mut Reader<'_>, value: &Value<'_>) -> Vec<(At<String>, String)> {
    let Some(t) = reader.table(value, "headers") else {
        return Vec::new();
    };
    entries(t)
        .into_iter()
        .filter_map(|(k, v)| {
            let name = At::new(k.get_ref().to_string(), k.span());
            reader.string(v, "headers").map(|s| (name, s.value))
        })
        .collect()
}

fn read_test_attachments(
    reader: &mut Reader<'_>,
    value: &Value<'_>,
) -> Vec<(String, Option<String>)> {
    let DeValue::Array(items) = value.get_ref() else {
        reader.wrong_type(
            value,
            "attachments",
            "an array",
            "attachments = [\"factura.pdf\", { name = \"foto.jpg\", type = \"image/jpeg\" }]",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => out.push((s.to_string(), None)),
            DeValue::Table(t) => {
                let mut name = None;
                let mut ctype = None;
                for (k, v) in entries(t) {
                    match k.get_ref().as_ref() {
                        "name" => name = reader.string(v, "name").map(|s| s.value),
                        "type" => ctype = reader.string(v, "type").map(|s| s.value),
                        _ => reader.unknown(k, "an attachment", &["name", "type"]),
                    }
                }
                match name {
                    Some(n) => out.push((n, ctype)),
                    None => reader.error(&item.span(), "attachment without `name`", None),
                }
            }
            _ => reader.wrong_type(
                item,
                "attachments",
                "a file name or a table",
                "\"factura.pdf\"",
            ),
        }
    }
    out
}

fn read_expect(reader: &mut Reader<'_>, table: &DeTable<'_>) -> Vec<(At<String>, ExpectValue)> {
    let mut out = Vec::new();
    for (key, value) in entries(table) {
        let name = key.get_ref().to_string();
        if !EXPECT_KEYS.contains(&name.as_str()) {
            reader.unknown(key, "`expect`", EXPECT_KEYS);
            continue;
        }
        if let Some(v) = read_expect_value(reader, &name, value) {
            out.push((At::new(name, key.span()), v));
        }
    }
    out
}

fn read_expect_value(reader: &mut Reader<'_>, key: &str, value: &Value<'_>) -> Option<ExpectValue> {
    match value.get_ref() {
        DeValue::String(s) => Some(ExpectValue::Text(s.to_string())),
        DeValue::Boolean(b) => Some(ExpectValue::Bool(*b)),
        DeValue::Integer(_) => reader
            .integer(value, key)
            .map(|i| ExpectValue::Int(i.value)),
        DeValue::Array(_) => reader
            .strings(value, key)
            .map(|l| ExpectValue::List(l.into_iter().map(|s| s.value).collect())),
        DeValue::Table(t) => {
            let mut map = Vec::new();
            for (k, v) in entries(t) {
                let values = reader.strings(v, &format!("{key}.{}", k.get_ref()))?;
                map.push((
                    k.get_ref().to_string(),
                    values.into_iter().map(|s| s.value).collect(),
                ));
            }
            Some(ExpectValue::Map(map))
        }
        _ => {
            reader.wrong_type(
                value,
                key,
                "a string, list, number or table",
                &format!("{key} = \"...\""),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (FileAst, Vec<RuleError>) {
        let src = Source::new("rules/t.toml", "t.toml", text.to_string());
        parse_file(&src)
    }

    #[test]
    fn reads_rules_conditions_and_actions() {
        let (file, problems) = parse(
            r#"
[[rule]]
name = "rescate"
when.subject.contains = ["rescate", "retiro"]
when.any = [{ from_domain = "a.example" }, { body.regex = 'x' }]
pipeline = "Finanzas"
tags = "inversionista"
stop = true
"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let rule = &file.rules[0];
        assert_eq!(rule.name.value, "rescate");
        assert!(rule.stop);
        assert_eq!(rule.actions.tags.len(), 1);
        let Some(At {
            value: CondAst::All(parts),
            ..
        }) = &rule.when
        else {
            panic!("expected a conjunction: {:?}", rule.when);
        };
        assert_eq!(parts.len(), 2);
    }

    #[test]
    fn unknown_keys_name_the_closest_valid_one() {
        let (_, problems) = parse(
            "[[rule]]\nname = \"x\"\npipline = \"a\"\nprioridad = \"high\"\nwhen.subjet.contains = \"a\"\n",
        );
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("rules/t.toml:3:1: error: unknown field `pipline`"),
            "{text:?}"
        );
        assert!(text[0].contains("did you mean `pipeline`?"), "{text:?}");
        assert!(text[1].contains("did you mean `priority`?"), "{text:?}");
        assert!(text[2].starts_with("rules/t.toml:5:6:"), "{text:?}");
        assert!(text[2].contains("did you mean `subject`?"), "{text:?}");
    }

    #[test]
    fn free_text_needs_an_operator() {
        let (_, problems) =
            parse("[[rule]]\nname = \"x\"\nwhen.subject = \"factura\"\npipeline = \"a\"\n");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("needs an operator"));
        let (file, problems) =
            parse("[[rule]]\nname = \"x\"\nwhen.mailbox = \"finanzas\"\npipeline = \"a\"\n");
        assert!(problems.is_empty());
        assert!(file.rules[0].when.is_some());
    }

    #[test]
    fn syntax_errors_are_located() {
        let (_, problems) = parse("[[rule]]\nname = \"x\n");
        assert!(!problems.is_empty());
        assert_eq!(problems[0].line, 2, "{problems:?}");
    }

    #[test]
    fn missing_name_points_at_the_rule() {
        let (_, problems) = parse("\n[[rule]]\npipeline = \"a\"\n");
        assert_eq!(problems[0].line, 2);
        assert!(problems[0].message.contains("without a name"));
    }
}
