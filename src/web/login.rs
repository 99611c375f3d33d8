//! Signing in and out.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth;
use super::posted::Posted;
use super::{App, WebError};
use crate::actions::people;
use crate::store::WebSession;
use crate::store::now_ms;

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
    /// The login form's token, the same as its cookie's.
    csrf: Option<String>,
}

pub async fn form(State(app): State<Arc<App>>) -> Result<Response, WebError> {
    login_page(&app, None, StatusCode::OK)
}

/// The login form with a fresh token, in the page and in its cookie.
fn login_page(app: &App, error: Option<&str>, status: StatusCode) -> Result<Response, WebError> {
    let token = auth::new_token();
    let page = app.pages.login(&app.config, &token, error, status)?;
    let cookie = auth::login_cookie(Some(&token), app.config.web.is_https());
    Ok(([(header::SET_COOKIE, cookie)], page).into_response())
}

pub async fn sign_in(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(c): Form<Credentials>,
) -> Result<Response, WebError> {
    let now = now_ms();
    let address = auth::client_address(Some(peer), &headers);
    // A login posted from another site (to sign the victim in as the
    // attacker) carries no token of ours: refused before anything is read.
    let expected = auth::cookie(&headers, auth::LOGIN_COOKIE).unwrap_or_default();
    if !auth::same_token(c.csrf.as_deref(), &expected) {
        tracing::info!(%address, "Login refused: the form's token is missing or stale.");
        return login_page(
            &app,
            Some("El formulario de ingreso venció: vuelva a ingresar su usuario y contraseña."),
            StatusCode::FORBIDDEN,
        );
    }
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
        return login_page(
            &app,
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
        return login_page(
            &app,
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
    let https = app.config.web.is_https();
    let cookie = auth::set_cookie(Some(&token), hours * 3600, https);
    // The login form's token has served: removed.
    let used = auth::login_cookie(None, https);
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie), (header::SET_COOKIE, used)]),
        Redirect::to("/"),
    )
        .into_response())
}

pub async fn sign_out(
    State(app): State<Arc<App>>,
    Posted { me, .. }: Posted,
) -> Result<Response, WebError> {
    app.store.end_session(&me.session).await?;
    let cookie = auth::set_cookie(None, 0, app.config.web.is_https());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}
