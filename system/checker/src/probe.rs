//! The `http` target kind: probe a URL as blackbox_exporter does.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metr_domain::{Check, CheckStatus, Labels};
use metr_storage::{ScrapeSamples, TargetRef};

use crate::checkable::{Checkable, Outcome};
use crate::fetch::{self, FetchError};
use crate::target_series::TargetSeries;

/// An HTTP endpoint probed with GET.
pub struct HttpTarget {
    pub target: TargetRef,
    pub labels: Labels,
    pub timeout: Duration,
    pub max_body_bytes: usize,
    /// Statuses that count as up; empty means any 2xx or 3xx.
    pub expected_status: Vec<u16>,
    pub series: TargetSeries,
    pub client: reqwest::Client,
}

impl HttpTarget {
    fn expected(&self, status: u16) -> bool {
        if self.expected_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expected_status.contains(&status)
        }
    }
}

#[async_trait]
impl Checkable for HttpTarget {
    fn target(&self) -> &TargetRef {
        &self.target
    }

    fn series_usage(&self) -> Option<(usize, usize)> {
        Some(self.series.usage())
    }

    async fn check(&self, started: DateTime<Utc>) -> Outcome {
        let clock = Instant::now();
        let fetched = fetch::get(
            &self.client,
            &self.target.url,
            self.timeout,
            self.max_body_bytes,
        )
        .await;
        let duration = clock.elapsed().as_secs_f64();
        let (status, http_status, length, error) = match &fetched {
            Ok(f) if self.expected(f.status) => {
                (CheckStatus::Up, Some(f.status), f.body.len() as f64, None)
            }
            Ok(f) => (
                CheckStatus::Down,
                Some(f.status),
                f.body.len() as f64,
                Some(format!("unexpected HTTP status {}", f.status)),
            ),
            Err(FetchError::TooLarge { status, .. }) => {
                let e = fetched.as_ref().err().map(|e| e.to_string());
                (CheckStatus::Down, Some(*status), -1.0, e)
            }
            Err(e) => (CheckStatus::Down, None, -1.0, Some(e.to_string())),
        };
        let up = status == CheckStatus::Up;
        let table = self.series.current();
        let samples = {
            let mut recorder = table.record();
            let ts = started.timestamp_micros();
            for (name, value) in [
                ("probe_success", if up { 1.0 } else { 0.0 }),
                ("probe_duration_seconds", duration),
                ("probe_http_status_code", http_status.map_or(0.0, f64::from)),
                ("probe_content_length", length),
            ] {
                // Four distinct names: a duplicate cannot happen.
                let _ = recorder.push(name, self.labels.clone(), value, ts);
            }
            recorder.finish()
        };
        Outcome {
            check: Check {
                target: self.target.name.clone(),
                kind: self.target.kind,
                status,
                http_status,
                latency_ms: duration * 1000.0,
                error,
                checked_at: started,
            },
            scrape: ScrapeSamples {
                target: self.target.name.clone(),
                table,
                samples,
            },
            collected: up,
            duration_seconds: duration,
        }
    }
}
