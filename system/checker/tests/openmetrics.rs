//! Content negotiation against a real HTTP server on a free port: the checker
//! asks for OpenMetrics as Prometheus does, parses what the Content-Type says
//! came (strictly for OpenMetrics, leniently for text), and a strict failure
//! is a failed scrape that names the line and the reason.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use checker::checkable::{Checkable, Outcome};
use metr_domain::CheckStatus;
use metr_domain::format::SCRAPE_ACCEPT;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Valid OpenMetrics, with an exemplar and a `_created` series.
const GOOD: &str = "# TYPE req counter\n\
req_total{path=\"/a,b\"} 7 # {trace_id=\"abc\"} 1\n\
req_created{path=\"/a,b\"} 1700000000.5\n\
# EOF\n";

/// Valid Prometheus text, invalid OpenMetrics (no `# EOF`, a free comment).
const TEXT_ONLY: &str = "# a free comment\nplain 1\n";

/// Serves `body` with `content_type` at /metrics, recording the Accept header.
async fn serve(
    content_type: &'static str,
    body: &'static str,
) -> (String, Arc<Mutex<Option<String>>>) {
    let accept = Arc::new(Mutex::new(None));
    let seen = accept.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move |headers: HeaderMap| async move {
                let value = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
                *seen.lock().unwrap() = value.map(str::to_owned);
                ([(header::CONTENT_TYPE, content_type)], body)
            }),
        )
        .route("/health", get(|| async { r#"{"status":"pass"}"# }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, accept)
}

async fn scrape(base: &str) -> Outcome {
    let target = support::prometheus_target("t", base.to_owned(), Duration::from_secs(2));
    target.check(chrono::Utc::now()).await
}

fn up(outcome: &Outcome) -> f64 {
    let samples = outcome.samples();
    samples
        .iter()
        .find(|s| s.name == "up")
        .expect("an up sample")
        .value
        .0
}

#[tokio::test]
async fn the_scrape_asks_for_openmetrics_first_as_prometheus_does() {
    let (base, accept) = serve(OPENMETRICS, GOOD).await;
    scrape(&base).await;
    assert_eq!(accept.lock().unwrap().as_deref(), Some(SCRAPE_ACCEPT));
    assert!(SCRAPE_ACCEPT.starts_with("application/openmetrics-text;version=1.0.0,"));
}

#[tokio::test]
async fn openmetrics_is_stored_without_its_exemplar_and_with_its_created_series() {
    let (base, _) = serve(OPENMETRICS, GOOD).await;
    let outcome = scrape(&base).await;
    assert_eq!(outcome.check.error, None);
    assert_eq!(up(&outcome), 1.0);
    let samples = outcome.samples();
    let total = samples
        .iter()
        .find(|s| s.name == "req_total")
        .expect("req_total");
    assert_eq!(total.value.0, 7.0);
    assert_eq!(
        total.labels.len(),
        1,
        "the exemplar's labels stay out: {:?}",
        total.labels
    );
    assert_eq!(total.labels["path"], "/a,b");
    let created = samples
        .iter()
        .find(|s| s.name == "req_created")
        .expect("req_created");
    assert_eq!(created.value.0, 1_700_000_000.5);
}

#[tokio::test]
async fn text_served_as_openmetrics_is_a_failed_scrape_naming_line_and_reason() {
    let (base, _) = serve(OPENMETRICS, TEXT_ONLY).await;
    let outcome = scrape(&base).await;
    assert_eq!(up(&outcome), 0.0);
    assert!(
        outcome.samples().iter().all(|s| s.name != "plain"),
        "nothing of it is stored"
    );
    let error = outcome.check.error.expect("the reason");
    assert!(
        error.contains("malformed OpenMetrics exposition at line 1, column 3"),
        "{error}"
    );
    assert!(error.contains("unknown comment"), "{error}");
    assert_eq!(
        outcome.check.status,
        CheckStatus::Up,
        "/health still answers"
    );
}

#[tokio::test]
async fn the_same_text_served_as_text_plain_is_parsed_leniently() {
    let (base, _) = serve(TEXT, TEXT_ONLY).await;
    let outcome = scrape(&base).await;
    assert_eq!(outcome.check.error, None);
    let samples = outcome.samples();
    assert!(
        samples
            .iter()
            .any(|s| s.name == "plain" && s.value.0 == 1.0)
    );
}

#[tokio::test]
async fn a_histogram_that_breaks_a_rule_across_lines_stores_nothing() {
    const BAD: &str = "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_count 4\nh_sum 1\n# EOF\n";
    let (base, _) = serve(OPENMETRICS, BAD).await;
    let outcome = scrape(&base).await;
    assert_eq!(up(&outcome), 0.0);
    assert!(outcome.samples().iter().all(|s| s.name != "h_bucket"));
    let error = outcome.check.error.expect("the reason");
    assert!(
        error.contains("line 4") && error.contains("+Inf bucket"),
        "{error}"
    );
}
