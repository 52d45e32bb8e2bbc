//! The API over HTTP, against a real, freshly migrated PostgreSQL.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use metr_domain::{Check, CheckStatus, Sample, SampleValue, TargetKind};
use metr_storage::postgres::PoolOptions;
use metr_storage::{Batch, DatabaseUrl, PgRepository, TargetRef, WriteRepository, migrate};
use serde_json::Value;

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }
}

async fn spawn_with(repo: PgRepository) -> Api {
    let app = api::Application::build("127.0.0.1:0".parse().unwrap(), Arc::new(repo))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    Api {
        base,
        client: metr_service::http_client::builder().build().unwrap(),
    }
}

/// An API over a database holding 30 checks of gometr and a few samples.
async fn seeded() -> Api {
    let db = metr_testkit::fresh_database().await;
    let url = DatabaseUrl::new(db.url);
    migrate::run(&url).await.unwrap();
    let repo = PgRepository::connect(&url, &PoolOptions::default()).unwrap();
    let at = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap();
    let checks = (0..30)
        .map(|i| Check {
            target: "gometr".into(),
            kind: TargetKind::Prometheus,
            status: if i % 3 == 0 {
                CheckStatus::Down
            } else {
                CheckStatus::Up
            },
            http_status: Some(if i % 3 == 0 { 503 } else { 200 }),
            latency_ms: 2.5,
            error: (i % 3 == 0).then(|| "health: status is fail".into()),
            checked_at: at(i),
        })
        .collect();
    let sample = |name: &str, labels: &[(&str, &str)], value: f64, s: i64| Sample {
        target: "gometr".into(),
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        value: SampleValue(value),
        timestamp: at(s),
    };
    let samples = vec![
        sample("up", &[], 1.0, 1),
        sample("up", &[], 1.0, 2),
        sample("h_bucket", &[("le", "+Inf")], f64::INFINITY, 2),
        sample("h_bucket", &[("le", "0.5")], f64::NAN, 2),
    ];
    let targets = vec![TargetRef {
        name: "gometr".into(),
        kind: TargetKind::Prometheus,
        url: "http://gometr:8080".into(),
    }];
    repo.write(&Batch {
        scrapes: vec![],
        targets,
        checks,
        samples,
    })
    .await
    .unwrap();
    spawn_with(repo).await
}

#[tokio::test]
async fn checks_are_newest_first_in_the_contract_shape() {
    let api = seeded().await;
    let (status, body) = api.get("/api/v1/checks?target=gometr&limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    let first = &body["data"][0];
    assert_eq!(first["target"], "gometr");
    assert_eq!(first["kind"], "prometheus");
    assert_eq!(first["status"], "up");
    assert_eq!(first["http_status"], 200);
    assert_eq!(first["latency_ms"], 2.5);
    assert_eq!(first["error"], Value::Null);
    assert_eq!(first["checked_at"], "2023-11-14T22:13:49Z");
    assert!(body["next_cursor"].is_string());
}

#[tokio::test]
async fn walking_next_cursor_reaches_every_check_once() {
    let api = seeded().await;
    let mut path = "/api/v1/checks?limit=7".to_owned();
    let mut times = Vec::new();
    loop {
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 200);
        times.extend(
            body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["checked_at"].as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/checks?limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(times.len(), 30);
    let mut sorted = times.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(times, sorted, "newest first across pages");
}

#[tokio::test]
async fn status_filter_and_an_unknown_target() {
    let api = seeded().await;
    let (_, down) = api.get("/api/v1/checks?status=down&limit=1000").await;
    let down = down["data"].as_array().unwrap();
    assert_eq!(down.len(), 10);
    assert!(
        down.iter()
            .all(|c| c["status"] == "down" && c["error"].is_string())
    );
    let (status, none) = api.get("/api/v1/checks?target=nobody").await;
    assert_eq!(status, 200);
    assert_eq!(none["data"], serde_json::json!([]));
    assert_eq!(none["next_cursor"], Value::Null);
}

#[tokio::test]
async fn a_bad_parameter_is_a_400_naming_it() {
    let api = seeded().await;
    for (query, word) in [
        ("/api/v1/checks?status=maybe", "status"),
        ("/api/v1/checks?limit=0", "limit"),
        ("/api/v1/checks?limit=5000", "limit"),
        ("/api/v1/checks?from=noon", "from"),
        (
            "/api/v1/checks?from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z",
            "from",
        ),
        ("/api/v1/checks?cursor=garbage", "cursor"),
        ("/api/v1/metrics?label=oops", "label"),
        ("/api/v1/series?limit=-1", "limit"),
    ] {
        let (status, body) = api.get(query).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], "bad_data");
        assert!(
            body["error"].as_str().unwrap().contains(word),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn metrics_encode_special_values_and_filter_by_label() {
    let api = seeded().await;
    let (_, body) = api
        .get("/api/v1/metrics?target=gometr&name=h_bucket&label=le%3D%2BInf")
        .await;
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["value"], "+Inf");
    assert_eq!(data[0]["labels"]["le"], "+Inf");
    let (_, nan) = api
        .get("/api/v1/metrics?name=h_bucket&label=le%3D0.5")
        .await;
    assert_eq!(nan["data"][0]["value"], "NaN");
    let (_, up) = api.get("/api/v1/metrics?target=gometr&name=up").await;
    assert_eq!(up["data"][0]["value"], 1.0);
    assert_eq!(up["data"][0]["timestamp"], "2023-11-14T22:13:22Z");
}

#[tokio::test]
async fn series_and_targets_are_listed() {
    let api = seeded().await;
    let (_, series) = api.get("/api/v1/series?target=gometr").await;
    assert_eq!(series["data"].as_array().unwrap().len(), 3);
    let (_, targets) = api.get("/api/v1/targets").await;
    let t = &targets["data"][0];
    assert_eq!(t["name"], "gometr");
    assert_eq!(t["url"], "http://gometr:8080");
    assert_eq!(t["last_status"], "up");
    assert!(t.get("uptime_ratio").is_some());
    assert!(t.get("last_latency_ms").is_some());
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let api = seeded().await;
    let (status, doc) = api.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/checks",
        "/api/v1/metrics",
        "/api/v1/series",
        "/api/v1/targets",
        "/health",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let api = seeded().await;
    let (status, body) = api.get("/api/v2/nothing").await;
    assert_eq!(status, 404);
    assert_eq!(body["errorType"], "not_found");
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_that_reveals_nothing() {
    let url = DatabaseUrl::new("postgres://metr:hunter2@127.0.0.1:1/metr");
    let options = PoolOptions {
        timeout: std::time::Duration::from_millis(500),
        ..Default::default()
    };
    let api = spawn_with(PgRepository::connect(&url, &options).unwrap()).await;
    let (status, body) = api.get("/api/v1/checks").await;
    assert_eq!(status, 503);
    assert_eq!(body["errorType"], "unavailable");
    let (health_status, health) = api.get("/health").await;
    assert_eq!(health_status, 503);
    assert_eq!(health["status"], "fail");
    for text in [body.to_string(), health.to_string()] {
        assert!(
            !text.contains("hunter2") && !text.contains("127.0.0.1") && !text.contains("SELECT"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn the_api_counts_its_requests() {
    let api = seeded().await;
    api.get("/api/v1/checks?limit=1").await;
    api.get("/api/v1/checks?limit=0").await;
    let text = api
        .client
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = metr_domain::exposition::parse(&text).unwrap();
    let count = |code: &str| {
        samples
            .iter()
            .find(|s| {
                s.name == "api_http_requests_total"
                    && s.labels["handler"] == "/api/v1/checks"
                    && s.labels["code"] == code
            })
            .map(|s| s.value)
    };
    assert_eq!(count("200"), Some(1.0));
    assert_eq!(count("400"), Some(1.0));
}

#[tokio::test]
async fn nul_bytes_and_times_postgresql_cannot_hold_are_400s_naming_the_parameter() {
    let api = seeded().await;
    // Before PostgreSQL's earliest timestamp (4714 BC), yet a valid chrono time.
    let ancient = metr_storage::Cursor {
        ts_micros: -220_000_000_000_000_000,
        id: 1,
    }
    .encode();
    // Beyond what any clock can represent.
    let beyond = metr_storage::Cursor {
        ts_micros: i64::MIN,
        id: 1,
    }
    .encode();
    for (query, word) in [
        ("/api/v1/checks?target=gom%00etr".to_owned(), "target"),
        ("/api/v1/metrics?target=%00".to_owned(), "target"),
        ("/api/v1/metrics?name=up%00".to_owned(), "name"),
        ("/api/v1/metrics?label=le%3D%00".to_owned(), "label"),
        ("/api/v1/metrics?label=l%00e%3Dx".to_owned(), "label"),
        ("/api/v1/series?name=%00".to_owned(), "name"),
        ("/api/v1/checks?from=-300000000000".to_owned(), "from"),
        ("/api/v1/checks?to=-300000000000".to_owned(), "to"),
        ("/api/v1/metrics?from=-300000000000".to_owned(), "from"),
        (
            "/api/v1/checks?from=0000-01-01T00:00:00%2B01:00".to_owned(),
            "from",
        ),
        (format!("/api/v1/checks?cursor={ancient}"), "cursor"),
        (format!("/api/v1/metrics?cursor={ancient}"), "cursor"),
        (format!("/api/v1/checks?cursor={beyond}"), "cursor"),
    ] {
        let (status, body) = api.get(&query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["errorType"], "bad_data", "{query}");
        assert!(
            body["error"].as_str().unwrap().contains(word),
            "{query}: {body}"
        );
    }
}

/// Sends `request` as raw bytes and returns the status, the content type and the body.
async fn raw(api: &Api, request: &[u8]) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = api.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

#[tokio::test]
async fn errors_the_framework_makes_have_json_bodies_too() {
    let api = seeded().await;
    let long_uri = format!(
        "GET /api/v1/checks?target={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(70_000)
    );
    let many_headers = format!(
        "GET /api/v1/checks HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n",
        (0..200)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>()
    );
    let huge_header = format!(
        "GET /api/v1/checks HTTP/1.1\r\nHost: x\r\nx-big: {}\r\nConnection: close\r\n\r\n",
        "b".repeat(600_000)
    );
    let cases = [
        (
            "POST /api/v1/checks HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
            405,
        ),
        (
            "DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_owned(),
            405,
        ),
        (long_uri, 414),
        (many_headers, 431),
        (huge_header, 431),
        (
            "GET /api/v1/checks HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n".to_owned(),
            400,
        ),
    ];
    for (request, code) in cases {
        let (status, content_type, body) = raw(&api, request.as_bytes()).await;
        let line = request.lines().next().unwrap_or_default();
        let line: String = line.chars().take(60).collect();
        assert_eq!(status, code, "{line}: {body}");
        assert!(
            content_type.starts_with("application/json"),
            "{line}: content type {content_type:?}"
        );
        let json: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{line}: {e}: {body:?}"));
        assert_eq!(json["status"], "error", "{line}");
        assert_eq!(json["errorType"], "bad_data", "{line}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_paused_database_is_a_prompt_json_503_and_service_resumes_after() {
    let db = metr_testkit::fresh_database().await;
    let url = DatabaseUrl::new(db.url.clone());
    migrate::run(&url).await.unwrap();
    let port = metr_testkit::cluster().port;
    let proxy =
        metr_testkit::proxy::Proxy::start(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let proxied = DatabaseUrl::new(
        db.url
            .replace(&format!(":{port}/"), &format!(":{}/", proxy.addr.port())),
    );
    let api = spawn_with(PgRepository::connect(&proxied, &PoolOptions::default()).unwrap()).await;
    let (status, _) = api.get("/api/v1/checks").await;
    assert_eq!(
        status, 200,
        "the pool holds a live connection before the pause"
    );

    proxy.pause();
    let started = std::time::Instant::now();
    // More requests than the pool has connections: some wait on a pooled
    // connection whose query hangs, others on a connection that cannot open.
    let answers = futures::future::join_all((0..12).map(|_| api.get("/api/v1/checks"))).await;
    let took = started.elapsed();
    for (status, body) in &answers {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["errorType"], "unavailable", "{body}");
    }
    assert!(
        took < std::time::Duration::from_secs(8),
        "answers took {took:?}"
    );

    proxy.resume();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = api.get("/api/v1/checks").await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status} after resuming"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_openapi_document_states_what_the_server_enforces() {
    let api = seeded().await;
    let (_, doc) = api.get("/api/v1/openapi.json").await;
    let param = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has no parameters"))
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} lacks {name}"))["schema"]
            .clone()
    };
    let status = param("/api/v1/checks", "status");
    assert_eq!(
        status["enum"],
        serde_json::json!(["up", "down"]),
        "{status}"
    );
    for path in ["/api/v1/checks", "/api/v1/metrics", "/api/v1/series"] {
        let limit = param(path, "limit");
        assert_eq!(limit["minimum"], 1, "{path}: {limit}");
        assert_eq!(limit["maximum"], 1000, "{path}: {limit}");
        for name in ["target", "cursor"] {
            let text = param(path, name);
            assert_eq!(text["minLength"], 1, "{path} {name}: {text}");
            assert!(text["pattern"].is_string(), "{path} {name}: {text}");
        }
        for code in ["200", "400", "500", "503"] {
            assert!(
                doc["paths"][path]["get"]["responses"].get(code).is_some(),
                "{path} does not document {code}"
            );
        }
    }
    let label = param("/api/v1/metrics", "label");
    assert!(label["items"]["pattern"].is_string(), "{label}");
    let from = param("/api/v1/checks", "from");
    assert!(from.to_string().contains("date-time"), "{from}");
}

#[tokio::test]
async fn the_storage_endpoint_counts_the_samples_and_bytes_of_each_part() {
    let api = seeded().await;
    let (status, body) = api.get("/api/v1/storage").await;
    assert_eq!(status, 200);
    let head = &body["data"]["head"];
    assert_eq!(head["samples"], 4, "{body}");
    // Block rows, their indexes and TOAST: at least a page each.
    assert!(head["bytes"].as_u64().unwrap() >= 8192, "{body}");
    assert_eq!(
        body["data"]["compressed"],
        serde_json::json!({"samples": 0, "bytes": 0})
    );
}

#[tokio::test]
async fn the_storage_endpoint_says_which_time_range_is_held() {
    let api = seeded().await;
    let (status, body) = api.get("/api/v1/storage").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["oldest_sample_at"], "2023-11-14T22:13:21Z");
    assert_eq!(body["data"]["newest_sample_at"], "2023-11-14T22:13:22Z");
    let (status, body) = api.get("/api/v1/storage?x=1").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains('x'), "{body}");
}

/// An API over a fresh database holding these targets' checks, each target
/// checked at `now - ago` for every `ago` (seconds) given.
async fn checked(targets: &[(&str, &[i64])]) -> Api {
    let db = metr_testkit::fresh_database().await;
    let url = DatabaseUrl::new(db.url);
    migrate::run(&url).await.unwrap();
    let repo = PgRepository::connect(&url, &PoolOptions::default()).unwrap();
    let now = Utc::now();
    let checks = targets
        .iter()
        .flat_map(|(name, agos)| {
            agos.iter().map(move |ago| Check {
                target: (*name).into(),
                kind: TargetKind::Http,
                status: CheckStatus::Up,
                http_status: Some(200),
                latency_ms: 1.0,
                error: None,
                checked_at: now - chrono::Duration::seconds(*ago),
            })
        })
        .collect();
    let refs = targets
        .iter()
        .map(|(name, _)| TargetRef {
            name: (*name).into(),
            kind: TargetKind::Http,
            url: format!("http://{name}/"),
        })
        .collect();
    repo.write(&Batch {
        scrapes: vec![],
        targets: refs,
        checks,
        samples: vec![],
    })
    .await
    .unwrap();
    spawn_with(repo).await
}

fn target<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
}

#[tokio::test]
async fn a_target_whose_checks_stopped_is_stale_and_a_fresh_one_is_not() {
    // Both checked every 10 s; "stopped" last 10 minutes ago (60 intervals).
    let api = checked(&[
        ("fresh", &[2, 12, 22, 32, 42, 52, 62]),
        ("stopped", &[600, 610, 620, 630]),
        ("once", &[30]),
    ])
    .await;
    let (status, body) = api.get("/api/v1/targets").await;
    assert_eq!(status, 200);

    let fresh = target(&body, "fresh");
    assert_eq!(fresh["stale"], false, "{fresh}");
    assert_eq!(fresh["interval_seconds"], 10.0, "{fresh}");
    let age = fresh["last_check_age_seconds"].as_f64().unwrap();
    assert!((2.0..30.0).contains(&age), "{fresh}");

    let stopped = target(&body, "stopped");
    assert_eq!(stopped["stale"], true, "{stopped}");
    assert_eq!(stopped["interval_seconds"], 10.0, "{stopped}");
    assert!(
        stopped["last_check_age_seconds"].as_f64().unwrap() >= 600.0,
        "{stopped}"
    );
    // The stored state is unchanged: stale says monitoring stopped, not that
    // the target is down.
    assert_eq!(stopped["last_status"], "up");
    for field in [
        "kind",
        "url",
        "last_checked_at",
        "last_latency_ms",
        "uptime_ratio",
    ] {
        assert!(stopped.get(field).is_some(), "{field} missing: {stopped}");
    }
    assert!(stopped.get("recent_checks").is_none(), "{stopped}");

    // One check: the default interval (15 s), so 30 s is not yet 3 intervals.
    let once = target(&body, "once");
    assert_eq!(once["interval_seconds"], 15.0, "{once}");
    assert_eq!(once["stale"], false, "{once}");
}

#[tokio::test]
async fn health_warns_when_no_check_was_written_for_three_intervals() {
    // Checks every second, the last ten years ago.
    let api = seeded().await;
    let (status, body) = api.get("/health").await;
    assert_eq!(status, 200, "warn is still 200: {body}");
    assert_eq!(body["status"], "warn", "{body}");
    let recent = &body["checks"]["checks:recent"][0];
    assert_eq!(recent["status"], "warn", "{body}");
    assert!(
        recent["output"]
            .as_str()
            .unwrap()
            .contains("no check written"),
        "{body}"
    );
    assert!(recent["observedValue"].as_f64().unwrap() > 3600.0, "{body}");
    assert_eq!(body["checks"]["database:reachable"][0]["status"], "pass");
}

#[tokio::test]
async fn health_passes_while_one_target_is_still_checked_or_none_ever_was() {
    for api in [
        checked(&[("fresh", &[1, 11, 21]), ("stopped", &[600, 610, 620])]).await,
        checked(&[]).await,
    ] {
        let (status, body) = api.get("/health").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "pass", "{body}");
        assert_eq!(
            body["checks"]["checks:recent"][0]["status"], "pass",
            "{body}"
        );
    }
}

#[tokio::test]
async fn targets_takes_no_parameters_and_says_so() {
    let api = checked(&[]).await;
    let (status, body) = api.get("/api/v1/targets?x=1").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "unknown parameter \"x\"; this endpoint accepts no parameters"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_stale_targets() {
    let api = checked(&[]).await;
    let (_, doc) = api.get("/api/v1/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    let state = &schemas["TargetState"];
    let text = state.to_string();
    for field in ["stale", "interval_seconds", "last_check_age_seconds"] {
        assert!(text.contains(field), "{field} missing: {state}");
    }
    assert!(
        text.contains("#/components/schemas/TargetSummary"),
        "the stored fields, unchanged: {state}"
    );
    let summary = schemas["TargetSummary"].to_string();
    for field in ["last_status", "uptime_ratio"] {
        assert!(summary.contains(field), "{field} missing: {summary}");
    }
    assert!(!summary.contains("recent_checks"), "{summary}");
    let targets = doc["paths"]["/api/v1/targets"]["get"].to_string();
    assert!(targets.contains("TargetState"), "{targets}");
}
