//! The `http` target kind: probe a URL as blackbox_exporter does.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metr_domain::{Check, CheckStatus, Labels};
use metr_service::trace_context::SpanLink;
use metr_storage::{ScrapeSamples, TargetRef};
use tracing::field::Empty;
use tracing::{Instrument, Span};

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
        let span = tracing::info_span!(
            parent: None,
            "probe",
            otel.name = "probe",
            otel.kind = "client",
            target = %self.target.name,
            url.full = %self.target.url,
            http.response.status_code = Empty,
            http.response.body.size = Empty,
            result = Empty,
            otel.status_description = Empty,
        );
        let clock = Instant::now();
        let fetched = fetch::get(
            &self.client,
            &self.target.url,
            self.timeout,
            self.max_body_bytes,
        )
        .instrument(span.clone())
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
        let trace = traced(&span, http_status, length, up, error.as_deref());
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
            trace,
        }
    }
}

/// Records what the probe saw on its span; the link to it if it is sampled.
fn traced(
    span: &Span,
    status: Option<u16>,
    length: f64,
    up: bool,
    error: Option<&str>,
) -> Option<SpanLink> {
    if span.is_disabled() {
        return None;
    }
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
    if length >= 0.0 {
        span.record("http.response.body.size", length as u64);
    }
    span.record("result", if up { "success" } else { "failure" });
    if let Some(error) = error {
        span.record("otel.status_description", error);
    }
    SpanLink::to(span)
}
