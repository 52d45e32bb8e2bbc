//! The API's traces: W3C Trace Context in and out, and the spans of a
//! request down to its SQL statements, captured in memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use metr_service::trace_capture::opentelemetry::trace::{SpanKind, Status};
use metr_service::trace_capture::{Capture, SpanData, attribute};
use metr_service::trace_context::trace_id;
use metr_storage::postgres::PoolOptions;
use metr_storage::{DatabaseUrl, PgRepository, migrate};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

/// The base URL of an API over a fresh, migrated database.
async fn api() -> String {
    let db = metr_testkit::fresh_database().await;
    let url = DatabaseUrl::new(db.url);
    migrate::run(&url).await.unwrap();
    let repo = PgRepository::connect(&url, &PoolOptions::default()).unwrap();
    let app = api::Application::build("127.0.0.1:0".parse().unwrap(), Arc::new(repo))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    base
}

async fn get_checks(base: &str) -> reqwest::Response {
    metr_service::http_client::builder()
        .build()
        .unwrap()
        .get(format!("{base}/api/v1/checks?target=gometr&limit=5"))
        .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
        .send()
        .await
        .unwrap()
}

/// The captured spans once one satisfies `done`; spans end as the server
/// finishes, which may be just after the client has its answer.
async fn spans_until(capture: &Capture, done: impl Fn(&SpanData) -> bool) -> Vec<SpanData> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let spans = capture.spans();
        if spans.iter().any(&done) || Instant::now() > deadline {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} in {spans:#?}"))
}

#[tokio::test]
async fn a_traceparent_in_gives_a_traceparent_out_with_the_same_trace_id() {
    let _capture = Capture::start();
    let base = api().await;
    let response = get_checks(&base).await;
    assert_eq!(response.status(), 200);
    assert_eq!(trace_id(response.headers()).as_deref(), Some(TRACE));
}

#[tokio::test]
async fn a_request_is_a_server_span_over_its_repository_call_and_its_sql() {
    let capture = Capture::start();
    let base = api().await;
    get_checks(&base).await;
    let spans = spans_until(&capture, |s| s.span_kind == SpanKind::Server).await;
    let server = named(&spans, "GET /api/v1/checks");
    assert_eq!(server.span_kind, SpanKind::Server);
    assert_eq!(server.parent_span_id.to_string(), CALLER);
    assert_eq!(
        attribute(server, "http.route").as_deref(),
        Some("/api/v1/checks")
    );
    assert_eq!(
        attribute(server, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(server, "url.query").as_deref(),
        Some("target=gometr&limit=5")
    );
    let repository = named(&spans, "ReadRepository::checks");
    assert_eq!(repository.parent_span_id, server.span_context.span_id());
    let sql = named(&spans, "SELECT checks");
    assert_eq!(sql.span_kind, SpanKind::Client);
    assert_eq!(sql.parent_span_id, repository.span_context.span_id());
    assert_eq!(attribute(sql, "db.system").as_deref(), Some("postgresql"));
    assert_eq!(
        attribute(sql, "db.operation.name").as_deref(),
        Some("SELECT")
    );
    assert_eq!(
        attribute(sql, "db.response.returned_rows").as_deref(),
        Some("0")
    );
    for span in [server, repository, sql] {
        assert_eq!(span.span_context.trace_id().to_string(), TRACE);
        assert_eq!(span.status, Status::Unset, "{span:#?}");
    }
    // The statement's text and bound values are never recorded.
    for kv in &sql.attributes {
        assert!(!kv.value.to_string().contains("gometr"), "{kv:?}");
    }
}
