//! gometr over HTTP on a free port.

use gometr::{Application, Control};

/// A client through the shared builder, which installs the TLS provider
/// reqwest needs before any client is built.
fn http() -> reqwest::Client {
    metr_service::http_client::builder().build().unwrap()
}

async fn spawn(control: Control) -> String {
    let app = Application::build("127.0.0.1:0".parse().unwrap(), control)
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    base
}

/// The body of gometr's `/metrics`.
async fn metrics_text(base: &str) -> String {
    http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn value(text: &str, name: &str) -> f64 {
    metr_domain::exposition::parse(text)
        .unwrap()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .value
}

#[tokio::test]
async fn the_scrape_counter_rises_by_exactly_one_per_scrape() {
    let base = spawn(Control::default()).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let text = metrics_text(&base).await;
        seen.push(value(&text, "gometr_scrapes_total"));
    }
    assert_eq!(seen, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[tokio::test]
async fn metrics_carry_every_promised_kind_of_series() {
    let base = spawn(Control::default()).await;
    http().get(format!("{base}/health")).send().await.unwrap();
    let response = http().get(format!("{base}/metrics")).send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let samples = metr_domain::exposition::parse(&text).unwrap();
    let has = |name: &str| samples.iter().any(|s| s.name == name);
    for name in [
        "gometr_http_requests_total",
        "gometr_http_request_duration_seconds_bucket",
        "gometr_http_request_duration_seconds_sum",
        "gometr_http_request_duration_seconds_count",
        "gometr_uptime_seconds",
        "gometr_info",
        "process_start_time_seconds",
        "process_resident_memory_bytes",
    ] {
        assert!(has(name), "missing {name} in\n{text}");
    }
    let health_hits = samples
        .iter()
        .find(|s| s.name == "gometr_http_requests_total" && s.labels["handler"] == "/health")
        .unwrap();
    assert_eq!(health_hits.labels["code"], "200");
    assert!(text.contains("# TYPE gometr_http_request_duration_seconds histogram"));
}

#[tokio::test]
async fn control_switches_health_and_metrics_status() {
    let base = spawn(Control::default()).await;
    let client = http();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["content-type"], "application/health+json");
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["serviceId"].as_str()),
        (Some("pass"), Some("gometr"))
    );

    let put = client
        .put(format!("{base}/control"))
        .json(&serde_json::json!({"health": "fail", "metrics_status": 500, "extra_series": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 500);

    client
        .put(format!("{base}/control"))
        .json(&serde_json::json!({"metrics_status": 200}))
        .send()
        .await
        .unwrap();
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        value(&text, "gometr_scrapes_total"),
        2.0,
        "the failed scrape counts too"
    );
    assert_eq!(text.matches("gometr_synthetic_series{").count(), 3);
}

#[tokio::test]
async fn a_bad_control_request_is_a_400_naming_the_field() {
    let base = spawn(Control::default()).await;
    let client = http();
    for (body, word) in [
        (serde_json::json!({"health": "sick"}), "health"),
        (serde_json::json!({"delay": 5}), "delay"),
        (serde_json::json!({"metrics_status": 9}), "metrics_status"),
    ] {
        let r = client
            .put(format!("{base}/control"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert!(r.text().await.unwrap().contains(word), "{body}");
    }
}

#[tokio::test]
async fn delay_slows_metrics_and_health_but_not_control() {
    let base = spawn(Control {
        delay_ms: 300,
        ..Default::default()
    })
    .await;
    let start = std::time::Instant::now();
    http().get(format!("{base}/control")).send().await.unwrap();
    assert!(start.elapsed().as_millis() < 250);
    let start = std::time::Instant::now();
    http().get(format!("{base}/health")).send().await.unwrap();
    assert!(start.elapsed().as_millis() >= 300);
}

async fn put_control(base: &str, body: serde_json::Value) {
    let r = http()
        .put(format!("{base}/control"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{body}: {}", r.text().await.unwrap());
}

/// A client that hands back bodies as sent, without inflating them.
fn raw_client() -> reqwest::Client {
    metr_service::http_client::builder()
        .no_gzip()
        .build()
        .unwrap()
}

#[tokio::test]
async fn hostile_modes_are_off_by_default() {
    let base = spawn(Control::default()).await;
    let response = raw_client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    let body = response.bytes().await.unwrap();
    let text = std::str::from_utf8(&body).expect("UTF-8 by default");
    let samples = metr_domain::exposition::parse(text).unwrap();
    assert!(
        samples
            .iter()
            .all(|s| !s.name.starts_with("gometr_churn") && !s.name.starts_with("gometr_invalid")),
        "{text}"
    );
}

#[tokio::test]
async fn a_gzip_bomb_is_small_inflates_past_its_size_and_is_built_once() {
    use std::io::Read;
    let base = spawn(Control::default()).await;
    let inflated = 8 * 1024 * 1024;
    put_control(
        &base,
        serde_json::json!({"gzip_bomb": true, "gzip_bomb_bytes": inflated}),
    )
    .await;
    let client = raw_client();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let response = client.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        bodies.push(response.bytes().await.unwrap());
    }
    assert!(bodies[0].len() < 16 * 1024, "{} bytes", bodies[0].len());
    assert_eq!(bodies[0], bodies[1], "the same cached body every scrape");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bodies[0][..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text.len(), inflated);
    assert!(
        metr_domain::exposition::parse(&text).unwrap().is_empty(),
        "only comments: a valid exposition that only a size bound refuses"
    );

    put_control(&base, serde_json::json!({"gzip_bomb": false})).await;
    let text = metrics_text(&base).await;
    assert_eq!(value(&text, "gometr_scrapes_total"), 3.0, "bombs count too");
}

#[tokio::test]
async fn trickle_streams_the_body_at_the_rate_asked() {
    let base = spawn(Control::default()).await;
    let rate = 4000;
    put_control(&base, serde_json::json!({"trickle_bytes_per_second": rate})).await;
    let start = std::time::Instant::now();
    let mut response = http().get(format!("{base}/metrics")).send().await.unwrap();
    let headers_after = start.elapsed();
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
        chunks += 1;
    }
    let took = start.elapsed();
    let expected = std::time::Duration::from_secs_f64(body.len() as f64 / rate as f64);
    assert!(
        body.len() > 1000,
        "a body long enough to measure: {}",
        body.len()
    );
    assert!(took >= expected, "{} bytes took {took:?}", body.len());
    assert!(
        headers_after < expected / 2,
        "headers after {headers_after:?}: streamed, not held back"
    );
    assert!(chunks > 1, "{chunks} chunks");
    let text = String::from_utf8(body).unwrap();
    metr_domain::exposition::parse(&text).expect("the same exposition, only slower");
}

#[tokio::test]
async fn invalid_utf8_puts_raw_bytes_in_a_label_value() {
    let base = spawn(Control::default()).await;
    put_control(&base, serde_json::json!({"invalid_utf8": true})).await;
    let body = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(std::str::from_utf8(&body).is_err());
    let needle = b"gometr_invalid_utf8{value=\"\xC3\x28\xFF\"} 1\n";
    assert!(body.windows(needle.len()).any(|w| w == needle));
}

#[tokio::test]
async fn label_value_bytes_pads_the_synthetic_and_churned_series() {
    let base = spawn(Control::default()).await;
    put_control(
        &base,
        serde_json::json!({"extra_series": 3, "churn_series": 2, "label_value_bytes": 5000}),
    )
    .await;
    let text = metrics_text(&base).await;
    let samples = metr_domain::exposition::parse(&text).unwrap();
    let padded: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "gometr_synthetic_series" || s.name == "gometr_churn_series")
        .collect();
    assert_eq!(padded.len(), 5);
    for s in padded {
        assert_eq!(s.labels["index"].len(), 5000, "{}", s.name);
    }
}

#[tokio::test]
async fn churn_series_are_new_every_scrape() {
    let base = spawn(Control::default()).await;
    put_control(&base, serde_json::json!({"churn_series": 4})).await;
    let mut scrapes = Vec::new();
    for _ in 0..3 {
        let text = metrics_text(&base).await;
        let sets: std::collections::BTreeSet<_> = metr_domain::exposition::parse(&text)
            .unwrap()
            .into_iter()
            .filter(|s| s.name == "gometr_churn_series")
            .map(|s| s.labels)
            .collect();
        assert_eq!(sets.len(), 4, "{text}");
        scrapes.push(sets);
    }
    for (i, a) in scrapes.iter().enumerate() {
        for b in &scrapes[i + 1..] {
            assert!(a.is_disjoint(b), "a label set came back: {a:?} {b:?}");
        }
    }
}

#[tokio::test]
async fn control_switches_the_series_profile_and_keeps_the_count_of_extra_samples() {
    let base = spawn(Control::default()).await;
    // gometr's own HTTP series multiply as requests arrive: they do not count.
    let count = |text: &str| {
        metr_domain::exposition::parse(text)
            .unwrap()
            .iter()
            .filter(|s| !s.name.starts_with("gometr_http_"))
            .count()
    };
    let without = count(&metrics_text(&base).await);
    put_control(&base, serde_json::json!({"extra_series": 100})).await;
    let constant = metrics_text(&base).await;
    put_control(
        &base,
        serde_json::json!({"series_profile": "realistic", "seed": 7}),
    )
    .await;
    let realistic = metrics_text(&base).await;
    assert_eq!(count(&constant) - without, 100);
    assert_eq!(count(&realistic) - without, 100);
    assert!(
        !realistic.contains("gometr_synthetic_series"),
        "{realistic}"
    );
    assert!(realistic.contains("# TYPE gometr_request_duration_seconds histogram"));
    assert!(realistic.contains("gometr_cpu_seconds_total{"));

    let shown: serde_json::Value = http()
        .get(format!("{base}/control"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (shown["series_profile"].as_str(), shown["seed"].as_u64()),
        (Some("realistic"), Some(7))
    );

    let response = http()
        .put(format!("{base}/control"))
        .json(&serde_json::json!({"series_profile": "random"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("series_profile") && error.contains("realistic"),
        "{error}"
    );
}
