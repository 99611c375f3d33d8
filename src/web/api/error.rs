//! How the API says no: HTTP statuses as HTTP means them, and a JSON body
//! `{"error": {"code": "forbidden", "message": "..."}}` whose code is
//! stable (scripts branch on it) and whose message is Spanish (people read
//! it). Our own failures are logged with their cause, never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::actions::ActionError;
use crate::store::StoreError;
use crate::web::WebError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or one that is unknown, revoked, expired, or whose person
    /// left `[people]`.
    #[error("{0}")]
    Unauthorized(String),
    /// The person may not do that (the action layer said why).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request could not be read (a path that does not decode).
    #[error("{0}")]
    BadRequest(String),
    /// A method the route does not answer.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request does not make sense as sent; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// Someone changed the ticket since (another agent took it): nothing
    /// was written; read it again and decide.
    #[error("{0}")]
    Conflict(String),
    /// A body over the limit.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    TooMany(String),
    /// Ours: logged with its cause, shown as a plain apology.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The stable code and the status.
    pub fn code(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::Unauthorized(_) => ("unauthorized", StatusCode::UNAUTHORIZED),
            ApiError::BadRequest(_) => ("bad_request", StatusCode::BAD_REQUEST),
            ApiError::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
            ApiError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            ApiError::MethodNotAllowed(_) => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            ApiError::Invalid(_) => ("invalid", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::Conflict(_) => ("conflict", StatusCode::CONFLICT),
            ApiError::TooLarge(_) => ("too_large", StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::TooMany(_) => ("too_many_requests", StatusCode::TOO_MANY_REQUESTS),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// Every code the API answers with, for the OpenAPI document.
pub const CODES: [&str; 10] = [
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "invalid",
    "conflict",
    "too_large",
    "too_many_requests",
    "internal",
];

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Denied(d) => ApiError::Forbidden(d.to_string()),
            ActionError::UnknownPerson(m) | ActionError::Invalid(m) => ApiError::Invalid(m),
            ActionError::Store(s) => s.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("no existe: {what}")),
            StoreError::Conflict(why) => ApiError::Conflict(why),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The tray's shared code answers in the web's terms.
impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        match e {
            WebError::SignIn => ApiError::Unauthorized(UNAUTHORIZED.into()),
            WebError::Forbidden(m) => ApiError::Forbidden(m),
            WebError::NotFound(m) => ApiError::NotFound(m),
            WebError::Invalid(m) => ApiError::Invalid(m),
            WebError::TooMany(m) => ApiError::TooMany(m),
            WebError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// What a request without a valid token is told (the same whatever was
/// wrong with it: which tokens exist is nobody's business).
pub const UNAUTHORIZED: &str = "falta un token válido: envíe «Authorization: Bearer TOKEN» con un token de `buzon token create` (vigente y no revocado)";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code();
        let message = match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "An API request failed.");
                "Algo falló de nuestro lado; el error quedó registrado. Intente de nuevo en un momento."
                    .to_string()
            }
            ApiError::Unauthorized(m)
            | ApiError::BadRequest(m)
            | ApiError::TooLarge(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::MethodNotAllowed(m)
            | ApiError::Invalid(m)
            | ApiError::Conflict(m)
            | ApiError::TooMany(m) => m,
        };
        let body = json!({ "error": { "code": code, "message": message } });
        let mut response = (status, super::json_body(&body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"buzon\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layer_s_refusal_has_its_status_and_code() {
        let cases = [
            (
                ApiError::from(StoreError::Conflict("tomado".into())),
                409,
                "conflict",
            ),
            (
                ApiError::from(StoreError::NotFound("ticket 9".into())),
                404,
                "not_found",
            ),
            (
                ApiError::from(ActionError::Invalid("falta".into())),
                422,
                "invalid",
            ),
            (ApiError::from(WebError::SignIn), 401, "unauthorized"),
            (
                ApiError::from(StoreError::Corrupt("x".into())),
                500,
                "internal",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(error.code(), (code, StatusCode::from_u16(status).unwrap()));
            assert!(CODES.contains(&code));
        }
    }

    #[test]
    fn our_failures_are_not_shown() {
        let response = ApiError::Internal("password=hunter2 at db".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 10_000))
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("hunter2") && text.contains("\"internal\""),
            "{text}"
        );
    }
}
