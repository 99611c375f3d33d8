//! What a request can end in besides a page: sign in first, not allowed,
//! not there, a request that makes no sense, too many attempts, or a
//! failure of ours (logged, never shown).

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::actions::ActionError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No session: to the login page.
    #[error("sign in first")]
    SignIn,
    /// The person may not do that (the action layer said why).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request does not make sense as sent; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    TooMany(String),
    /// Ours: logged with its cause, shown as a plain apology.
    #[error("{0}")]
    Internal(String),
}

impl From<ActionError> for WebError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Denied(d) => WebError::Forbidden(d.to_string()),
            ActionError::UnknownPerson(m) | ActionError::Invalid(m) => WebError::Invalid(m),
            ActionError::Store(s) => s.into(),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => WebError::NotFound(format!("no existe: {what}")),
            StoreError::Conflict(why) => WebError::Invalid(why),
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            WebError::SignIn => return Redirect::to("/login").into_response(),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "No permitido", m.clone()),
            WebError::NotFound(m) => (StatusCode::NOT_FOUND, "No encontrado", m.clone()),
            WebError::Invalid(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "No se pudo hacer",
                m.clone(),
            ),
            WebError::TooMany(m) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Espere un momento",
                m.clone(),
            ),
            WebError::Internal(cause) => {
                tracing::error!(error = %cause, "A web request failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "Algo falló de nuestro lado; el error quedó registrado. Intente de nuevo en un momento."
                        .to_string(),
                )
            }
        };
        let body = format!(
            "<!doctype html><html lang=\"es\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · buzon</title><link rel=\"stylesheet\" href=\"/static/buzon.css\"></head>\
             <body><main class=\"narrow\"><h1>{title}</h1><p class=\"error\" id=\"error\">{}</p>\
             <p><a href=\"/\">Volver a la bandeja</a></p></main></body></html>",
            escape(&message)
        );
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            Html(body),
        )
            .into_response()
    }
}

/// HTML text escaping for the few strings written outside the templates.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
