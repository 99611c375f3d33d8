//! The agents' workspace: the tray, the ticket and every action, in
//! Spanish, served by `buzon run` when `[web] listen` is set.
//!
//! A front end like the command line: handlers parse the request, call the
//! action layer (`crate::actions`, where the permissions are checked) or a
//! read-only store query, and render a page. Server-rendered HTML with
//! minijinja (auto-escaped), no script, no remote resource; every POST
//! carries a CSRF token (the session's, taken by `Posted`; the login form's,
//! from its own cookie); sessions are cookies whose SHA-256 is
//! what the database keeps. The JSON API for scripts (`api/`, under
//! `/api/v1`) shares the listener and the action layer, with tokens
//! instead of cookies.

mod act;
mod admin;
mod api;
mod auth;
mod error;
mod login;
mod new;
mod page;
mod posted;
mod ticket;
mod tray;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::actions::Agent;
use crate::config::Config;
use crate::live::Live;
use crate::store::Store;

pub use api::{TOKEN_PREFIX, issue_token};
pub use auth::hash_password;
pub use error::WebError;

/// Everything a request needs, shared by all of them.
pub struct App {
    pub config: Arc<Config>,
    pub store: Store,
    /// The rules, templates, people and mailboxes' defaults in force,
    /// reloaded on SIGHUP; each request works with the snapshot of its
    /// start (`Me::snap`).
    live: Arc<Live>,
    pages: page::Pages,
}

impl App {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        live: Arc<Live>,
    ) -> Result<Arc<App>, minijinja::Error> {
        Ok(Arc::new(App {
            pages: page::Pages::new(config.deployment.zone.clone())?,
            config,
            store,
            live,
        }))
    }

    /// The snapshot in force, for a request without a session (login).
    pub fn current(&self) -> Arc<crate::live::Snapshot> {
        self.live.current()
    }

    /// The signed-in person acting through the action layer, with the
    /// snapshot their request started with.
    pub fn agent<'s>(&'s self, me: &'s auth::Me) -> Result<Agent<'s>, WebError> {
        Ok(me.snap.agent(&self.store, &me.staff.id)?)
    }
}

/// Forms and attachments people upload are small; anything larger is refused.
const BODY_LIMIT: usize = 2 << 20;

/// What every response says about itself: no script or resource from
/// anywhere but here, no framing, no guessing of types.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(tray::show))
        .route("/login", get(login::form).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route("/tickets/{number}", get(ticket::show))
        .route(
            "/tickets/{number}/attachments/{message}/{index}",
            get(ticket::attachment),
        )
        .route("/tickets/{number}/{action}", post(act::post))
        .route("/new", get(new::form).post(new::create))
        .route("/alerts", get(tray::alerts))
        .route("/admin", get(admin::show))
        .route("/admin/report", get(admin::report))
        .route(
            "/admin/quarantine/{id}/retry",
            post(admin::retry_quarantine),
        )
        .route("/admin/outbox/{id}/retry", post(admin::retry_outbox))
        .route("/static/buzon.css", get(page::css))
        .nest(api::BASE, api::router())
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("cache-control"),
            HeaderValue::from_static("no-store"),
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn(api::json_errors))
        .with_state(app)
}

/// Serves the workspace until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
