//! A target the scheduler can check, whatever its kind.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metr_domain::{Check, Sample, SampleValue};
use metr_service::trace_context::SpanLink;
use metr_storage::{ScrapeSamples, TargetRef};

/// What one check of a target produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub check: Check,
    /// The samples, synthetic series included.
    pub scrape: ScrapeSamples,
    /// Whether the target's data could be collected (the `up` series for scrapes).
    pub collected: bool,
    pub duration_seconds: f64,
    /// The check's span, when its trace is sampled: the write of the batch
    /// that carries its samples joins that trace.
    pub trace: Option<SpanLink>,
}

impl Outcome {
    /// The samples as whole domain samples. Allocates for each: for tests and
    /// diagnostics, not the write path.
    pub fn samples(&self) -> Vec<Sample> {
        self.scrape
            .samples
            .iter()
            .filter_map(|s| {
                let entry = self.scrape.table.entry(s.series)?;
                Some(Sample {
                    target: self.scrape.target.clone(),
                    name: entry.name,
                    labels: entry.labels,
                    value: SampleValue(s.value),
                    timestamp: DateTime::from_timestamp_micros(s.ts_micros)?,
                })
            })
            .collect()
    }
}

/// One implementation per target kind.
#[async_trait]
pub trait Checkable: Send + Sync {
    /// The target as it is registered in storage.
    fn target(&self) -> &TargetRef;

    /// Checks the target once; `started` is the time stamped on what it records.
    async fn check(&self, started: DateTime<Utc>) -> Outcome;

    /// Series in the target's series table and the bytes they hold, if it has one.
    fn series_usage(&self) -> Option<(usize, usize)> {
        None
    }
}
