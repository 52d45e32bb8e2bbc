//! gometr's HTTP application: `/metrics`, `/health`, `/control`.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use metr_service::error::StartError;
use metr_service::health::{Health, HealthCheck, HealthStatus};
use metr_service::server::Server;

use crate::body::{self, BombCache};
use crate::control::{Control, ControlUpdate};
use crate::telemetry::{Synthetic, Telemetry};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone)]
struct AppState {
    control: Arc<RwLock<Control>>,
    telemetry: Arc<Telemetry>,
    bomb: Arc<BombCache>,
}

impl AppState {
    fn control(&self) -> Control {
        self.control.read().expect("control lock").clone()
    }
}

/// A bound, ready-to-run gometr.
pub struct Application {
    server: Server,
    router: Router,
}

impl Application {
    /// Binds `listen` (port 0 picks a free port) with the given start-up state.
    pub async fn build(listen: SocketAddr, control: Control) -> Result<Self, StartError> {
        let telemetry = Arc::new(Telemetry::new(VERSION)?);
        let bomb = Arc::new(BombCache::default());
        if control.gzip_bomb {
            // Ready before the first scrape, as after a PUT /control.
            bomb.get(control.gzip_bomb_bytes).await;
        }
        let state = AppState {
            control: Arc::new(RwLock::new(control)),
            telemetry: telemetry.clone(),
            bomb,
        };
        let router = Router::new()
            .route("/metrics", get(metrics))
            .route("/health", get(health))
            .route("/control", get(show_control).put(change_control))
            .layer(middleware::from_fn_with_state(
                telemetry.http.clone(),
                metr_service::http_metrics::HttpMetrics::track,
            ))
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .layer(middleware::from_fn(
                metr_service::trace_context::server_span,
            ))
            .with_state(state);
        Ok(Application {
            server: Server::bind(listen).await?,
            router,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` resolves.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.server.serve("gometr", self.router, shutdown).await
    }
}

async fn delay(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let control = state.control();
    delay(control.delay_ms).await;
    if control.metrics_status != 200 {
        // Still a scrape: the counter must account for every /metrics request.
        state.telemetry.scrapes.inc();
        let status = StatusCode::from_u16(control.metrics_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            format!("metrics_status is set to {}\n", control.metrics_status),
        )
            .into_response();
    }
    let (body, encoding) = if control.gzip_bomb {
        state.telemetry.scrapes.inc();
        (state.bomb.get(control.gzip_bomb_bytes).await, Some("gzip"))
    } else {
        (exposition(&state.telemetry, &control), None)
    };
    let mut response = if control.trickle_bytes_per_second > 0 {
        body::trickle(body, control.trickle_bytes_per_second).into_response()
    } else {
        Body::from(body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    if let Some(encoding) = encoding {
        // Sent whatever the request accepts: a hostile target does not negotiate.
        headers.insert(
            header::CONTENT_ENCODING,
            header::HeaderValue::from_static(encoding),
        );
    }
    response
}

/// The exposition of one scrape, with what `control` adds to it.
fn exposition(telemetry: &Telemetry, control: &Control) -> Bytes {
    let mut body = telemetry
        .render(&Synthetic {
            extra_series: control.extra_series,
            churn_series: control.churn_series,
            label_value_bytes: control.label_value_bytes,
            profile: control.series_profile,
            seed: control.seed,
        })
        .into_bytes();
    body.extend_from_slice(control.extra_text.as_bytes());
    if control.invalid_utf8 {
        body.extend_from_slice(body::INVALID_UTF8_LINE);
    }
    Bytes::from(body)
}

async fn health(State(state): State<AppState>) -> Health {
    let control = state.control();
    delay(control.delay_ms).await;
    let uptime = HealthCheck {
        component_type: "system".into(),
        status: HealthStatus::Pass,
        observed_value: Some(serde_json::json!(
            state.telemetry.start.elapsed().as_secs_f64()
        )),
        observed_unit: Some("s".into()),
        output: None,
    };
    let injected = HealthCheck {
        component_type: "component".into(),
        status: control.health,
        observed_value: None,
        observed_unit: None,
        output: (control.health != HealthStatus::Pass).then(|| "set through /control".into()),
    };
    Health {
        status: control.health,
        service_id: "gometr".into(),
        version: VERSION.into(),
        output: None,
        checks: [
            ("uptime".to_owned(), vec![uptime]),
            ("control:health".to_owned(), vec![injected]),
        ]
        .into(),
    }
}

async fn show_control(State(state): State<AppState>) -> Json<Control> {
    Json(state.control())
}

async fn change_control(
    State(state): State<AppState>,
    update: Result<Json<ControlUpdate>, JsonRejection>,
) -> Response {
    let update = match update {
        Ok(Json(update)) => update,
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": rejection.body_text() })),
            )
                .into_response();
        }
    };
    let changed = {
        let mut control = state.control.write().expect("control lock");
        control.apply(update).map(|()| control.clone())
    };
    match changed {
        Ok(control) => {
            tracing::info!(?control, "control changed");
            if control.gzip_bomb {
                // Built before answering (1.8 s for 100 MiB in a debug build),
                // so no scrape after the PUT times out while it is compressed.
                state.bomb.get(control.gzip_bomb_bytes).await;
            }
            Json(control).into_response()
        }
        Err(message) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": message })),
        )
            .into_response(),
    }
}
