//! The JSON API (`/api/v1`) on the web listener, for scripts: the tray's
//! list, a ticket, and every action, as the person of an API token
//! (`auth.rs`), through the action layer and its permissions like the
//! pages. No SQL and no rule here.
//!
//! Every route is a [`Route`] of [`routes`]: the router is built from that
//! list and the OpenAPI document (`openapi.rs`) describes the same list,
//! so a route cannot be served without being documented.

pub(super) mod actions;
mod auth;
mod error;
mod openapi;
mod tickets;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

pub use auth::{PREFIX as TOKEN_PREFIX, issue as issue_token};
pub use error::ApiError;

use actions::Verb;
use auth::Caller;

use super::App;

/// Where the API lives on the web listener.
pub const BASE: &str = "/api/v1";

/// The HTTP methods the API answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    /// As the OpenAPI document writes it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
        }
    }
}

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    List,
    Create,
    Show,
    Act(Verb),
    OpenApi,
}

/// One route of the API: method, path under [`BASE`] (with `{number}`
/// where the ticket goes), and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: String,
    pub endpoint: Endpoint,
}

/// Every route of the API, in the order the document lists them.
pub fn routes() -> Vec<Route> {
    let route = |method, path: &str, endpoint| Route {
        method,
        path: path.to_string(),
        endpoint,
    };
    let mut all = vec![
        route(Method::Get, "/tickets", Endpoint::List),
        route(Method::Post, "/tickets", Endpoint::Create),
        route(Method::Get, "/tickets/{number}", Endpoint::Show),
    ];
    all.extend(Verb::ALL.map(|verb| {
        route(
            Method::Post,
            &format!("/tickets/{{number}}/{}", verb.name()),
            Endpoint::Act(verb),
        )
    }));
    all.push(route(Method::Get, "/openapi.json", Endpoint::OpenApi));
    all
}

/// The API's router, to nest under [`BASE`]: built from [`routes`].
pub fn router() -> Router<Arc<App>> {
    let mut router = Router::new();
    for route in routes() {
        router = router.route(&route.path, handler(&route));
    }
    router
        .fallback(|| async {
            ApiError::NotFound("no hay tal ruta en la API: vea /api/v1/openapi.json".into())
        })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed(
                "la ruta no acepta ese método: vea /api/v1/openapi.json".into(),
            )
        })
}

/// The handler a route's endpoint runs.
fn handler(route: &Route) -> MethodRouter<Arc<App>> {
    let filter = route.method.filter();
    match route.endpoint {
        Endpoint::List => on(filter, tickets::list),
        Endpoint::Create => on(filter, tickets::create),
        Endpoint::Show => on(filter, tickets::show),
        Endpoint::OpenApi => on(filter, openapi::serve),
        Endpoint::Act(verb) => on(
            filter,
            move |State(app): State<Arc<App>>,
                  caller: Caller,
                  Path(number): Path<String>,
                  bytes: Bytes| { actions::act(verb, app, caller, number, bytes) },
        ),
    }
}

/// Keeps every error under [`BASE`] in the API's JSON shape, also those
/// answered before a handler runs: a body over the limit (413), a path
/// that does not decode (400). Layered outside the body limit.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with(BASE);
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge("el cuerpo es demasiado grande (más de 2 MB)".into())
        }
        s if s.is_server_error() => ApiError::Internal(format!("status {s} without a body")),
        _ => ApiError::BadRequest(
            "el pedido está mal formado (la ruta o el cuerpo no se pudieron leer)".into(),
        ),
    };
    error.into_response()
}

/// A JSON answer (200 unless changed).
pub fn json_response(value: &serde_json::Value) -> Response {
    json_body(value).into_response()
}

/// A JSON body with its type.
pub fn json_body(value: &serde_json::Value) -> impl IntoResponse + use<> {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        format!("{value:#}\n"),
    )
}

/// The ticket number in a path (`TP-12` or `12`).
fn number_of(app: &App, text: &str) -> Result<i64, ApiError> {
    crate::ticket::parse_number(&app.config.deployment.ticket_prefix, text)
        .ok_or_else(|| ApiError::NotFound(format!("'{text}' no es un número de ticket")))
}
