//! The two target kinds against a real HTTP server on a free port: gzip, the
//! all-or-nothing rule for malformed expositions, the body size limit,
//! timeouts, escaped labels and expected statuses.

use std::io::Write;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use checker::checkable::{Checkable, Outcome};
use checker::probe::HttpTarget;
use checker::scrape::{PrometheusTarget, SampleLimits};
use checker::target_series::TargetSeries;
use metr_domain::{CheckStatus, TargetKind};
use metr_storage::TargetRef;

const GOOD: &str = "# TYPE req counter\nreq{path=\"/a,b=c\",msg=\"say \\\"hi\\\"\"} 7\nreq{path=\"/x\",msg=\"\"} 3\n";

fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

async fn serve() -> String {
    let app = Router::new()
        .route("/ok/metrics", get(|| async { GOOD }))
        .route("/ok/health", get(|| async { r#"{"status":"pass"}"# }))
        .route(
            "/gz/metrics",
            get(|| async { ([(header::CONTENT_ENCODING, "gzip")], gzip(GOOD)).into_response() }),
        )
        .route("/gz/health", get(|| async { "{}" }))
        .route(
            "/bad/metrics",
            get(|| async { "good_line 1\nbad_line{ 2\n" }),
        )
        .route("/bad/health", get(|| async { r#"{"status":"warn"}"# }))
        .route(
            "/old/metrics",
            get(|| async { "old_metric 1 -300000000000000\n" }),
        )
        .route(
            "/nul/metrics",
            get(|| async { "nul_metric{v=\"a\0b\"} 1\n" }),
        )
        .route(
            "/dup/metrics",
            get(|| async { "d{a=\"1\"} 1\nd{a=\"1\"} 2\nd{a=\"2\"} 3\n" }),
        )
        .route(
            "/many/metrics",
            get(|| async {
                (0..101)
                    .map(|i| format!("m{{i=\"{i}\"}} 1\n"))
                    .collect::<String>()
            }),
        )
        .route("/big/metrics", get(|| async { "x".repeat(4096) }))
        .route("/big/health", get(|| async { r#"{"status":"pass"}"# }))
        .route("/fail/metrics", get(|| async { GOOD }))
        .route(
            "/fail/health",
            get(|| async { (StatusCode::OK, r#"{"status":"fail"}"#) }),
        )
        .route(
            "/slow/metrics",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(800)).await;
                GOOD
            }),
        )
        .route("/slow/health", get(|| async { "{}" }))
        .route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
        )
        .route(
            "/moved",
            get(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, "/elsewhere")],
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn scrape(base: &str, path: &str, max_body_bytes: usize, timeout: Duration) -> Outcome {
    prometheus_target(&format!("{base}{path}"), max_body_bytes, timeout)
        .check(chrono::Utc::now())
        .await
}

fn prometheus_target(url: &str, max_body_bytes: usize, timeout: Duration) -> PrometheusTarget {
    PrometheusTarget {
        target: TargetRef {
            name: "t".into(),
            kind: TargetKind::Prometheus,
            url: url.to_owned(),
        },
        labels: [("env".to_owned(), "test".to_owned())].into(),
        timeout,
        max_body_bytes,
        limits: SampleLimits {
            max_samples: 100,
            max_age: Duration::from_secs(3600),
            max_ahead: Duration::from_secs(600),
        },
        series: TargetSeries::new(1000, 100),
        memory: std::sync::Arc::new(checker::memory::MemoryWatch::new(None)),
        client: checker::fetch::client().unwrap(),
    }
}

fn value(outcome: &Outcome, name: &str) -> f64 {
    outcome
        .samples()
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .value
        .0
}

const LIMIT: usize = 1024 * 1024;
const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_good_scrape_stores_every_sample_with_escapes_and_target_labels() {
    let base = serve().await;
    let o = scrape(&base, "/ok", LIMIT, SECOND).await;
    assert_eq!(o.check.status, CheckStatus::Up);
    assert_eq!(o.check.error, None);
    let samples = o.samples();
    let req: Vec<_> = samples.iter().filter(|s| s.name == "req").collect();
    assert_eq!(req.len(), 2);
    assert_eq!(req[0].labels["path"], "/a,b=c");
    assert_eq!(req[0].labels["msg"], "say \"hi\"");
    assert_eq!(req[0].labels["env"], "test", "target labels are added");
    assert_eq!(value(&o, "up"), 1.0);
    assert_eq!(value(&o, "scrape_samples_scraped"), 2.0);
    assert!(value(&o, "scrape_duration_seconds") > 0.0);
}

#[tokio::test]
async fn gzip_responses_are_accepted() {
    let base = serve().await;
    let o = scrape(&base, "/gz", LIMIT, SECOND).await;
    assert_eq!(value(&o, "up"), 1.0, "{:?}", o.check.error);
    assert_eq!(value(&o, "scrape_samples_scraped"), 2.0);
}

#[tokio::test]
async fn a_malformed_exposition_fails_the_whole_scrape() {
    let base = serve().await;
    let o = scrape(&base, "/bad", LIMIT, SECOND).await;
    assert_eq!(value(&o, "up"), 0.0);
    assert!(
        o.samples().iter().all(|s| s.name != "good_line"),
        "no partial scrape"
    );
    assert_eq!(value(&o, "scrape_samples_scraped"), 0.0);
    let error = o.check.error.unwrap();
    assert!(error.contains("malformed exposition at line 2"), "{error}");
    assert_eq!(
        o.check.status,
        CheckStatus::Up,
        "health (warn) still answers: the check reports /health"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_failed_scrape_with_that_reason() {
    let base = serve().await;
    let o = scrape(&base, "/big", 1000, SECOND).await;
    assert_eq!(value(&o, "up"), 0.0);
    assert!(
        o.check
            .error
            .unwrap()
            .contains("exceeds the limit of 1000 bytes")
    );
}

#[tokio::test]
async fn a_health_status_of_fail_is_down_even_with_http_200() {
    let base = serve().await;
    let o = scrape(&base, "/fail", LIMIT, SECOND).await;
    assert_eq!(o.check.status, CheckStatus::Down);
    assert_eq!(o.check.http_status, Some(200));
    assert_eq!(value(&o, "up"), 1.0, "the scrape itself worked");
}

#[tokio::test]
async fn a_slow_scrape_times_out() {
    let base = serve().await;
    let o = scrape(&base, "/slow", LIMIT, Duration::from_millis(300)).await;
    assert_eq!(value(&o, "up"), 0.0);
    assert!(o.check.error.unwrap().contains("timed out"));
}

#[tokio::test]
async fn nothing_listening_is_down_with_a_connection_error() {
    let o = scrape("http://127.0.0.1:1", "", LIMIT, SECOND).await;
    assert_eq!(o.check.status, CheckStatus::Down);
    assert_eq!(o.check.http_status, None);
    assert!(o.check.error.unwrap().contains("connection"));
}

async fn probe(base: &str, path: &str, expected_status: Vec<u16>) -> Outcome {
    let target = HttpTarget {
        target: TargetRef {
            name: "p".into(),
            kind: TargetKind::Http,
            url: format!("{base}{path}"),
        },
        labels: Default::default(),
        timeout: SECOND,
        max_body_bytes: LIMIT,
        expected_status,
        series: TargetSeries::new(1000, 100),
        client: checker::fetch::client().unwrap(),
    };
    target.check(chrono::Utc::now()).await
}

#[tokio::test]
async fn http_probes_record_blackbox_series() {
    let base = serve().await;
    let o = probe(&base, "/ok/health", vec![]).await;
    assert_eq!(o.check.status, CheckStatus::Up);
    assert_eq!(value(&o, "probe_success"), 1.0);
    assert_eq!(value(&o, "probe_http_status_code"), 200.0);
    assert_eq!(value(&o, "probe_content_length"), 17.0);
    assert!(value(&o, "probe_duration_seconds") > 0.0);
}

#[tokio::test]
async fn http_probes_judge_the_status_by_the_expected_set() {
    let base = serve().await;
    let teapot = probe(&base, "/teapot", vec![]).await;
    assert_eq!(teapot.check.status, CheckStatus::Down);
    assert_eq!(
        teapot.check.error.as_deref(),
        Some("unexpected HTTP status 418")
    );
    assert_eq!(value(&teapot, "probe_success"), 0.0);
    let expected = probe(&base, "/teapot", vec![418]).await;
    assert_eq!(expected.check.status, CheckStatus::Up);
    let moved = probe(&base, "/moved", vec![]).await;
    assert_eq!(
        moved.check.status,
        CheckStatus::Up,
        "3xx is up by default and not followed"
    );
    assert_eq!(moved.check.http_status, Some(301));
}

/// Samples PostgreSQL cannot store, duplicates and too many samples reject the
/// scrape with a reason instead of reaching the writer.
#[tokio::test]
async fn unstorable_or_excessive_expositions_fail_the_scrape_with_a_reason() {
    let base = serve().await;
    for (path, reason) in [
        ("/old", "outside the accepted window"),
        ("/nul", "NUL byte"),
        ("/dup", "duplicate sample"),
        ("/many", "sample limit"),
    ] {
        let o = scrape(&base, path, LIMIT, SECOND).await;
        assert_eq!(value(&o, "up"), 0.0, "{path}");
        let error = o.check.error.clone().unwrap_or_default();
        assert!(error.contains(reason), "{path}: {error}");
        assert_eq!(o.samples().len(), 3, "{path}: only the synthetic series");
    }
}

#[tokio::test]
async fn a_second_scrape_reuses_the_series_of_the_first() {
    let base = serve().await;
    let target = prometheus_target(&format!("{base}/ok"), LIMIT, SECOND);
    let first = target.check(chrono::Utc::now()).await;
    let second = target.check(chrono::Utc::now()).await;
    assert!(std::sync::Arc::ptr_eq(
        &first.scrape.table,
        &second.scrape.table
    ));
    assert_eq!(
        first.scrape.table.len(),
        5,
        "2 scraped + 3 synthetic series"
    );
    let series = |o: &Outcome| {
        o.scrape
            .samples
            .iter()
            .map(|s| s.series)
            .collect::<Vec<_>>()
    };
    assert_eq!(series(&first), series(&second));
}
