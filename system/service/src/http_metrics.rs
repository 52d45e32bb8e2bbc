//! Request counts and latency by route and status, as an axum middleware.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// The HTTP metrics of one service, registered in its registry.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    /// Registers `{prefix}_http_requests_total` and `{prefix}_http_request_duration_seconds`.
    pub fn register(registry: &Registry, prefix: &str) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                format!("{prefix}_http_requests_total"),
                "HTTP requests by route and status code.",
            ),
            &["handler", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{prefix}_http_request_duration_seconds"),
                "HTTP request latency by route.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["handler"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics { requests, duration })
    }

    /// Middleware body: time the request and count it by matched route and code.
    pub async fn track(
        State(metrics): State<HttpMetrics>,
        request: Request,
        next: Next,
    ) -> Response {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "unmatched".to_owned());
        let start = Instant::now();
        let response = next.run(request).await;
        metrics
            .duration
            .with_label_values(&[&route])
            .observe(start.elapsed().as_secs_f64());
        metrics
            .requests
            .with_label_values(&[&route, response.status().as_str()])
            .inc();
        response
    }
}

/// Renders a registry in the text exposition format.
pub fn render(registry: &Registry) -> Response {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut body) {
        tracing::error!(error = %e, "encode metrics");
    }
    (
        [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
        body,
    )
        .into_response()
}
