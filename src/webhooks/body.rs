//! What a webhook request carries: the documented JSON by default, or the
//! endpoint's template, shaped for Slack, Microsoft Teams or Odoo.
//!
//! Both start from the same values ([`context`]): `id` (the delivery),
//! `event`, `at`, `team`, `ticket` (as it stood after the change),
//! `changes`, `message`, `deadline`, `outcome` (null when the event has
//! none). The default body is exactly that object; a template also has
//! `token`, the endpoint's `token_file`/`token_env` (a credential the
//! receiver wants in the body, such as Odoo's API key).
//!
//! A template is minijinja, like the mail templates, but every value is
//! written JSON-escaped: `"text": "{{ ticket.subject }}"` stays valid JSON
//! whatever quotes or line breaks a customer put in the subject; a whole
//! object goes in with `{{ ticket.fields | tojson }}`, and `slack_escape`
//! also escapes `&`, `<` and `>` for Slack's text. A template is checked
//! when it is loaded, rendered with sample values for every event its
//! endpoint subscribes to: a syntax error, an unknown variable or a body
//! that is not JSON is refused with `file:line`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde_json::json;

use crate::ticket::{HookEvent, HookKind, HookTicket, Outcome, Priority, State};

/// The variables a template may use.
pub const VARIABLES: &[&str] = &[
    "id", "event", "at", "team", "ticket", "changes", "message", "deadline", "outcome", "token",
];

/// The values of one delivery (also the default body).
pub fn context(delivery_id: &str, event: &HookEvent, team: &str) -> serde_json::Value {
    let detail = |key: &str| {
        event
            .detail
            .get(key)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    json!({
        "id": delivery_id,
        "event": event.kind.as_str(),
        "at": crate::store::hook_time(event.created_at),
        "team": team,
        "ticket": event.ticket,
        "changes": detail("changes"),
        "message": detail("message"),
        "deadline": detail("deadline"),
        "outcome": detail("outcome"),
    })
}

/// The default body: the context as JSON.
pub fn default_body(context: &serde_json::Value) -> String {
    context.to_string()
}

/// One problem in a body template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// A checked body template.
#[derive(Clone)]
pub struct BodyTemplate {
    env: Environment<'static>,
    pub file: String,
}

const NAME: &str = "body";

impl BodyTemplate {
    /// Reads and checks `path` for the events `kinds`.
    pub fn load(
        path: &Path,
        kinds: &BTreeSet<HookKind>,
    ) -> Result<BodyTemplate, Vec<TemplateProblem>> {
        let file = path.display().to_string();
        let problem = |line: usize, message: String| TemplateProblem {
            file: file.clone(),
            line,
            message,
        };
        let source = std::fs::read_to_string(path)
            .map_err(|e| vec![problem(0, format!("cannot read the webhook template: {e}"))])?;
        Self::from_source(&file, source, kinds)
    }

    /// Checks `source` (named `file` in messages) for the events `kinds`.
    pub fn from_source(
        file: &str,
        source: String,
        kinds: &BTreeSet<HookKind>,
    ) -> Result<BodyTemplate, Vec<TemplateProblem>> {
        let problem = |line: usize, message: String| TemplateProblem {
            file: file.to_string(),
            line,
            message,
        };
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(json_formatter);
        env.add_filter("slack_escape", slack_escape);
        let lines: Vec<String> = source.lines().map(str::to_string).collect();
        if let Err(e) = env.add_template_owned(NAME, source) {
            return Err(vec![problem(e.line().unwrap_or(1), describe(&e))]);
        }
        let template = BodyTemplate {
            env,
            file: file.to_string(),
        };
        let mut problems = Vec::new();
        if let Ok(t) = template.env.get_template(NAME) {
            let mut unknown: Vec<String> = t
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| !VARIABLES.contains(&v.as_str()))
                .collect();
            unknown.sort();
            for name in unknown {
                let hint = crate::config::closest(&name, VARIABLES)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                let line = lines
                    .iter()
                    .position(|l| l.contains(name.as_str()))
                    .map_or(1, |i| i + 1);
                problems.push(problem(
                    line,
                    format!(
                        "unknown variable `{name}`: {hint}the variables are {}",
                        VARIABLES.join(", ")
                    ),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        // Every event the endpoint gets, with values that need escaping.
        for kind in kinds {
            let ctx = context(
                "00000000-0000-4000-8000-000000000000",
                &sample(*kind),
                "Soporte",
            );
            match template.render(&ctx, "clave\"de\\prueba") {
                Ok(body) => {
                    if let Err(e) = serde_json::from_str::<serde_json::Value>(&body) {
                        problems.push(problem(
                            e.line(),
                            format!("the body for {kind} is not JSON: {e} (a value outside quotes? objects go in with `| tojson`)"),
                        ));
                        break;
                    }
                }
                Err(e) => {
                    let line = e
                        .line()
                        .or_else(|| first_line_with_tag(&lines))
                        .unwrap_or(1);
                    problems.push(problem(line, format!("for {kind}: {}", describe(&e))));
                    break;
                }
            }
        }
        if problems.is_empty() {
            Ok(template)
        } else {
            Err(problems)
        }
    }

    /// Renders a body with the endpoint's `token` (checked at load: only
    /// a value never seen then can make it fail).
    pub fn render(
        &self,
        context: &serde_json::Value,
        token: &str,
    ) -> Result<String, minijinja::Error> {
        let mut context = context.clone();
        if let Some(m) = context.as_object_mut() {
            m.insert("token".into(), token.into());
        }
        self.env
            .get_template(NAME)?
            .render(minijinja::value::Serde(context))
    }
}

impl fmt::Debug for BodyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyTemplate")
            .field("file", &self.file)
            .finish()
    }
}

fn describe(e: &minijinja::Error) -> String {
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    format!("{}{detail}", e.kind())
}

fn first_line_with_tag(lines: &[String]) -> Option<usize> {
    lines.iter().position(|l| l.contains("{{")).map(|i| i + 1)
}

/// Writes every value JSON-escaped: a string as the inside of a JSON
/// string (the template supplies the quotes), a number or boolean as
/// itself, a list or object as JSON, nothing for null. `tojson` output is
/// already JSON (a safe value) and goes in as it is.
fn json_formatter(
    out: &mut minijinja::Output,
    _state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let io = |_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write");
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    if value.is_safe() {
        return write!(out, "{value}").map_err(io);
    }
    let text = if let Some(s) = value.as_str() {
        let quoted = serde_json::Value::from(s).to_string();
        quoted[1..quoted.len() - 1].to_string()
    } else {
        serde_json::to_string(value).map_err(|e| {
            minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
        })?
    };
    out.write_str(&text).map_err(io)
}

/// Slack's three escapes in message text (`&`, `<`, `>`), so a customer's
/// subject cannot make a link or mention everyone.
fn slack_escape(text: String) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An event of `kind` as the store writes it, with values that need
/// escaping (quotes, a line break, a backslash, `<`).
pub fn sample(kind: HookKind) -> HookEvent {
    let subject = "Consulta \"urgente\" <factura>\\ 2026\nsegunda línea";
    let message_in = json!({
        "from": "cliente@example.cl",
        "from_name": "María \"Pepa\" Soto",
        "subject": subject,
        "text": "Hola,\n\"adjunto\" el documento.\n",
        "message_id": "abc@example.cl",
        "attachments": 1,
        "channel": "email",
    });
    let detail = match kind {
        HookKind::TicketCreated | HookKind::MessageReceived => json!({ "message": message_in }),
        HookKind::TicketUpdated => json!({ "changes": {
            "state": { "from": "open", "to": "waiting_on_us" },
            "owner": { "from": null, "to": "camila" },
            "priority": { "from": "medium", "to": "high" },
            "pipeline": { "from": "Soporte", "to": "Operaciones" },
            "type": { "from": null, "to": "reclamo" },
            "fields": { "from": {}, "to": { "rut": "12.345.678-9" } },
        }}),
        HookKind::TicketClosed => json!({ "outcome": "success" }),
        HookKind::MessageSent => json!({ "message": {
            "kind": "reply",
            "message_id": "T-42.x@buzon.example.cl",
            "to": ["cliente@example.cl"],
        }}),
        HookKind::DeadlineMissed => json!({ "deadline": {
            "target": "first_response",
            "due_at": "2026-12-01T15:00:00Z",
        }}),
    };
    HookEvent {
        id: 1,
        kind,
        detail,
        created_at: 1_764_600_000_000,
        ticket: HookTicket {
            id: 42,
            number: "T-42".into(),
            subject: subject.into(),
            state: if kind == HookKind::TicketClosed {
                State::Done
            } else {
                State::Open
            },
            outcome: (kind == HookKind::TicketClosed).then_some(Outcome::Success),
            pipeline: "Soporte".into(),
            owner: Some("camila".into()),
            priority: Priority::High,
            ticket_type: Some("reclamo".into()),
            mailbox: "soporte".into(),
            requester: Some("cliente@example.cl".into()),
            fields: json!({ "rut": "12.345.678-9" }),
            url: Some("https://soporte.example.cl/tickets/42".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> BTreeSet<HookKind> {
        HookKind::ALL.iter().copied().collect()
    }

    #[test]
    fn values_are_escaped_for_json() {
        let t = BodyTemplate::from_source(
            "slack.json",
            "{\"text\": \"{{ ticket.number }}: {{ ticket.subject | slack_escape }}\",\n \"n\": {{ ticket.id }}, \"f\": {{ ticket.fields | tojson }}}\n".into(),
            &all(),
        )
        .unwrap();
        let body = t
            .render(
                &context("x", &sample(HookKind::TicketCreated), "Soporte"),
                "",
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["text"],
            "T-42: Consulta \"urgente\" &lt;factura&gt;\\ 2026\nsegunda línea"
        );
        assert_eq!(v["n"], 42);
        assert_eq!(v["f"]["rut"], "12.345.678-9");
    }

    #[test]
    fn errors_name_the_line() {
        let kinds = all();
        let err = BodyTemplate::from_source(
            "a.json",
            "{\n\"x\": \"{{ ticket.subject | }}\"\n}".into(),
            &kinds,
        )
        .unwrap_err();
        assert_eq!(
            (err[0].file.as_str(), err[0].line),
            ("a.json", 2),
            "{err:?}"
        );
        let err = BodyTemplate::from_source(
            "b.json",
            "{\n\n\"x\": \"{{ tiket.subject }}\"}".into(),
            &kinds,
        )
        .unwrap_err();
        assert_eq!(err[0].line, 3, "{err:?}");
        assert!(err[0].message.contains("did you mean `ticket`"), "{err:?}");
        // Outside quotes, a string is not JSON.
        let err =
            BodyTemplate::from_source("c.json", "{\n\"x\": {{ ticket.subject }}\n}".into(), &kinds)
                .unwrap_err();
        assert!(err[0].message.contains("not JSON"), "{err:?}");
        // A message's subject on an event without one.
        let updated: BTreeSet<HookKind> = [HookKind::TicketUpdated].into();
        let err = BodyTemplate::from_source(
            "d.json",
            "{\"x\":\n \"{{ message.subject }}\"}".into(),
            &updated,
        )
        .unwrap_err();
        assert!(err[0].message.contains("ticket.updated"), "{err:?}");
        assert!(
            BodyTemplate::from_source(
                "e.json",
                "{\"x\": \"{% if message %}{{ message.subject }}{% endif %}\"}".into(),
                &updated
            )
            .is_ok()
        );
    }
}
