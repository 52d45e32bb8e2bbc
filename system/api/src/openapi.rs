//! The OpenAPI 3.1 document, generated from the handlers and types above.

use axum::Json;
use utoipa::OpenApi;

use crate::error::{ErrorBody, ErrorType};
use crate::handlers;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "metr API",
        description = "Checks and samples recorded by the checker."
    ),
    paths(
        handlers::checks,
        handlers::metrics,
        handlers::series,
        handlers::targets,
        handlers::health
    ),
    components(schemas(ErrorBody, ErrorType))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
