//! Every API error and its HTTP mapping, in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metr_storage::StorageError;
use serde::Serialize;

/// Error classes of the contract's `errorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    BadData,
    NotFound,
    Unavailable,
    Internal,
}

/// An error as the client sees it: a class and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

/// `{"status":"error","errorType":…,"error":…}`
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// Always `"error"`.
    #[schema(example = "error")]
    pub status: &'static str,
    pub error_type: ErrorType,
    pub error: String,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::NotFound,
            message: message.into(),
        }
    }
}

impl From<StorageError> for ApiError {
    /// The cause goes to the log; the body only says what a client can act on.
    fn from(err: StorageError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable");
            ApiError {
                kind: ErrorType::Unavailable,
                message: "the database is unavailable; retry later".into(),
            }
        } else {
            tracing::error!(error = %err, source = ?std::error::Error::source(&err), "storage error");
            ApiError {
                kind: ErrorType::Internal,
                message: "internal error; see the API's log".into(),
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = match self.kind {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            code,
            Json(ErrorBody {
                status: "error",
                error_type: self.kind,
                error: self.message,
            }),
        )
            .into_response()
    }
}
