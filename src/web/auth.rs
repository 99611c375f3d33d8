//! Who is signed in: passwords (argon2id), session cookies (random, kept
//! as their SHA-256), the CSRF token of each session, and the limit on
//! failed logins.

use std::net::SocketAddr;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use super::{App, WebError};
use crate::actions::{Staff, people};
use crate::live::Snapshot;
use crate::store::now_ms;

/// The session cookie's name.
pub const COOKIE: &str = "buzon_session";

/// The login form's cookie: a token the form carries too (a cross-site
/// page can post a form but cannot read or set this cookie), before there
/// is a session to hold one.
pub const LOGIN_COOKIE: &str = "buzon_login";

/// How long a login form stays good.
const LOGIN_FORM_SECS: u64 = 3600;

/// Failed logins allowed per person, and per address, in `FAILURE_WINDOW_MS`.
pub const MAX_FAILURES: i64 = 10;
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// An argon2id hash of `password` with a fresh salt, in PHC format.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt_bytes = *uuid::Uuid::new_v4().as_bytes();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the stored `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the person has no password, so that a
/// wrong name takes as long as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

/// 256 random bits, hex: a session id or a CSRF token.
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What the database keeps of a session cookie.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The signed-in person: taking this in a handler is what makes it
/// impossible to reach without a session.
pub struct Me {
    pub staff: Staff,
    /// The token every form of this session carries.
    pub csrf: String,
    /// The hash of the session cookie (to end it).
    pub session: String,
    /// The people, rules and templates in force when the request came.
    pub snap: Arc<Snapshot>,
}

/// Whether a form's token is the one expected, compared in constant time
/// (the token is a secret); an empty expected token matches nothing.
pub fn same_token(given: Option<&str>, wanted: &str) -> bool {
    use subtle::ConstantTimeEq;
    !wanted.is_empty() && bool::from(given.unwrap_or("").as_bytes().ct_eq(wanted.as_bytes()))
}

impl FromRequestParts<Arc<App>> for Me {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let token = cookie(&parts.headers, COOKIE).ok_or(WebError::SignIn)?;
        let session = token_hash(&token);
        let found = app.store.session(&session, now_ms()).await?;
        let web = found.ok_or(WebError::SignIn)?;
        // Someone removed from [people] is signed out.
        let snap = app.current();
        let staff = people::staff(&snap.config, &web.person).ok_or(WebError::SignIn)?;
        Ok(Me {
            staff,
            csrf: web.csrf,
            session,
            snap,
        })
    }
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value for a new session (or, with `None`, one that
/// ends it).
pub fn set_cookie(token: Option<&str>, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(t) => {
            format!("{COOKIE}={t}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
        }
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

/// The `Set-Cookie` value for a login form's token (or, with `None`, one
/// that removes it). `SameSite=Strict`, and only sent to `/login`.
pub fn login_cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let (value, age) = match token {
        Some(t) => (t, LOGIN_FORM_SECS),
        None => ("", 0),
    };
    format!("{LOGIN_COOKIE}={value}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={age}{secure}")
}

/// The client's address: the peer, or, when the peer is a proxy on this
/// machine (nginx), the last address it added to `X-Forwarded-For`.
pub fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
    let peer = peer.map(|p| p.ip());
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    match (peer, forwarded) {
        (Some(ip), Some(f)) if ip.is_loopback() => f,
        (Some(ip), _) => ip.to_string(),
        (None, _) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("clave segura").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "clave segura"));
        assert!(!verify_password(&h, "otra"));
        assert!(!verify_password(decoy_hash(), "x"));
        assert_ne!(hash_password("clave segura").unwrap(), h, "salted");
    }

    #[test]
    fn cookies_are_read_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            "a=1; buzon_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn tokens_match_only_themselves() {
        let t = new_token();
        assert!(same_token(Some(&t), &t));
        assert!(!same_token(Some(&t[1..]), &t));
        assert!(!same_token(None, &t));
        assert!(
            !same_token(Some(""), ""),
            "no token expected matches nothing"
        );
    }

    #[test]
    fn tokens_are_long_and_different() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
    }
}
