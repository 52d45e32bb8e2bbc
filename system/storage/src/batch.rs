//! What the checker hands the write repository in one go.

use metr_domain::{Check, Sample, TargetKind};

use crate::series::ScrapeSamples;

/// A target as configured, so storage can register it before its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetRef {
    pub name: String,
    pub kind: TargetKind,
    pub url: String,
}

/// Checks and samples written atomically: all of a batch is stored, or none of it.
///
/// Samples come in two forms: `scrapes`, the compact form the checker produces
/// (indexes into each target's series table), and `samples`, whole domain
/// samples for callers that have no series table (tests, imports). Storage
/// treats both the same way.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub targets: Vec<TargetRef>,
    pub checks: Vec<Check>,
    pub scrapes: Vec<ScrapeSamples>,
    pub samples: Vec<Sample>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.sample_count() == 0
    }

    /// Samples in the batch, in both forms.
    pub fn sample_count(&self) -> usize {
        self.samples.len() + self.scrapes.iter().map(|s| s.samples.len()).sum::<usize>()
    }

    /// Appends another batch, registering each target once.
    pub fn extend(&mut self, other: Batch) {
        for target in other.targets {
            if !self.targets.contains(&target) {
                self.targets.push(target);
            }
        }
        self.checks.extend(other.checks);
        self.scrapes.extend(other.scrapes);
        self.samples.extend(other.samples);
    }
}
