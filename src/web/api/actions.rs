//! `POST /api/v1/tickets/{number}/{verb}`: each verb is one call of the
//! action layer as the token's person, which checks the permission (the
//! same `actions::permission::check` as the web and the command line). The
//! verbs are the command line's (`buzon tickets close` → `close`); each
//! takes a JSON object, strict: an unknown field is refused, not ignored.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::{json_response, number_of};
use crate::actions::{Change, Done};
use crate::ticket::{Classification, Outcome, Priority, State as TicketState, Target};
use crate::view::iso;
use crate::web::App;

/// An action on a ticket, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Take,
    Assign,
    State,
    Reopen,
    Comment,
    Reply,
    Update,
    Request,
    Received,
    Close,
    Classify,
    Due,
    Internal,
}

impl Verb {
    pub const ALL: [Verb; 13] = [
        Verb::Take,
        Verb::Assign,
        Verb::State,
        Verb::Reopen,
        Verb::Comment,
        Verb::Reply,
        Verb::Update,
        Verb::Request,
        Verb::Received,
        Verb::Close,
        Verb::Classify,
        Verb::Due,
        Verb::Internal,
    ];

    /// The last segment of its path.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Take => "take",
            Verb::Assign => "assign",
            Verb::State => "state",
            Verb::Reopen => "reopen",
            Verb::Comment => "comment",
            Verb::Reply => "reply",
            Verb::Update => "update",
            Verb::Request => "request",
            Verb::Received => "received",
            Verb::Close => "close",
            Verb::Classify => "classify",
            Verb::Due => "due",
            Verb::Internal => "internal",
        }
    }

    /// What it does, in the teams' words (the OpenAPI summary).
    pub fn summary(self) -> &'static str {
        match self {
            Verb::Take => "Tomar un ticket sin responsable",
            Verb::Assign => "Asignar el ticket a una persona",
            Verb::State => "Cambiar el estado (abierto)",
            Verb::Reopen => "Reabrir un ticket finalizado",
            Verb::Comment => "Agregar un comentario interno",
            Verb::Reply => "Responder al cliente por correo",
            Verb::Update => "Enviar una novedad al cliente",
            Verb::Request => "Pedir documentos al cliente",
            Verb::Received => "Marcar un documento como recibido",
            Verb::Close => "Finalizar el ticket, con su resultado",
            Verb::Classify => "Reclasificar: prioridad, tipo, categoría, área, pipeline, campos",
            Verb::Due => "Mover una fecha límite",
            Verb::Internal => "Ocultar el ticket al cliente o mostrarlo",
        }
    }

    /// The JSON Schema of its body.
    pub fn schema(self) -> Value {
        let text = json!({ "type": "string", "minLength": 1 });
        let object = |props: Value, required: &[&str]| {
            json!({
                "type": "object",
                "additionalProperties": false,
                "properties": props,
                "required": required,
            })
        };
        let states = json!({ "type": "string", "enum": TicketState::ALL.map(|s| s.as_str()) });
        match self {
            Verb::Take => object(json!({}), &[]),
            Verb::Assign => object(
                json!({ "person": { "type": "string", "description": "una persona de [people], por clave o nombre" } }),
                &["person"],
            ),
            Verb::State => object(json!({ "state": states }), &["state"]),
            Verb::Reopen => object(json!({ "state": states, "note": text }), &[]),
            Verb::Comment => object(json!({ "text": text }), &["text"]),
            Verb::Reply | Verb::Update => json!({
                "type": "object",
                "additionalProperties": false,
                "description": "El texto, o una plantilla del equipo (templates.dir) llenada para el ticket, con `note` como {{ note }}.",
                "properties": { "text": text, "template": text, "note": text },
                "oneOf": [{ "required": ["text"] }, { "required": ["template"] }],
            }),
            Verb::Request => object(
                json!({ "items": { "type": "array", "items": text, "minItems": 1 }, "note": text }),
                &["items"],
            ),
            Verb::Received => object(json!({ "item": text }), &["item"]),
            Verb::Close => object(
                json!({ "outcome": { "type": "string", "enum": ["success", "failure"] }, "note": text }),
                &["outcome"],
            ),
            Verb::Classify => object(
                json!({
                    "priority": { "type": "string", "enum": Priority::ALL.map(|p| p.as_str()) },
                    "type": text, "category": text, "area": text, "pipeline": text,
                    "fields": { "type": "object", "additionalProperties": { "type": "string" } },
                }),
                &[],
            ),
            Verb::Due => object(
                json!({
                    "at": { "type": "string", "description": "RFC 3339 (2026-12-10T21:00:00Z) o la hora local del equipo (\"2026-12-10 18:00\", o \"2026-12-10\": el fin de ese día)" },
                    "target": { "type": "string", "enum": ["resolution", "first_response"], "default": "resolution" },
                }),
                &["at"],
            ),
            Verb::Internal => object(json!({ "internal": { "type": "boolean" } }), &["internal"]),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Person {
    person: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewState {
    state: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Reopen {
    state: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Text {
    text: String,
}

/// A reply or an update: the text, or a template filled in for the ticket.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mail {
    text: Option<String>,
    template: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    items: Vec<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    item: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Close {
    outcome: String,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Classify {
    priority: Option<String>,
    #[serde(rename = "type")]
    ticket_type: Option<String>,
    category: Option<String>,
    area: Option<String>,
    pipeline: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Due {
    at: String,
    target: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Internal {
    internal: bool,
}

/// A JSON body as `T`; an empty body is `{}` (a verb without fields).
pub fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Invalid(format!("el cuerpo no es el JSON esperado: {e}")))
}

/// A canonical value of a closed set (`"open"`, `"success"`), or a
/// Spanish sentence naming the field and what to write instead.
fn parse<T: std::str::FromStr>(field: &str, text: &str, allowed: &[&str]) -> Result<T, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::Invalid(format!(
            "«{field}»: '{text}' no es un valor válido; use {}",
            allowed.join(", ")
        ))
    })
}

fn state(text: &str) -> Result<TicketState, ApiError> {
    parse("state", text, &TicketState::ALL.map(|s| s.as_str()))
}

/// A blank optional text counts as absent.
fn given(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

pub async fn act(
    verb: Verb,
    app: Arc<App>,
    caller: Caller,
    number: String,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let n = number_of(&app, &number)?;
    let agent = caller.agent(&app)?;
    let done = match verb {
        Verb::Take => {
            body::<Nothing>(&bytes)?;
            agent.take(n).await?
        }
        Verb::Assign => agent.assign(n, &body::<Person>(&bytes)?.person).await?,
        Verb::State => {
            let state = state(&body::<NewState>(&bytes)?.state)?;
            agent.set_state(n, state).await?
        }
        Verb::Reopen => {
            let b: Reopen = body(&bytes)?;
            let state = given(&b.state).map(state).transpose()?;
            agent.reopen(n, state, given(&b.note)).await?
        }
        Verb::Comment => agent.comment(n, &body::<Text>(&bytes)?.text).await?,
        Verb::Reply | Verb::Update => {
            let b: Mail = body(&bytes)?;
            let text = match (given(&b.text), given(&b.template)) {
                (Some(text), None) => text.to_string(),
                (None, Some(name)) => agent.template_body(n, name, given(&b.note)).await?,
                _ => {
                    return Err(ApiError::Invalid(
                        "escriba «text» o «template» (una plantilla del equipo), uno de los dos"
                            .into(),
                    ));
                }
            };
            match verb {
                Verb::Reply => agent.reply(n, &text).await?,
                _ => agent.update(n, &text).await?,
            }
        }
        Verb::Request => {
            let b: Request = body(&bytes)?;
            agent.request_documents(n, &b.items, given(&b.note)).await?
        }
        Verb::Received => agent.received(n, &body::<Item>(&bytes)?.item).await?,
        Verb::Close => {
            let b: Close = body(&bytes)?;
            let outcome: Outcome = parse("outcome", &b.outcome, &["success", "failure"])?;
            agent.close(n, outcome, given(&b.note)).await?
        }
        Verb::Classify => {
            let b: Classify = body(&bytes)?;
            let change = Classification {
                priority: given(&b.priority)
                    .map(|p| parse::<Priority>("priority", p, &Priority::ALL.map(|p| p.as_str())))
                    .transpose()?,
                ticket_type: b.ticket_type,
                category: b.category,
                area: b.area,
                pipeline: b.pipeline,
                fields: None,
            };
            let fields: Vec<(String, String)> = b.fields.into_iter().collect();
            agent.classify(n, change, &fields).await?
        }
        Verb::Due => {
            let b: Due = body(&bytes)?;
            let target = match given(&b.target) {
                None => Target::Resolution,
                Some(t) => parse("target", t, &["resolution", "first_response"])?,
            };
            let at = match b.at.trim().parse::<jiff::Timestamp>() {
                Ok(t) => t.as_millisecond(),
                Err(_) => crate::actions::local_instant(&b.at, agent.time_zone())
                    .map_err(ApiError::Invalid)?,
            };
            agent.set_due(n, target, at).await?
        }
        Verb::Internal => {
            agent
                .set_internal(n, body::<Internal>(&bytes)?.internal)
                .await?
        }
    };
    Ok(json_response(&done_json(&done)))
}

/// What an action did: the ticket, each change, the mails queued.
pub fn done_json(done: &Done) -> Value {
    json!({
        "number": done.number,
        "id": done.ticket,
        "changes": done.changes.iter().map(change_json).collect::<Vec<_>>(),
        "queued": done.queued.iter().map(|q| json!({
            "kind": q.kind, "message_id": q.message_id, "to": q.to,
        })).collect::<Vec<_>>(),
    })
}

fn change_json(change: &Change) -> Value {
    match change {
        Change::Created {
            channel,
            pipeline,
            owner,
            acknowledged,
        } => json!({
            "change": "created", "channel": channel.as_str(), "pipeline": pipeline,
            "owner": owner, "acknowledged": acknowledged,
        }),
        Change::Owner { before, after } => {
            json!({ "change": "owner", "before": before, "after": after })
        }
        Change::State { before, after } => {
            json!({ "change": "state", "before": before.as_str(), "after": after.as_str() })
        }
        Change::Reopened { state } => json!({ "change": "reopened", "state": state.as_str() }),
        Change::Closed { outcome } => json!({ "change": "closed", "outcome": outcome.as_str() }),
        Change::Commented => json!({ "change": "commented" }),
        Change::Mailed { kind } => json!({ "change": "mailed", "kind": kind }),
        Change::Classified { said } => json!({ "change": "classified", "said": said }),
        Change::Due { target, at } => {
            json!({ "change": "due", "target": target.as_str(), "at": iso(*at) })
        }
        Change::Visibility { internal } => json!({ "change": "visibility", "internal": internal }),
        Change::DocumentsRequested { items } => {
            json!({ "change": "documents_requested", "items": items })
        }
        Change::DocumentReceived { item } => {
            json!({ "change": "document_received", "item": item })
        }
    }
}
