//! `[[test]]` cases in rule files: a short message and the decision it must
//! get. `buzon rules test` runs them like a test runner.
//!
//! Each case is composed into a real RFC 5322 message and goes through the
//! real parser and classifier, then the rules, then the mailbox defaults of
//! the configuration: the test sees exactly what the daemon would decide.
//!
//! Expectations: scalar fields compare exactly ("" means "not set"); `tags`
//! and `notify` must contain the listed values; `keys` must be exactly the
//! listed ones; `set_by` accepts a rule name or a full origin.

use std::fmt::Write as _;

use serde::Serialize;

use super::RuleSet;
use super::eval::RuleInput;
use super::model::{Labels, TestCase};
use super::syntax::ExpectValue;
use crate::classify::classify;
use crate::config::Config;
use crate::parse;
use crate::route::Route;

/// One case's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub mailbox: String,
    /// Empty when the case passed.
    pub failures: Vec<String>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// All cases' outcomes, in file order.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    pub results: Vec<TestResult>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Test-runner output, ending with "N passed, M failed".
    pub fn to_text(&self) -> String {
        let mut out = format!("running {} rule tests\n", self.results.len());
        for r in &self.results {
            let status = if r.passed() { "ok" } else { "FAILED" };
            let _ = writeln!(out, "test {}:{} {} ... {status}", r.file, r.line, r.name);
        }
        let failed: Vec<&TestResult> = self.results.iter().filter(|r| !r.passed()).collect();
        if !failed.is_empty() {
            out.push_str("\nfailures:\n");
            for r in failed {
                let _ = writeln!(out, "\n---- {}:{} {} ----", r.file, r.line, r.name);
                for f in &r.failures {
                    let _ = writeln!(out, "  {f}");
                }
                let _ = writeln!(
                    out,
                    "  (see why with: buzon rules explain --mailbox {} MESSAGE.eml)",
                    r.mailbox
                );
            }
        }
        let _ = writeln!(out, "\n{} passed, {} failed", self.passed(), self.failed());
        out
    }
}

/// Runs every case of `set` with the mailboxes of `config`.
pub fn run(set: &RuleSet, config: &Config) -> TestReport {
    let results = set
        .tests
        .iter()
        .enumerate()
        .map(|(i, t)| TestResult {
            name: t.name.clone(),
            file: t.file.clone(),
            line: t.line,
            mailbox: t.mailbox.clone(),
            failures: run_one(set, config, t, i),
        })
        .collect();
    TestReport { results }
}

fn run_one(set: &RuleSet, config: &Config, t: &TestCase, index: usize) -> Vec<String> {
    let mailbox = match config.mailbox(&t.mailbox) {
        Ok(m) => m,
        Err(e) => return vec![e],
    };
    let raw = compose(t, &mailbox.address, index);
    let mail = match parse::parse(&raw, config.limits.max_message_bytes) {
        Ok(m) => m,
        Err(e) => return vec![format!("the test message does not parse: {e}")],
    };
    // A request written down by an agent is never automatic mail.
    let automatic = (t.channel == crate::ticket::Channel::Email)
        .then(|| classify(&mail, &|a: &str| config.is_own_address(a)))
        .flatten();
    let input = RuleInput::new(&t.mailbox, &mail, automatic.as_ref()).via(t.channel);
    let route = set.evaluate(&input).complete(&t.mailbox, mailbox);
    t.expect
        .iter()
        .filter_map(|(field, want)| compare(field, want, &route, &set.labels))
        .collect()
}

/// Header values come from the rule file: one line each, whatever was written.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

fn angle(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

/// The RFC 5322 message for a case.
pub fn compose(t: &TestCase, mailbox_address: &str, index: usize) -> Vec<u8> {
    let mut h = String::new();
    let from = t
        .from
        .as_deref()
        .unwrap_or("Cliente <cliente@correo.example>");
    let _ = write!(h, "From: {}\r\n", one_line(from));
    let to = if t.to.is_empty() {
        mailbox_address.to_string()
    } else {
        t.to.join(", ")
    };
    let _ = write!(h, "To: {}\r\n", one_line(&to));
    if !t.cc.is_empty() {
        let _ = write!(h, "Cc: {}\r\n", one_line(&t.cc.join(", ")));
    }
    let _ = write!(h, "Subject: {}\r\n", one_line(&t.subject));
    let _ = write!(h, "Date: Mon, 13 Oct 2025 10:00:00 -0300\r\n");
    let _ = write!(h, "Message-ID: <rules-test-{index}@buzon.example>\r\n");
    if let Some(id) = &t.in_reply_to {
        let _ = write!(h, "In-Reply-To: {}\r\n", angle(id));
    }
    if !t.references.is_empty() {
        let refs: Vec<String> = t.references.iter().map(|r| angle(r)).collect();
        let _ = write!(h, "References: {}\r\n", refs.join(" "));
    }
    for (name, value) in &t.headers {
        let _ = write!(
            h,
            "{}: {}\r\n",
            one_line(name).replace(':', ""),
            one_line(value)
        );
    }
    h.push_str("MIME-Version: 1.0\r\n");
    let body = t.body.replace("\r\n", "\n").replace('\n', "\r\n");
    if t.attachments.is_empty() {
        h.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        h.push_str(&body);
        h.push_str("\r\n");
        return h.into_bytes();
    }
    let boundary = format!("=_buzon_rules_test_{index}");
    let _ = write!(
        h,
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    );
    let _ = write!(
        h,
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    );
    for (name, ctype) in &t.attachments {
        let name = one_line(name).replace('"', "'");
        let ctype = ctype
            .clone()
            .unwrap_or_else(|| guess_type(&name).to_string());
        let _ = write!(
            h,
            "--{boundary}\r\nContent-Type: {}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\ncontenido de prueba\r\n",
            one_line(&ctype)
        );
    }
    let _ = write!(h, "--{boundary}--\r\n");
    h.into_bytes()
}

fn guess_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

fn shown(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "nothing".to_string(),
    }
}

/// `None` when the expectation holds, else what went wrong.
fn compare(field: &str, want: &ExpectValue, route: &Route, labels: &Labels) -> Option<String> {
    let by = |f: &str| match route.set_by.get(f) {
        Some(origin) => format!(" (set by {origin})"),
        None => String::new(),
    };
    let text = |got: Option<&str>| -> Option<String> {
        let ExpectValue::Text(w) = want else {
            return Some(format!("{field}: write the expected value as a string"));
        };
        let want = (!w.is_empty()).then_some(w.as_str());
        (want != got).then(|| {
            format!(
                "{field}: expected {}, got {}{}",
                shown(want),
                shown(got),
                by(field)
            )
        })
    };
    match field {
        "pipeline" => text(Some(&route.pipeline)),
        "owner" => text(route.owner.as_deref()),
        "owner_group" => text(route.owner_group.as_deref()),
        "type" => text(route.ticket_type.as_deref()),
        "category" => text(route.category.as_deref()),
        "area" => text(route.area.as_deref()),
        "priority" => {
            let ExpectValue::Text(w) = want else {
                return text(None);
            };
            let expected = labels.parse_priority(w);
            (expected != Some(route.priority)).then(|| {
                let got = format!(
                    "{} ({})",
                    route.priority,
                    labels.priority_label(route.priority)
                );
                format!("priority: expected {w:?}, got {got}{}", by("priority"))
            })
        }
        "state" => {
            let ExpectValue::Text(w) = want else {
                return text(None);
            };
            (labels.parse_state(w) != Some(route.state)).then(|| {
                let got = format!("{} ({})", route.state, labels.state_label(route.state));
                format!("state: expected {w:?}, got {got}{}", by("state"))
            })
        }
        "ack" => compare_ack(want, route),
        "tags" => contains_all("tags", want, &route.tags),
        "notify" => contains_all("notify", want, &route.notify),
        "sla_hours" | "sla_business_hours" => {
            let got = (route.sla_hours, route.sla_business_hours);
            compare_target(field, want, got, route.set_by.get("sla"))
        }
        "first_response_hours" | "first_response_business_hours" => {
            let got = (
                route.first_response_hours,
                route.first_response_business_hours,
            );
            compare_target(field, want, got, route.set_by.get("first_response"))
        }
        "keys" => compare_keys(want, route),
        "fields" => compare_map("fields", want, |name| route.fields.get(name).cloned()),
        "set_by" => compare_set_by(want, route),
        _ => Some(format!("{field}: cannot be checked")),
    }
}

fn compare_ack(want: &ExpectValue, route: &Route) -> Option<String> {
    let got = route.ack_template.as_deref();
    let ok = match want {
        ExpectValue::Bool(false) => got.is_none(),
        ExpectValue::Bool(true) => got.is_some(),
        ExpectValue::Text(t) if t.is_empty() => got.is_none(),
        ExpectValue::Text(t) => got == Some(t.as_str()),
        _ => false,
    };
    let by = route
        .set_by
        .get("ack")
        .map(|o| format!(" (set by {o})"))
        .unwrap_or_default();
    (!ok).then(|| {
        format!(
            "ack: expected {}, got {}{by}",
            expect_text(want),
            shown(got)
        )
    })
}

fn expect_text(want: &ExpectValue) -> String {
    match want {
        ExpectValue::Text(t) => format!("{t:?}"),
        ExpectValue::Bool(b) => b.to_string(),
        ExpectValue::Int(i) => i.to_string(),
        ExpectValue::List(l) => format!("{l:?}"),
        ExpectValue::Map(m) => format!("{m:?}"),
    }
}

fn wanted_list(want: &ExpectValue) -> Vec<String> {
    match want {
        ExpectValue::Text(t) => vec![t.clone()],
        ExpectValue::List(l) => l.clone(),
        _ => Vec::new(),
    }
}

fn contains_all(field: &str, want: &ExpectValue, got: &[String]) -> Option<String> {
    let missing: Vec<String> = wanted_list(want)
        .into_iter()
        .filter(|w| !got.iter().any(|g| g.eq_ignore_ascii_case(w)))
        .collect();
    (!missing.is_empty()).then(|| format!("{field}: expected to include {missing:?}, got {got:?}"))
}

/// A time target: `sla_hours = 8` expects 8 plain hours, and
/// `..._business_hours = 8` 8 business hours (the key says which kind).
fn compare_target(
    field: &str,
    want: &ExpectValue,
    (got_hours, got_business): (Option<u32>, bool),
    set_by: Option<&String>,
) -> Option<String> {
    let ExpectValue::Int(hours) = want else {
        return Some(format!("{field}: write the expected number of hours"));
    };
    let business = field.ends_with("_business_hours");
    let ok = got_hours.map(i64::from) == Some(*hours) && got_business == business;
    (!ok).then(|| {
        let got = match got_hours {
            Some(h) if got_business => format!("{h} business hours"),
            Some(h) => format!("{h} hours"),
            None => "no target".into(),
        };
        let by = set_by.map(|o| format!(" (set by {o})")).unwrap_or_default();
        format!("{field}: expected {hours}, got {got}{by}")
    })
}

fn compare_keys(want: &ExpectValue, route: &Route) -> Option<String> {
    let ExpectValue::Map(map) = want else {
        return Some("keys: write them as keys = { order = \"75321\" }".into());
    };
    let mut expected: Vec<(String, String)> = map
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
        .collect();
    let mut got: Vec<(String, String)> = route
        .keys
        .iter()
        .map(|k| (k.name.clone(), k.value.clone()))
        .collect();
    expected.sort();
    got.sort();
    let show = |l: &[(String, String)]| {
        let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
        format!("{{ {} }}", parts.join(", "))
    };
    (expected != got).then(|| format!("keys: expected {}, got {}", show(&expected), show(&got)))
}

fn compare_map(
    field: &str,
    want: &ExpectValue,
    get: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let ExpectValue::Map(map) = want else {
        return Some(format!(
            "{field}: write it as {field} = {{ name = \"value\" }}"
        ));
    };
    let wrong: Vec<String> = map
        .iter()
        .filter_map(|(name, values)| {
            let want = values.first().cloned().filter(|v| !v.is_empty());
            let got = get(name);
            (want != got).then(|| {
                format!(
                    "{field}.{name}: expected {}, got {}",
                    shown(want.as_deref()),
                    shown(got.as_deref())
                )
            })
        })
        .collect();
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

fn compare_set_by(want: &ExpectValue, route: &Route) -> Option<String> {
    let ExpectValue::Map(map) = want else {
        return Some("set_by: write it as set_by = { priority = \"rule-name\" }".into());
    };
    let wrong: Vec<String> = map
        .iter()
        .filter_map(|(field, values)| {
            let want = values.first()?;
            let got = route.set_by.get(field);
            // A rule name stands for its origin `rule:FILE/NAME`.
            let ok = got.is_some_and(|g| g == want || g.ends_with(&format!("/{want}")));
            (!ok).then(|| {
                format!(
                    "set_by.{field}: expected {want:?}, got {}",
                    shown(got.map(String::as_str))
                )
            })
        })
        .collect();
    (!wrong.is_empty()).then(|| wrong.join("; "))
}
