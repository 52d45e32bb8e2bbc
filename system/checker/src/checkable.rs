//! A target the scheduler can check, whatever its kind.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metr_domain::{Check, Sample};
use metr_storage::TargetRef;

/// What one check of a target produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub check: Check,
    pub samples: Vec<Sample>,
    /// Whether the target's data could be collected (the `up` series for scrapes).
    pub collected: bool,
    pub duration_seconds: f64,
}

/// One implementation per target kind.
#[async_trait]
pub trait Checkable: Send + Sync {
    /// The target as it is registered in storage.
    fn target(&self) -> &TargetRef;

    /// Checks the target once; `started` is the time stamped on what it records.
    async fn check(&self, started: DateTime<Utc>) -> Outcome;
}
