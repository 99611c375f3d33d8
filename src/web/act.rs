//! The ticket page's forms: each POST (a `Posted`: session and CSRF token
//! checked) becomes one call of the action layer, which checks the permission (a
//! forged POST for a button that was not shown is refused there, 403).
//! Then back to the ticket, saying what was done.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::posted::Posted;
use super::ticket::number_of;
use super::{App, WebError};
use crate::ticket::{Classification, Target};
use crate::ticket::{Outcome, State as TicketState};

pub async fn post(
    State(app): State<Arc<App>>,
    Path((number, action)): Path<(String, String)>,
    Posted { me, form }: Posted,
) -> Result<Response, WebError> {
    let n = number_of(&app, &number)?;
    let agent = app.agent(&me)?;
    let f = Fields(&form);
    let done = match action.as_str() {
        "tomar" => agent.take(n).await.map(|_| "tomado")?,
        "asignar" => agent
            .assign(n, f.required("persona")?)
            .await
            .map(|_| "asignado")?,
        "estado" => {
            let state = f.state("estado")?;
            agent.set_state(n, state).await.map(|_| "estado")?
        }
        "reabrir" => {
            let state = f.optional("estado").map(parse_state).transpose()?;
            agent
                .reopen(n, state, f.optional("nota"))
                .await
                .map(|_| "reabierto")?
        }
        "comentar" => agent
            .comment(n, f.required("texto")?)
            .await
            .map(|_| "comentario")?,
        "responder" => agent
            .reply(n, f.required("texto")?)
            .await
            .map(|_| "respuesta")?,
        "novedad" => agent
            .update(n, f.required("texto")?)
            .await
            .map(|_| "novedad")?,
        "pedir" => {
            let items: Vec<String> = f
                .required("documentos")?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            agent
                .request_documents(n, &items, f.optional("nota"))
                .await
                .map(|_| "documentos")?
        }
        "recibido" => agent
            .received(n, f.required("documento")?)
            .await
            .map(|_| "recibido")?,
        "cerrar" => {
            let outcome = match f.required("resultado")? {
                "exito" => Outcome::Success,
                "sin_exito" => Outcome::Failure,
                other => {
                    return Err(WebError::Invalid(format!(
                        "resultado '{other}' desconocido"
                    )));
                }
            };
            agent
                .close(n, outcome, f.optional("nota"))
                .await
                .map(|_| "cerrado")?
        }
        "clasificar" => {
            let change = Classification {
                priority: f
                    .optional("prioridad")
                    .map(|p| p.parse())
                    .transpose()
                    .map_err(WebError::Invalid)?,
                ticket_type: f.optional("tipo").map(str::to_string),
                category: f.optional("categoria").map(str::to_string),
                area: f.optional("area").map(str::to_string),
                pipeline: f.optional("pipeline").map(str::to_string),
                fields: None,
            };
            agent
                .classify(n, change, &[])
                .await
                .map(|_| "clasificado")?
        }
        "vence" => {
            let at = crate::actions::local_instant(f.required("fecha")?, agent.time_zone())
                .map_err(WebError::Invalid)?;
            let target = match f.optional("objetivo") {
                Some("primera_respuesta") => Target::FirstResponse,
                _ => Target::Resolution,
            };
            agent.set_due(n, target, at).await.map(|_| "vence")?
        }
        "interno" => {
            let on = f.required("interno")? == "si";
            agent.set_internal(n, on).await.map(|_| "interno")?
        }
        other => return Err(WebError::NotFound(format!("no hay una acción '{other}'"))),
    };
    Ok(Redirect::to(&format!("/tickets/{number}?aviso={done}")).into_response())
}

/// A form's fields: blank ones count as absent.
struct Fields<'a>(&'a HashMap<String, String>);

impl<'a> Fields<'a> {
    fn optional(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> Result<&'a str, WebError> {
        self.optional(name)
            .ok_or_else(|| WebError::Invalid(format!("falta «{name}»: complete el campo")))
    }

    fn state(&self, name: &str) -> Result<TicketState, WebError> {
        parse_state(self.required(name)?)
    }
}

fn parse_state(text: &str) -> Result<TicketState, WebError> {
    text.parse::<TicketState>().map_err(WebError::Invalid)
}
