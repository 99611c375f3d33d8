//! `Posted<T>`: the only way a handler takes a form. It needs the session
//! (`Me`) and the session's CSRF token in the form's `csrf` field, checked
//! before the form is even decoded, so a POST handler cannot forget the
//! check: there is no other extractor for a form body in the workspace.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::auth::{Me, same_token};
use super::{App, WebError};

/// A form posted by the signed-in person, its CSRF token verified.
pub struct Posted<T = HashMap<String, String>> {
    pub me: Me,
    pub form: T,
}

/// The one field every form carries.
#[derive(Deserialize)]
struct Token {
    csrf: Option<String>,
}

/// What a refused token says (403, nothing done).
pub fn stale_form() -> WebError {
    WebError::Forbidden(
        "el formulario venció o no es de esta sesión: vuelva a la página e intente de nuevo".into(),
    )
}

impl<T: DeserializeOwned + Send> FromRequest<Arc<App>> for Posted<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, app: &Arc<App>) -> Result<Self, WebError> {
        let (mut parts, body) = req.into_parts();
        let me = Me::from_request_parts(&mut parts, app).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|e| WebError::Invalid(format!("no se pudo leer el formulario: {e}")))?;
        let token: Token = serde_urlencoded::from_bytes(&bytes).map_err(|_| stale_form())?;
        if !same_token(token.csrf.as_deref(), &me.csrf) {
            return Err(stale_form());
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::Invalid(format!("formulario incompleto: {e}")))?;
        Ok(Posted { me, form })
    }
}
