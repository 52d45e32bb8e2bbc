//! The `/api/v1` handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use metr_domain::{Check, Sample, Series, TargetSummary};
use metr_service::health::{Health, HealthCheck, HealthStatus};
use metr_storage::ReadRepository;
use serde::Serialize;

use crate::error::{ApiError, ErrorBody};
use crate::params;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub repo: Arc<dyn ReadRepository>,
    pub registry: prometheus::Registry,
    /// How long a request may wait for the database: a connection and its query.
    pub query_timeout: Duration,
}

impl AppState {
    /// Runs a repository call, giving up after the query timeout: a database that
    /// does not answer is `unavailable`, not a hung request.
    async fn db<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, metr_storage::StorageError>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(self.query_timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => {
                tracing::warn!(timeout = ?self.query_timeout, "database did not answer in time");
                Err(ApiError::unavailable(format!(
                    "the database did not answer within {}; retry later",
                    humantime::format_duration(self.query_timeout)
                )))
            }
        }
    }
}

/// `{"status":"success","data":[…],"next_cursor":…}`
#[derive(Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    /// Always `"success"`.
    #[schema(example = "success")]
    pub status: &'static str,
    pub data: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> ListResponse<T> {
    fn new(data: Vec<T>, next_cursor: Option<metr_storage::Cursor>) -> Json<Self> {
        Json(ListResponse {
            status: "success",
            data,
            next_cursor: next_cursor.map(|c| c.encode()),
        })
    }
}

type ApiResult<T> = Result<Json<ListResponse<T>>, ApiError>;

/// Checks, newest first.
#[utoipa::path(get, path = "/api/v1/checks", params(crate::openapi::CheckParams), responses(
    (status = 200, body = ListResponse<Check>),
    (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
    (status = 500, description = "An unexpected error; details are in the API's log", body = ErrorBody),
    (status = 503, description = "The database is unreachable or did not answer in time", body = ErrorBody)))]
pub async fn checks(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Check> {
    let query = params::check_query(raw.as_deref())?;
    let page = state.db(state.repo.checks(&query)).await?;
    Ok(ListResponse::new(page.items, page.next_cursor))
}

/// Samples, newest first.
#[utoipa::path(get, path = "/api/v1/metrics", params(crate::openapi::MetricParams), responses(
    (status = 200, body = ListResponse<Sample>),
    (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
    (status = 500, description = "An unexpected error; details are in the API's log", body = ErrorBody),
    (status = 503, description = "The database is unreachable or did not answer in time", body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Sample> {
    let query = params::metric_query(raw.as_deref())?;
    let page = state.db(state.repo.metrics(&query)).await?;
    Ok(ListResponse::new(page.items, page.next_cursor))
}

/// Distinct series, in the order they were first stored.
#[utoipa::path(get, path = "/api/v1/series", params(crate::openapi::SeriesParams), responses(
    (status = 200, body = ListResponse<Series>),
    (status = 400, description = "A parameter is invalid; the message names it", body = ErrorBody),
    (status = 500, description = "An unexpected error; details are in the API's log", body = ErrorBody),
    (status = 503, description = "The database is unreachable or did not answer in time", body = ErrorBody)))]
pub async fn series(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Series> {
    let query = params::series_query(raw.as_deref())?;
    let page = state.db(state.repo.series(&query)).await?;
    Ok(ListResponse::new(page.items, page.next_cursor))
}

/// Every target the checker has seen, by name, with its last check and hourly uptime.
#[utoipa::path(get, path = "/api/v1/targets", responses(
    (status = 200, body = ListResponse<TargetSummary>),
    (status = 400, description = "This endpoint takes no parameters", body = ErrorBody),
    (status = 500, description = "An unexpected error; details are in the API's log", body = ErrorBody),
    (status = 503, description = "The database is unreachable or did not answer in time", body = ErrorBody)))]
pub async fn targets(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<TargetSummary> {
    params::Params::parse(raw.as_deref(), &[])?;
    let targets = state.db(state.repo.targets(chrono::Utc::now())).await?;
    Ok(ListResponse::new(targets, None))
}

/// The time range of the samples stored, oldest to newest.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StorageRange {
    /// Timestamp of the oldest stored sample; `null` when none is stored.
    pub oldest_sample_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Timestamp of the newest stored sample; `null` when none is stored.
    pub newest_sample_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `{"status":"success","data":{…}}`
#[derive(Serialize, utoipa::ToSchema)]
pub struct StorageResponse {
    /// Always `"success"`.
    #[schema(example = "success")]
    pub status: &'static str,
    pub data: StorageRange,
}

/// Which time range of samples is held: retention drops whole days.
#[utoipa::path(get, path = "/api/v1/storage", responses(
    (status = 200, body = StorageResponse),
    (status = 400, description = "This endpoint takes no parameters", body = ErrorBody),
    (status = 500, description = "An unexpected error; details are in the API's log", body = ErrorBody),
    (status = 503, description = "The database is unreachable or did not answer in time", body = ErrorBody)))]
pub async fn storage(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<StorageResponse>, ApiError> {
    params::Params::parse(raw.as_deref(), &[])?;
    let range = state.db(state.repo.held_range()).await?;
    Ok(Json(StorageResponse {
        status: "success",
        data: StorageRange {
            oldest_sample_at: range.map(|r| r.0),
            newest_sample_at: range.map(|r| r.1),
        },
    }))
}

/// health+json: `fail` (503) while the database is unreachable.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, description = "pass", content_type = "application/health+json"),
    (status = 503, description = "fail: the database is unreachable", content_type = "application/health+json")))]
pub async fn health(State(state): State<AppState>) -> Health {
    let ping = tokio::time::timeout(Duration::from_secs(2), state.repo.ping()).await;
    let (status, output) = match ping {
        Ok(Ok(())) => (HealthStatus::Pass, None),
        Ok(Err(e)) => (
            HealthStatus::Fail,
            Some(if e.is_unavailable() {
                "database unreachable".to_owned()
            } else {
                "database error".to_owned()
            }),
        ),
        Err(_) => (
            HealthStatus::Fail,
            Some("database ping timed out".to_owned()),
        ),
    };
    Health {
        status,
        service_id: "api".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        output: output.clone(),
        checks: [(
            "database:reachable".to_owned(),
            vec![HealthCheck {
                component_type: "datastore".into(),
                status,
                observed_value: None,
                observed_unit: None,
                output,
            }],
        )]
        .into(),
    }
}

/// Anything else is a JSON 404.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}
