//! gometr over HTTP on a free port.

use gometr::{Application, Control};

async fn spawn(control: Control) -> String {
    let app = Application::build("127.0.0.1:0".parse().unwrap(), control)
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until(std::future::pending()));
    base
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
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        seen.push(value(&text, "gometr_scrapes_total"));
    }
    assert_eq!(seen, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[tokio::test]
async fn metrics_carry_every_promised_kind_of_series() {
    let base = spawn(Control::default()).await;
    reqwest::get(format!("{base}/health")).await.unwrap();
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
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
    let client = reqwest::Client::new();
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
    let client = reqwest::Client::new();
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
    reqwest::get(format!("{base}/control")).await.unwrap();
    assert!(start.elapsed().as_millis() < 250);
    let start = std::time::Instant::now();
    reqwest::get(format!("{base}/health")).await.unwrap();
    assert!(start.elapsed().as_millis() >= 300);
}
