//! A scrape is a trace of its own, and the target's spans join it: the
//! request carries the scrape span's `traceparent`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use checker::checkable::Checkable;
use checker::scrape::PrometheusTarget;
use metr_service::trace_capture::opentelemetry::trace::{SpanKind, Status};
use metr_service::trace_capture::{Capture, attribute};
use metr_service::trace_context::trace_id;

/// A target that remembers the trace id of each `/metrics` request.
async fn target(seen: Arc<Mutex<Vec<Option<String>>>>) -> String {
    let app = Router::new()
        .route(
            "/metrics",
            get(move |headers: HeaderMap| async move {
                seen.lock().unwrap().push(trace_id(&headers));
                "# TYPE up gauge\nreq_total 7\nreq_other 3\n"
            }),
        )
        .route("/health", get(|| async { r#"{"status":"pass"}"# }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn prometheus_target(url: String) -> PrometheusTarget {
    support::prometheus_target("demo", url, Duration::from_secs(5))
}

#[tokio::test]
async fn a_scrape_is_a_root_span_whose_trace_the_target_sees() {
    let capture = Capture::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = target(seen.clone()).await;
    let outcome = prometheus_target(base.clone())
        .check(chrono::Utc::now())
        .await;
    assert!(outcome.collected);
    let spans = capture.spans();
    let scrape = spans
        .iter()
        .find(|s| s.name == "scrape")
        .unwrap_or_else(|| panic!("no scrape span in {spans:#?}"));
    assert_eq!(scrape.span_kind, SpanKind::Client);
    assert_eq!(
        scrape.parent_span_id,
        metr_service::trace_capture::opentelemetry::trace::SpanId::INVALID,
        "a root span"
    );
    let trace = scrape.span_context.trace_id().to_string();
    assert_eq!(*seen.lock().unwrap(), vec![Some(trace.clone())]);
    assert_eq!(attribute(scrape, "target").as_deref(), Some("demo"));
    assert_eq!(
        attribute(scrape, "url.full"),
        Some(format!("{base}/metrics"))
    );
    assert_eq!(
        attribute(scrape, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attribute(scrape, "result").as_deref(), Some("success"));
    // Two exposed samples and the three synthetic ones.
    assert_eq!(attribute(scrape, "samples").as_deref(), Some("5"));
    assert_eq!(scrape.status, Status::Unset);
    let parse = spans
        .iter()
        .find(|s| s.name == "parse")
        .expect("a parse span");
    assert_eq!(parse.parent_span_id, scrape.span_context.span_id());
    assert!(outcome.trace.is_some(), "a sampled scrape links its write");
}

#[tokio::test]
async fn a_failed_scrape_is_an_error_span_saying_why() {
    let capture = Capture::start();
    // Nothing listens there.
    let outcome = prometheus_target("http://127.0.0.1:1".into())
        .check(chrono::Utc::now())
        .await;
    assert!(!outcome.collected);
    let spans = capture.spans();
    let scrape = spans.iter().find(|s| s.name == "scrape").unwrap();
    assert_eq!(attribute(scrape, "result").as_deref(), Some("failure"));
    match &scrape.status {
        Status::Error { description } => {
            assert_eq!(Some(description.to_string()), outcome.check.error)
        }
        other => panic!("status {other:?}"),
    }
}
