//! The `prometheus` target kind: scrape `{url}/metrics`, check `{url}/health`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metr_domain::exposition::{ParseError, RawSample};
use metr_domain::format::Format;
use metr_domain::{Check, CheckStatus, Labels};
use metr_service::trace_context::SpanLink;
use metr_storage::{DuplicateSample, Recorder, ScrapeSamples, TargetRef};
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::checkable::{Checkable, Outcome};
use crate::fetch::{self, FetchError, Fetched};
use crate::memory::MemoryWatch;
use crate::target_series::TargetSeries;

/// The share of scrapes that start a sampled trace unless `OTEL_TRACES_SAMPLER`
/// says otherwise: 1 in 100, so that tracing costs little beside scraping.
pub const TRACED_SCRAPES: f64 = 0.01;

/// A Prometheus-style target.
pub struct PrometheusTarget {
    pub target: TargetRef,
    pub labels: Labels,
    pub timeout: Duration,
    pub max_body_bytes: usize,
    pub limits: SampleLimits,
    pub series: TargetSeries,
    /// Refuses a scrape that could take the checker past its memory limit.
    pub memory: Arc<MemoryWatch>,
    pub client: reqwest::Client,
}

/// What a scrape may hold before it is rejected whole.
#[derive(Debug, Clone, Copy)]
pub struct SampleLimits {
    /// Samples in one scrape.
    pub max_samples: usize,
    /// Oldest explicit timestamp accepted, as an age relative to the scrape.
    pub max_age: Duration,
    /// Furthest explicit timestamp accepted in the future.
    pub max_ahead: Duration,
}

/// Why a scrape was rejected whole.
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error("malformed exposition at {0}")]
    Parse(#[from] ParseError),
    #[error("malformed OpenMetrics exposition at {0}")]
    OpenMetrics(ParseError),
    #[error("{0}")]
    Duplicate(#[from] DuplicateSample),
    #[error("more than {0} samples (the sample limit)")]
    TooMany(usize),
    #[error(
        "line {line}: timestamp {ms} ms is outside the accepted window (from {max_age:?} ago to {max_ahead:?} ahead)"
    )]
    OutOfBounds {
        line: String,
        ms: i64,
        max_age: Duration,
        max_ahead: Duration,
    },
}

impl PrometheusTarget {
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.target.url.trim_end_matches('/'))
    }

    /// Records a scrape's samples, or says why the whole scrape is rejected.
    fn record(
        &self,
        recorder: &mut Recorder<'_>,
        fetched: Result<Fetched, FetchError>,
        started: DateTime<Utc>,
    ) -> Result<(), String> {
        let fetched = fetched.map_err(|e| format!("scrape: {e}"))?;
        if !(200..300).contains(&fetched.status) {
            return Err(format!("scrape: /metrics answered HTTP {}", fetched.status));
        }
        // Recording costs at most about the body's size again (series texts
        // and samples): refuse it now rather than let the kernel kill the
        // checker, and every target's monitoring with it.
        self.memory
            .admit(2 * fetched.body.len() as u64)
            .map_err(|e| format!("scrape: {e}"))?;
        let text = std::str::from_utf8(&fetched.body)
            .map_err(|e| format!("scrape: body is not UTF-8: {e}"))?;
        let now = started.timestamp_micros();
        let oldest = now - micros(self.limits.max_age);
        let newest = now + micros(self.limits.max_ahead);
        // The Content-Type picks the parser: strict for OpenMetrics, lenient
        // for Prometheus text and anything unlabelled, as Prometheus does.
        let format = Format::from_content_type(fetched.content_type.as_deref());
        let scanned = format.scan(text, |raw: RawSample<'_>| {
            if recorder.len() >= self.limits.max_samples {
                return Err(Rejected::TooMany(self.limits.max_samples));
            }
            let ts = match raw.timestamp_ms {
                None => now,
                Some(ms) => {
                    let ts = ms.saturating_mul(1000);
                    if !(oldest..=newest).contains(&ts) {
                        return Err(Rejected::OutOfBounds {
                            line: raw.series.chars().take(200).collect(),
                            ms,
                            max_age: self.limits.max_age,
                            max_ahead: self.limits.max_ahead,
                        });
                    }
                    ts
                }
            };
            recorder.push_raw(raw.series, raw.value, ts, || {
                let (name, mut labels) = raw.parse_series()?;
                for (k, v) in &self.labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Ok::<_, Rejected>((name, labels))
            })
        });
        scanned.map_err(|e| match (format, e) {
            (Format::OpenMetrics, Rejected::Parse(e)) => {
                format!("scrape: {}", Rejected::OpenMetrics(e))
            }
            (_, e) => format!("scrape: {e}"),
        })
    }

    /// Adds the series Prometheus adds to every scrape.
    fn synthetic(
        &self,
        recorder: &mut Recorder<'_>,
        collected: bool,
        duration: f64,
        scraped: usize,
        started: DateTime<Utc>,
    ) {
        let ts = started.timestamp_micros();
        for (name, value) in [
            ("up", if collected { 1.0 } else { 0.0 }),
            ("scrape_duration_seconds", duration),
            ("scrape_samples_scraped", scraped as f64),
        ] {
            // The exposition's own series of the same name wins, as in Prometheus.
            let _ = recorder.push(name, self.labels.clone(), value, ts);
        }
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
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

    fn series_usage(&self) -> Option<(usize, usize)> {
        Some(self.series.usage())
    }

    async fn check(&self, started: DateTime<Utc>) -> Outcome {
        let metrics_url = self.endpoint("/metrics");
        // A trace of its own per scrape: nothing around it is worth a parent.
        let span = tracing::info_span!(
            parent: None,
            "scrape",
            otel.name = "scrape",
            otel.kind = "client",
            target = %self.target.name,
            url.full = %metrics_url,
            http.response.status_code = Empty,
            http.response.body.size = Empty,
            samples = Empty,
            result = Empty,
            otel.status_description = Empty,
        );
        let mut outcome = self
            .scrape(started, metrics_url)
            .instrument(span.clone())
            .await;
        if !span.is_disabled() {
            span.record("samples", outcome.scrape.samples.len());
            span.record(
                "result",
                if outcome.collected {
                    "success"
                } else {
                    "failure"
                },
            );
            if let Some(error) = &outcome.check.error {
                span.record("otel.status_description", error.as_str());
            }
            outcome.trace = SpanLink::to(&span);
        }
        outcome
    }
}

impl PrometheusTarget {
    /// The scrape and the health check, within the scrape's span.
    async fn scrape(&self, started: DateTime<Utc>, metrics_url: String) -> Outcome {
        let clock = Instant::now();
        let health_url = self.endpoint("/health");
        let (metrics, health) = tokio::join!(
            fetch::get_exposition(
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
        if let Ok(fetched) = &metrics {
            let span = Span::current();
            span.record("http.response.status_code", fetched.status);
            span.record("http.response.body.size", fetched.body.len());
        }
        let table = self.series.current();
        let parse = tracing::info_span!("parse", otel.name = "parse", samples = Empty);
        let (scraped, samples) = parse.in_scope(|| {
            let mut recorder = table.record();
            match self.record(&mut recorder, metrics, started) {
                Ok(()) => {
                    let scraped = recorder.len();
                    self.synthetic(&mut recorder, true, duration, scraped, started);
                    (Ok(scraped), recorder.finish())
                }
                Err(reason) => {
                    // A rejected scrape stores none of its samples: start over
                    // with only the synthetic series.
                    drop(recorder);
                    let mut recorder = table.record();
                    self.synthetic(&mut recorder, false, duration, 0, started);
                    (Err(reason), recorder.finish())
                }
            }
        });
        parse.record("samples", samples.len());
        let collected = scraped.is_ok();
        // The check reports /health; a failed scrape shows in `up` and is noted here too.
        let error = match (&health_error, &scraped) {
            (Some(h), Err(s)) => Some(format!("{h}; {s}")),
            (Some(h), Ok(_)) => Some(h.clone()),
            (None, Err(s)) => Some(s.clone()),
            (None, Ok(_)) => None,
        };
        if let Err(reason) = &scraped {
            tracing::warn!(target = %self.target.name, %reason, "scrape rejected");
        }
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
            scrape: ScrapeSamples {
                target: self.target.name.clone(),
                table,
                samples,
            },
            collected,
            duration_seconds: duration,
            trace: None,
        }
    }
}
