//! The `prometheus` target kind: scrape `{url}/metrics`, check `{url}/health`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metr_domain::exposition;
use metr_domain::{Check, CheckStatus, Labels, Sample, SampleValue};
use metr_storage::TargetRef;

use crate::checkable::{Checkable, Outcome};
use crate::fetch::{self, FetchError, Fetched};

/// A Prometheus-style target.
pub struct PrometheusTarget {
    pub target: TargetRef,
    pub labels: Labels,
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub client: reqwest::Client,
}

impl PrometheusTarget {
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.target.url.trim_end_matches('/'))
    }

    fn sample(
        &self,
        name: &str,
        mut labels: Labels,
        value: f64,
        timestamp: DateTime<Utc>,
    ) -> Sample {
        for (k, v) in &self.labels {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Sample {
            target: self.target.name.clone(),
            name: name.to_owned(),
            labels,
            value: SampleValue(value),
            timestamp,
        }
    }

    /// Parses a scrape into samples, or says why the whole scrape is rejected.
    fn samples(
        &self,
        fetched: Result<Fetched, FetchError>,
        started: DateTime<Utc>,
    ) -> Result<Vec<Sample>, String> {
        let fetched = fetched.map_err(|e| format!("scrape: {e}"))?;
        if !(200..300).contains(&fetched.status) {
            return Err(format!("scrape: /metrics answered HTTP {}", fetched.status));
        }
        let text = std::str::from_utf8(&fetched.body)
            .map_err(|e| format!("scrape: body is not UTF-8: {e}"))?;
        let parsed =
            exposition::parse(text).map_err(|e| format!("scrape: malformed exposition at {e}"))?;
        Ok(parsed
            .into_iter()
            .map(|s| {
                let ts = s
                    .timestamp_ms
                    .and_then(DateTime::from_timestamp_millis)
                    .unwrap_or(started);
                self.sample(&s.name, s.labels, s.value, ts)
            })
            .collect())
    }
}

/// Whether a health response means up, and if not, why.
fn judge_health(
    fetched: &Result<Fetched, FetchError>,
) -> (CheckStatus, Option<u16>, Option<String>) {
    match fetched {
        Err(e) => (CheckStatus::Down, None, Some(format!("health: {e}"))),
        Ok(f) if !(200..300).contains(&f.status) => (
            CheckStatus::Down,
            Some(f.status),
            Some(format!("health: HTTP {}", f.status)),
        ),
        Ok(f) => {
            let status = serde_json::from_slice::<serde_json::Value>(&f.body)
                .ok()
                .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned));
            if status.as_deref() == Some("fail") {
                (
                    CheckStatus::Down,
                    Some(f.status),
                    Some("health: status is fail".into()),
                )
            } else {
                (CheckStatus::Up, Some(f.status), None)
            }
        }
    }
}

#[async_trait]
impl Checkable for PrometheusTarget {
    fn target(&self) -> &TargetRef {
        &self.target
    }

    async fn check(&self, started: DateTime<Utc>) -> Outcome {
        let clock = Instant::now();
        let metrics_url = self.endpoint("/metrics");
        let health_url = self.endpoint("/health");
        let (metrics, health) = tokio::join!(
            fetch::get(
                &self.client,
                &metrics_url,
                self.timeout,
                self.max_body_bytes
            ),
            fetch::get(&self.client, &health_url, self.timeout, self.max_body_bytes),
        );
        let duration = clock.elapsed().as_secs_f64();
        let latency_ms = match &health {
            Ok(f) => f.elapsed.as_secs_f64() * 1000.0,
            Err(_) => clock.elapsed().as_secs_f64() * 1000.0,
        };
        let (status, http_status, health_error) = judge_health(&health);
        let scraped = self.samples(metrics, started);
        let collected = scraped.is_ok();
        // The check reports /health; a failed scrape shows in `up` and is noted here too.
        let error = match (&health_error, &scraped) {
            (Some(h), Err(s)) => Some(format!("{h}; {s}")),
            (Some(h), Ok(_)) => Some(h.clone()),
            (None, Err(s)) => Some(s.clone()),
            (None, Ok(_)) => None,
        };
        let mut samples = scraped.unwrap_or_default();
        let scraped_count = samples.len() as f64;
        samples.push(self.sample(
            "up",
            Labels::new(),
            if collected { 1.0 } else { 0.0 },
            started,
        ));
        samples.push(self.sample("scrape_duration_seconds", Labels::new(), duration, started));
        samples.push(self.sample(
            "scrape_samples_scraped",
            Labels::new(),
            scraped_count,
            started,
        ));
        Outcome {
            check: Check {
                target: self.target.name.clone(),
                kind: self.target.kind,
                status,
                http_status,
                latency_ms,
                error,
                checked_at: started,
            },
            samples,
            collected,
            duration_seconds: duration,
        }
    }
}
