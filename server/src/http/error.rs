//! The one error type of the HTTP layer. Clients get a clear message and the right status;
//! internal errors are logged in detail and reach the client only as "internal error".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::admin::AdminError;
use crate::auth::AuthError;
use crate::docs::format::Violation;
use crate::docs::DocError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in with your invite link")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooMany(&'static str),
    #[error("the outcome does not follow the format")]
    Format(Vec<Violation>),
    #[error("internal error")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Format(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Internal(detail) => {
                tracing::error!(detail, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let body = match &self {
            Error::Format(violations) => {
                json!({"error": self.to_string(), "violations": violations})
            }
            _ => json!({"error": self.to_string()}),
        };
        (status, Json(body)).into_response()
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing | AuthError::Invalid => Error::Unauthorized,
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<DocError> for Error {
    fn from(e: DocError) -> Self {
        match e {
            DocError::Unknown => Error::NotFound("document"),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<AdminError> for Error {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(e) => Error::BadRequest(e.to_string()),
            AdminError::Exists => Error::Conflict(e.to_string()),
            AdminError::NoMeeting => Error::NotFound("meeting"),
            AdminError::BadInvite(m) => Error::BadRequest(m),
            AdminError::Store(e) => e.into(),
            AdminError::Build(e) => Error::Internal(e.to_string()),
        }
    }
}
