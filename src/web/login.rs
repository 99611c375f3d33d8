//! Signing in and out.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{self, Me};
use super::{App, WebError};
use crate::actions::people;
use crate::store::WebSession;
use crate::store::now_ms;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

pub async fn form(State(app): State<Arc<App>>) -> Result<Response, WebError> {
    app.pages.login(&app.config, None, StatusCode::OK)
}

pub async fn sign_in(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Result<Response, WebError> {
    let now = now_ms();
    let address = auth::client_address(Some(peer), &headers);
    let person = people::find(&app.current().config, &c.username).ok();
    // Failures are counted under the person's key when the name is theirs,
    // else under what was typed.
    let who = person
        .as_ref()
        .map(|p| p.id.clone())
        .unwrap_or_else(|| c.username.trim().to_lowercase());
    let (by_person, by_address) = app
        .store
        .login_failures(&who, &address, now - auth::FAILURE_WINDOW_MS)
        .await?;
    if by_person >= auth::MAX_FAILURES || by_address >= auth::MAX_FAILURES {
        tracing::warn!(person = %who, %address, "Login refused: too many failed attempts.");
        return app.pages.login(
            &app.config,
            Some("Demasiados intentos fallidos: espere 15 minutos antes de volver a intentarlo."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let stored = match &person {
        Some(p) => app.store.password_hash(&p.id).await?,
        None => None,
    };
    let ok = auth::verify_password(stored.as_deref().unwrap_or(auth::decoy_hash()), &c.password);
    let (Some(person), Some(_), true) = (person, stored, ok) else {
        app.store.record_login_failure(&who, &address, now).await?;
        tracing::info!(person = %who, %address, "Login failed.");
        return app.pages.login(
            &app.config,
            Some("Usuario o contraseña incorrectos."),
            StatusCode::UNAUTHORIZED,
        );
    };
    let token = auth::new_token();
    let hours = app.config.web.session_hours.max(1);
    let session = WebSession {
        person: person.id.clone(),
        csrf: auth::new_token(),
        expires_at: now + i64::try_from(hours).unwrap_or(12) * 3_600_000,
    };
    app.store
        .create_session(&auth::token_hash(&token), &session, now)
        .await?;
    tracing::info!(person = %person.id, "Signed in.");
    let cookie = auth::set_cookie(Some(&token), hours * 3600, app.config.web.is_https());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

#[derive(Deserialize)]
pub struct Csrf {
    csrf: Option<String>,
}

pub async fn sign_out(
    State(app): State<Arc<App>>,
    me: Me,
    Form(f): Form<Csrf>,
) -> Result<Response, WebError> {
    me.check_csrf(f.csrf.as_deref())?;
    app.store.end_session(&me.session).await?;
    let cookie = auth::set_cookie(None, 0, app.config.web.is_https());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}
