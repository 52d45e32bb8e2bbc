//! The API's router and server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Router, middleware};
use metr_service::error::StartError;
use metr_service::http_metrics::{self, HttpMetrics};
use metr_service::server::Server;
use metr_service::trace_context;
use metr_storage::ReadRepository;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{self, ApiError};
use crate::handlers::{self, AppState};
use crate::openapi;

/// How long the API waits for the database by default: well under a client's patience.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(3);

/// Settings of the API beyond its listener and repository.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a request may wait for the database (a connection and its
    /// query) before it is answered 503 `unavailable`.
    pub query_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            query_timeout: DEFAULT_QUERY_TIMEOUT,
        }
    }
}

impl Options {
    /// A last-resort bound on a whole request, above the database's.
    fn request_timeout(&self) -> Duration {
        self.query_timeout + Duration::from_secs(10)
    }
}

/// A bound, ready-to-run API.
pub struct Application {
    server: Server,
    router: Router,
}

/// The router over any read repository; tests use the in-memory one.
pub fn router(repo: Arc<dyn ReadRepository>, options: &Options) -> Result<Router, StartError> {
    let registry = prometheus::Registry::new();
    let http = HttpMetrics::register(&registry, "api")?;
    let state = AppState {
        repo,
        registry,
        query_timeout: options.query_timeout,
    };
    let request_id = HeaderName::from_static("x-request-id");
    Ok(Router::new()
        .route("/api/v1/checks", get(handlers::checks))
        .route("/api/v1/metrics", get(handlers::metrics))
        .route("/api/v1/series", get(handlers::series))
        .route("/api/v1/targets", get(handlers::targets))
        .route("/api/v1/storage", get(handlers::storage))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/health", get(handlers::health))
        .route("/metrics", get(metrics))
        .fallback(handlers::not_found)
        .layer(middleware::from_fn_with_state(http, HttpMetrics::track))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            options.request_timeout(),
        ))
        .layer(middleware::from_fn(error::json_errors))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(middleware::from_fn(trace_context::server_span))
        .with_state(state))
}

async fn metrics(State(state): State<AppState>) -> Response {
    http_metrics::render(&state.registry)
}

/// The JSON body of the answers hyper writes itself, to requests it cannot parse.
fn parse_error_body(status: StatusCode) -> Vec<u8> {
    ApiError::for_status(status, None).body()
}

impl Application {
    /// The API with default [`Options`].
    pub async fn build(
        listen: SocketAddr,
        repo: Arc<dyn ReadRepository>,
    ) -> Result<Self, StartError> {
        Self::build_with(listen, repo, &Options::default()).await
    }

    pub async fn build_with(
        listen: SocketAddr,
        repo: Arc<dyn ReadRepository>,
        options: &Options,
    ) -> Result<Self, StartError> {
        let router = router(repo, options)?;
        Ok(Application {
            server: Server::bind(listen)
                .await?
                .with_parse_error_body(parse_error_body),
            router,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.server.serve("api", self.router, shutdown).await
    }
}
