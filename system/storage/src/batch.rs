//! What the checker hands the write repository in one go.

use metr_domain::{Check, Sample, TargetKind};

/// A target as configured, so storage can register it before its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetRef {
    pub name: String,
    pub kind: TargetKind,
    pub url: String,
}

/// Checks and samples written atomically: all of a batch is stored, or none of it.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub targets: Vec<TargetRef>,
    pub checks: Vec<Check>,
    pub samples: Vec<Sample>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.samples.is_empty()
    }

    /// Appends another batch, registering each target once.
    pub fn extend(&mut self, other: Batch) {
        for target in other.targets {
            if !self.targets.contains(&target) {
                self.targets.push(target);
            }
        }
        self.checks.extend(other.checks);
        self.samples.extend(other.samples);
    }
}
