//! The `/api/v1` handlers.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use metr_domain::{Check, Sample, Series};
use metr_service::health::{Health, HealthCheck, HealthStatus};
use metr_storage::ReadRepository;
use serde::Serialize;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::error::{ApiError, ErrorBody};
use crate::params;
use crate::staleness::{self, STALE_AFTER_INTERVALS, TargetState};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub repo: Arc<dyn ReadRepository>,
    pub registry: prometheus::Registry,
    /// How long a request may wait for the database: a connection and its query.
    pub query_timeout: Duration,
}

impl AppState {
    /// Runs a repository call in a span of its own (`method` names it), giving
    /// up after the query timeout: a database that does not answer is
    /// `unavailable`, not a hung request.
    async fn db<T>(
        &self,
        method: &'static str,
        call: impl std::future::Future<Output = Result<T, metr_storage::StorageError>>,
    ) -> Result<T, ApiError> {
        let span = repository_span(method);
        match tokio::time::timeout(self.query_timeout, call.instrument(span.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                span.record("otel.status_description", e.to_string());
                Err(e.into())
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.query_timeout, "database did not answer in time");
                let message = format!(
                    "the database did not answer within {}; retry later",
                    humantime::format_duration(self.query_timeout)
                );
                span.record("otel.status_description", message.as_str());
                Err(ApiError::unavailable(message))
            }
        }
    }
}

/// The span of one call of the read repository, named after its method.
fn repository_span(method: &'static str) -> Span {
    tracing::info_span!(
        "repository",
        otel.name = method,
        code.function.name = method,
        otel.status_description = Empty,
    )
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
    let page = state
        .db("ReadRepository::checks", state.repo.checks(&query))
        .await?;
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
    let page = state
        .db("ReadRepository::metrics", state.repo.metrics(&query))
        .await?;
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
    let page = state
        .db("ReadRepository::series", state.repo.series(&query))
        .await?;
    Ok(ListResponse::new(page.items, page.next_cursor))
}

/// Every target the checker has seen, by name, with its last check, hourly
/// uptime, and whether its checks stopped (see [`TargetState`]).
#[utoipa::path(get, path = "/api/v1/targets", responses(
    (status = 200, body = ListResponse<TargetState>),
    (status = 400, description = "This endpoint takes no parameters", body = ErrorBody),
    (status = 500, description = "An unexpected error; details are in the API's log", body = ErrorBody),
    (status = 503, description = "The database is unreachable or did not answer in time", body = ErrorBody)))]
pub async fn targets(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<TargetState> {
    params::Params::parse(raw.as_deref(), &[])?;
    let now = chrono::Utc::now();
    let targets = state
        .db("ReadRepository::targets", state.repo.targets(now))
        .await?;
    let targets = targets
        .into_iter()
        .map(|t| TargetState::of(t, now))
        .collect();
    Ok(ListResponse::new(targets, None))
}

/// The time range of the samples stored, oldest to newest, and what they take.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StorageRange {
    /// Timestamp of the oldest stored sample; `null` when none is stored.
    pub oldest_sample_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Timestamp of the newest stored sample; `null` when none is stored.
    pub newest_sample_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Recent samples, stored as written.
    pub head: StoragePart,
    /// Older samples, rewritten into compressed chunks.
    pub compressed: StoragePart,
}

/// Samples held by one part of the sample storage and their bytes on disk
/// (data and indexes): `head` and `compressed` add up to all it takes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StoragePart {
    #[schema(example = 1_000_000)]
    pub samples: u64,
    #[schema(example = 1_670_000)]
    pub bytes: u64,
}

impl From<metr_storage::StoragePart> for StoragePart {
    fn from(part: metr_storage::StoragePart) -> Self {
        StoragePart {
            samples: part.samples,
            bytes: part.bytes,
        }
    }
}

/// `{"status":"success","data":{…}}`
#[derive(Serialize, utoipa::ToSchema)]
pub struct StorageResponse {
    /// Always `"success"`.
    #[schema(example = "success")]
    pub status: &'static str,
    pub data: StorageRange,
}

/// Which time range of samples is held (retention drops whole days), and how
/// many samples each part of the storage holds in how many bytes.
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
    let range = state
        .db("ReadRepository::held_range", state.repo.held_range())
        .await?;
    let usage = state
        .db("ReadRepository::usage", state.repo.usage())
        .await?;
    Ok(Json(StorageResponse {
        status: "success",
        data: StorageRange {
            oldest_sample_at: range.map(|r| r.0),
            newest_sample_at: range.map(|r| r.1),
            head: usage.head.into(),
            compressed: usage.compressed.into(),
        },
    }))
}

/// health+json: `fail` (503) while the database is unreachable; `warn` (still
/// 200) when no target has been checked within 3 of its intervals.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, description = "pass; or warn: checks stopped, no target was checked within 3 of its intervals", content_type = "application/health+json"),
    (status = 503, description = "fail: the database is unreachable", content_type = "application/health+json")))]
pub async fn health(State(state): State<AppState>) -> Health {
    let database = database_health(&state).await;
    let mut checks = vec![("database:reachable".to_owned(), vec![database.clone()])];
    let mut status = database.status;
    let mut output = database.output;
    if status == HealthStatus::Pass {
        let recent = stopped_checks_health(&state).await;
        status = recent.status;
        output = recent.output.clone();
        checks.push(("checks:recent".to_owned(), vec![recent]));
    }
    Health {
        status,
        service_id: "api".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        output,
        checks: checks.into_iter().collect(),
    }
}

/// `fail` when the database does not answer a ping within 2 s.
async fn database_health(state: &AppState) -> HealthCheck {
    let ping = state
        .repo
        .ping()
        .instrument(repository_span("ReadRepository::ping"));
    let ping = tokio::time::timeout(HEALTH_TIMEOUT, ping).await;
    let (status, output) = match ping {
        Ok(Ok(())) => (HealthStatus::Pass, None),
        Ok(Err(e)) => (HealthStatus::Fail, Some(database_trouble(&e))),
        Err(_) => (
            HealthStatus::Fail,
            Some("database ping timed out".to_owned()),
        ),
    };
    HealthCheck {
        component_type: "datastore".into(),
        status,
        observed_value: None,
        observed_unit: None,
        output,
    }
}

/// `warn` when every target ever checked is stale: the checker stopped writing.
/// Its observed value is the age of the newest check, in seconds.
async fn stopped_checks_health(state: &AppState) -> HealthCheck {
    let now = chrono::Utc::now();
    let read = state
        .repo
        .targets(now)
        .instrument(repository_span("ReadRepository::targets"));
    let targets = match tokio::time::timeout(HEALTH_TIMEOUT, read).await {
        Ok(Ok(targets)) => targets,
        Ok(Err(e)) => return failed_read(database_trouble(&e)),
        Err(_) => return failed_read("reading the targets timed out".to_owned()),
    };
    let targets: Vec<TargetState> = targets
        .into_iter()
        .map(|t| TargetState::of(t, now))
        .collect();
    let newest = targets
        .iter()
        .filter_map(|t| t.last_check_age_seconds)
        .reduce(f64::min);
    let stopped = staleness::checks_stopped(&targets);
    HealthCheck {
        component_type: "component".into(),
        status: if stopped.is_some() {
            HealthStatus::Warn
        } else {
            HealthStatus::Pass
        },
        observed_value: newest.map(|age| serde_json::json!(age)),
        observed_unit: newest.map(|_| "s".to_owned()),
        output: stopped.map(|age| {
            format!(
                "no check written for {age:.0} s: every target's last check is older than \
                 {STALE_AFTER_INTERVALS} of its intervals"
            )
        }),
    }
}

/// How long each health probe may wait for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

fn database_trouble(e: &metr_storage::StorageError) -> String {
    if e.is_unavailable() {
        "database unreachable".to_owned()
    } else {
        "database error".to_owned()
    }
}

/// A database that answered the ping but not the read is still a database
/// problem: `fail`, as the ping's would be.
fn failed_read(output: String) -> HealthCheck {
    HealthCheck {
        component_type: "component".into(),
        status: HealthStatus::Fail,
        observed_value: None,
        observed_unit: None,
        output: Some(output),
    }
}

/// Anything else is a JSON 404.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}
