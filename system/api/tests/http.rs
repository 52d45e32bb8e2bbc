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
        client: reqwest::Client::new(),
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
    let text = reqwest::get(format!("{}/metrics", api.base))
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
