//! The OpenAPI 3.1 document, generated from the handlers and types above. The
//! query parameters are described here as strictly as `params` enforces them,
//! so a client (or a fuzzer) can tell a good request from a bad one.

use axum::Json;
use metr_domain::CheckStatus;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{IntoParams, OpenApi, PartialSchema, ToSchema};

use crate::error::{ErrorBody, ErrorType};
use crate::handlers;

/// `key=value`: a non-empty key without `=`, no NUL byte anywhere. (Text
/// parameters below say `^[^\x00]+$`: PostgreSQL cannot hold a NUL byte; a
/// cursor is URL-safe base64.)
pub const LABEL_PATTERN: &str = "^[^=\\x00]+=[^\\x00]*$";

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
        handlers::storage,
        handlers::health
    ),
    components(schemas(ErrorBody, ErrorType))
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// Unix seconds as `params` accepts them: at most 11 digits (years 1970 to
/// 5138, all inside the accepted window), at most 6 decimals.
pub const UNIX_SECONDS_PATTERN: &str = "^[0-9]{1,11}(\\.[0-9]{1,6})?$";

/// `from`/`to`: an RFC 3339 time, or Unix seconds (see [`crate::params::parse_time`]).
pub struct Time;

impl PartialSchema for Time {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(UNIX_SECONDS_PATTERN)),
            )
            .description(Some(
                "An RFC 3339 time from year 0000 to 9999, or Unix seconds (up to 11 digits, \
                 up to 6 decimals)",
            ))
            .into()
    }
}

impl ToSchema for Time {}

/// A label filter, `key=value`.
pub struct Label;

impl PartialSchema for Label {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(LABEL_PATTERN))
            .into()
    }
}

impl ToSchema for Label {}

/// Query parameters of `GET /api/v1/checks`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documentation only: the handlers parse the raw query"
)]
pub struct CheckParams {
    /// Target name; an unknown one gives an empty list.
    #[param(min_length = 1, pattern = "^[^\\x00]+$")]
    target: Option<String>,
    /// Only checks with this outcome.
    #[param(inline)]
    status: Option<CheckStatus>,
    /// Inclusive lower bound; not after `to`.
    #[param(inline)]
    from: Option<Time>,
    /// Inclusive upper bound.
    #[param(inline)]
    to: Option<Time>,
    /// Page size, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page, unchanged.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// Query parameters of `GET /api/v1/metrics`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documentation only: the handlers parse the raw query"
)]
pub struct MetricParams {
    /// Target name.
    #[param(min_length = 1, pattern = "^[^\\x00]+$")]
    target: Option<String>,
    /// Exact metric name.
    #[param(min_length = 1, pattern = "^[^\\x00]+$")]
    name: Option<String>,
    /// `key=value`, repeatable; all must match.
    #[param(explode, style = Form, inline)]
    label: Option<Vec<Label>>,
    /// Inclusive lower bound; not after `to`.
    #[param(inline)]
    from: Option<Time>,
    /// Inclusive upper bound.
    #[param(inline)]
    to: Option<Time>,
    /// Page size, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page, unchanged.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// Query parameters of `GET /api/v1/series`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documentation only: the handlers parse the raw query"
)]
pub struct SeriesParams {
    /// Target name.
    #[param(min_length = 1, pattern = "^[^\\x00]+$")]
    target: Option<String>,
    /// Exact metric name.
    #[param(min_length = 1, pattern = "^[^\\x00]+$")]
    name: Option<String>,
    /// Page size, default 1000.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page, unchanged.
    #[param(min_length = 1, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}
