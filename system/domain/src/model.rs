//! Checks, samples and series as the checker records them and the API serves them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::value::SampleValue;

/// Label set of a series, sorted by label name so equal sets compare equal.
pub type Labels = BTreeMap<String, String>;

/// How the checker polls a target.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// Scrape `{url}/metrics` and check `{url}/health`.
    Prometheus,
    /// Probe a URL, as blackbox_exporter does.
    Http,
}

impl TargetKind {
    /// The name used in configuration, storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Prometheus => "prometheus",
            TargetKind::Http => "http",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "prometheus" => Ok(TargetKind::Prometheus),
            "http" => Ok(TargetKind::Http),
            other => Err(format!(
                "unknown target kind {other:?} (expected prometheus or http)"
            )),
        }
    }
}

/// Outcome of one check.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Up,
    Down,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Up => "up",
            CheckStatus::Down => "down",
        }
    }
}

impl FromStr for CheckStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "up" => Ok(CheckStatus::Up),
            "down" => Ok(CheckStatus::Down),
            other => Err(format!("unknown status {other:?} (expected up or down)")),
        }
    }
}

/// One check of one target, as stored and as served by `/api/v1/checks`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub target: String,
    pub kind: TargetKind,
    pub status: CheckStatus,
    pub http_status: Option<u16>,
    pub latency_ms: f64,
    pub error: Option<String>,
    pub checked_at: DateTime<Utc>,
}

/// One sample of one series, as stored and as served by `/api/v1/metrics`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub target: String,
    pub name: String,
    pub labels: Labels,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::value::SampleValueSchema))]
    pub value: SampleValue,
    pub timestamp: DateTime<Utc>,
}

/// A distinct series: what `/api/v1/series` lists.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Series {
    pub target: String,
    pub name: String,
    pub labels: Labels,
}

/// A target the checker has seen, with its recent state: what `/api/v1/targets` lists.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSummary {
    pub name: String,
    pub kind: TargetKind,
    pub url: String,
    pub last_status: Option<CheckStatus>,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub last_latency_ms: Option<f64>,
    /// Share of `up` checks over the last hour, `None` when there were none.
    pub uptime_ratio: Option<f64>,
    /// When its last checks ran, newest first, at most
    /// [`TargetSummary::RECENT_CHECKS`]: the API infers the target's interval
    /// from them. Not part of the JSON.
    #[serde(skip)]
    pub recent_checks: Vec<DateTime<Utc>>,
}

impl TargetSummary {
    /// How many of a target's last checks a repository returns in `recent_checks`.
    pub const RECENT_CHECKS: usize = 6;
}
