//! Every API error and its HTTP mapping, in one place.

use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
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

    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::Unavailable,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::Internal,
            message: message.into(),
        }
    }

    /// The error for a status the framework chose (a wrong method, a timeout, a
    /// request hyper could not parse), so that every error has a JSON body.
    pub fn for_status(status: StatusCode, method: Option<&Method>) -> Self {
        match status {
            StatusCode::METHOD_NOT_ALLOWED => ApiError::bad_data(match method {
                Some(m) => format!("method {m} is not allowed here; this API answers GET"),
                None => "this method is not allowed here; this API answers GET".to_owned(),
            }),
            StatusCode::URI_TOO_LONG => {
                ApiError::bad_data("the request URI is longer than the server accepts (64 KiB)")
            }
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::bad_data(
                "the request headers are larger or more numerous than the server accepts",
            ),
            StatusCode::NOT_FOUND => ApiError::not_found("no such endpoint"),
            StatusCode::REQUEST_TIMEOUT
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => {
                ApiError::unavailable("the request took too long; retry later")
            }
            s if s.is_client_error() => ApiError::bad_data(format!(
                "the request was refused: {}",
                s.canonical_reason().unwrap_or("bad request").to_lowercase()
            )),
            _ => ApiError::internal("internal error; see the API's log"),
        }
    }

    /// The JSON body alone, for answers written below the router.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&ErrorBody {
            status: "error",
            error_type: self.kind,
            error: self.message.clone(),
        })
        .unwrap_or_default()
    }
}

/// Middleware: an error response without a body (the framework's 405, a
/// timeout's 503) gets the contract's JSON body, keeping its status and headers.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let json = ApiError::for_status(status, Some(&method)).into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    let (json_parts, body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, body)
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
