//! The operator's own `/health` and `/metrics`.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// Counters of the reconciler, exported on `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
}

impl Metrics {
    /// A fresh registry with the operator's counters.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "metr_operator_reconciles_total",
                "Reconciles of Metr resources, by outcome.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        Ok(Metrics {
            registry,
            reconciles,
        })
    }

    /// Counts one reconcile with `outcome` (`applied`, `invalid`, `error`, ...).
    pub fn reconciled(&self, outcome: &str) {
        self.reconciles.with_label_values(&[outcome]).inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding our own counters into a Vec does not fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

/// The router of `/health` and `/metrics`.
pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(exposition))
        .with_state(metrics)
}

async fn exposition(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}

/// Serves [`router`] on `listen` until the process ends.
pub async fn serve(listen: SocketAddr, metrics: Metrics) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, router(metrics)).await
}
