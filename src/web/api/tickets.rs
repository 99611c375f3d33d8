//! The tickets as JSON: the tray's list (its filters and search, from the
//! same query parameters), one ticket whole, and a ticket opened by hand.
//! The shapes are the command line's `--format json` ones, so a script
//! reads one shape whichever way it asks.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::actions::{body, done_json};
use super::auth::Caller;
use super::error::ApiError;
use super::{json_response, number_of};
use crate::actions::{Action, NewRequest};
use crate::ticket::Channel;
use crate::view::{json_times, tickets_json};
use crate::web::App;
use crate::web::tray::{Filters, find};

/// `GET /api/v1/tickets?estado=…&q=…&pagina=…`: a page of the tray.
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filters = Filters::from_query(query.as_deref());
    let problems = filters.problems();
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems.join("; ")));
    }
    let (_, found, more) = find(&app, &filters, &caller.staff.id).await?;
    let rows: Vec<_> = found.into_iter().map(|(t, _)| t).collect();
    let mut out = tickets_json(&rows, &app.config.deployment.ticket_prefix);
    out["page"] = filters.page.into();
    out["next_page"] = more.then_some(filters.page + 1).into();
    Ok(json_response(&out))
}

/// `GET /api/v1/tickets/{number}`: fields, keys, documents, messages,
/// history, alerts (as `buzon tickets show --format json`).
pub async fn show(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    let n = number_of(&app, &number)?;
    let agent = caller.agent(&app)?;
    let detail = agent.load(n, Action::Read).await?;
    let value = serde_json::to_value(&detail)
        .map_err(|e| ApiError::Internal(format!("cannot write ticket {n} as JSON: {e}")))?;
    Ok(json_response(&json_times(value)))
}

/// The body of `POST /api/v1/tickets` (`buzon tickets new`'s options).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct New {
    /// phone, in_person, email (default: phone).
    channel: Option<String>,
    mailbox: Option<String>,
    requester: Option<String>,
    name: Option<String>,
    subject: String,
    body: String,
    owner: Option<String>,
}

/// `POST /api/v1/tickets`: a request written down by hand, routed by the
/// rules like mail. 201 with the ticket's address.
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let b: New = body(&bytes)?;
    let blank = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let channel = match blank(b.channel) {
        None => Channel::Phone,
        Some(c) => c.parse().map_err(|_| {
            ApiError::Invalid(format!(
                "«channel»: '{c}' no es un valor válido; use {}",
                Channel::ALL.map(|c| c.as_str()).join(", ")
            ))
        })?,
    };
    let request = NewRequest {
        channel,
        mailbox: blank(b.mailbox),
        requester: blank(b.requester),
        name: blank(b.name),
        subject: b.subject,
        body: b.body,
        owner: blank(b.owner),
    };
    let agent = caller.agent(&app)?;
    let done = agent.create(&request).await?;
    let location = format!("/api/v1/tickets/{}", done.number);
    let mut response = json_response(&done_json(&done));
    *response.status_mut() = StatusCode::CREATED;
    Ok(([(header::LOCATION, location)], response).into_response())
}
