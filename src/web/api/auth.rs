//! Who is calling: per-person API tokens sent as `Authorization: Bearer
//! TOKEN`. A token is 32 random bytes shown once (`buzon_` and 64 hex
//! digits); the database keeps its SHA-256, like a session cookie's, so a
//! lookup by hash is the comparison (nothing to time). A token acts as its
//! person with their role; revoked, expired, or of someone removed from
//! `[people]`, it is refused (401).
//!
//! Cookies are never read here: a session cookie does not authenticate
//! the API, so a page elsewhere cannot make a signed-in browser call it
//! (no CSRF to check, because no ambient credential is accepted).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::error::{ApiError, UNAUTHORIZED};
use crate::actions::{Agent, Staff, people};
use crate::live::Snapshot;
use crate::store::{NewApiToken, now_ms};
use crate::web::App;
use crate::web::auth::{FAILURE_WINDOW_MS, MAX_FAILURES, client_address, token_hash};

/// What every token starts with: recognisable in a config file or a leak
/// scanner, and never a valid session cookie.
pub const PREFIX: &str = "buzon_";

/// What the failed attempts are recorded under, beside the logins' (per
/// address, the same window and limit).
const FAILURE_KEY: &str = "(api)";

/// A new token for `person`: the token itself, to show once, and what the
/// database keeps of it.
pub fn issue(
    person: &str,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(String, NewApiToken), String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot draw random bytes: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("{PREFIX}{hex}");
    let record = NewApiToken {
        token_hash: token_hash(&token),
        hint: token.chars().take(PREFIX.len() + 6).collect(),
        person: person.to_string(),
        created_at: now,
        expires_at,
    };
    Ok((token, record))
}

/// The person a request's token acts as: taking this in a handler is what
/// makes it impossible to reach without a valid token.
pub struct Caller {
    pub staff: Staff,
    /// The people, rules and templates in force when the request came.
    pub snap: Arc<Snapshot>,
}

impl Caller {
    /// The token's person acting through the action layer.
    pub fn agent<'s>(&'s self, app: &'s App) -> Result<Agent<'s>, ApiError> {
        Ok(self.snap.agent(&app.store, &self.staff.id)?)
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || ApiError::Unauthorized(UNAUTHORIZED.into());
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or_else(unauthorized)?;
        let now = now_ms();
        let person = app.store.token_person(&token_hash(token), now).await?;
        // Someone removed from [people] loses their tokens with their role.
        let snap = app.current();
        if let Some(staff) = person.and_then(|p| people::staff(&snap.config, &p)) {
            return Ok(Caller { staff, snap });
        }
        // A wrong token, counted per address like a wrong password. A
        // good token (256 random bits) is never refused for them: the
        // limit stops recording a flood and tells the script it is one.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let address = client_address(peer, &parts.headers);
        let since = now - FAILURE_WINDOW_MS;
        let (_, by_address) = app
            .store
            .login_failures(FAILURE_KEY, &address, since)
            .await?;
        if by_address >= MAX_FAILURES {
            return Err(ApiError::TooMany(
                "demasiados intentos con tokens no válidos desde esta dirección: espere 15 minutos y revise el token del script".into(),
            ));
        }
        app.store
            .record_login_failure(FAILURE_KEY, &address, now)
            .await?;
        Err(unauthorized())
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any
/// case, as RFC 9110 says).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_kept_as_hashes() {
        let (a, ra) = issue("ana", 1, None).unwrap();
        let (b, _) = issue("ana", 1, Some(2)).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("buzon_") && a.len() == 6 + 64, "{a}");
        assert_eq!(ra.token_hash, token_hash(&a));
        assert!(!ra.token_hash.contains(&a[6..]));
        assert!(a.starts_with(&ra.hint) && ra.hint.len() == 12);
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }
}
