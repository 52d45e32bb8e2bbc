//! What a run found out: per scenario and per step, with failure details.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::scenario::diagnostic::Diagnostic;

/// Result of a step or a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// Why a step failed, complete enough to act on without a re-run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FailureDetail {
    /// The request as sent: `GET http://127.0.0.1:1234/api/v1/checks?target=gometr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The relevant part of the response body (or query result, or log excerpt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Each failed expectation: what was checked, expected vs actual.
    pub mismatches: Vec<String>,
    /// The same failures positioned in the scenario file: each failed
    /// expectation at its matcher's line, an error at its step's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    /// An error that prevented checking (connection refused, bad template, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts made, for retried steps.
    pub attempts: u32,
}

impl FailureDetail {
    /// The failure as text: the same words in the terminal, JUnit and JSON.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Some(r) = &self.request {
            out.push(format!("request: {r}"));
        }
        if let Some(s) = self.status {
            out.push(format!("response status: {s}"));
        }
        if self.diagnostics.is_empty() {
            if let Some(e) = &self.error {
                out.push(format!("error: {e}"));
            }
            for m in &self.mismatches {
                out.push(format!("✗ {m}"));
            }
        }
        for d in &self.diagnostics {
            out.push(d.to_string());
        }
        if let Some(b) = &self.body {
            out.push(format!("body: {b}"));
        }
        if self.attempts > 1 {
            out.push(format!("(last of {} attempts)", self.attempts));
        }
        out.join("\n")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: String,
    pub kind: String,
    pub outcome: Outcome,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDetail>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub file: PathBuf,
    pub name: String,
    pub tags: Vec<String>,
    pub outcome: Outcome,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    pub steps: Vec<StepReport>,
    /// Run id of the stack it ran on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Why the scenario failed outside any step (timeout, stack start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Last log lines of every service, kept when the scenario failed.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, String>,
}

impl ScenarioReport {
    pub fn passed_steps(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.outcome == Outcome::Passed)
            .count()
    }

    /// The failing step and its detail, as one block of text.
    pub fn failure_text(&self) -> String {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(e.clone());
        }
        for (i, step) in self.steps.iter().enumerate() {
            if let Some(f) = &step.failure {
                out.push(format!(
                    "step {} \"{}\" ({}) failed:",
                    i + 1,
                    step.name,
                    step.kind
                ));
                out.push(
                    f.render()
                        .lines()
                        .map(|l| format!("  {l}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
        }
        out.join("\n")
    }

    /// Service logs as one block.
    pub fn logs_text(&self) -> String {
        self.logs
            .iter()
            .map(|(service, text)| format!("----- {service} (last lines) -----\n{text}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Totals of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Totals {
    pub fn of(reports: &[ScenarioReport]) -> Totals {
        let count = |o| reports.iter().filter(|r| r.outcome == o).count();
        Totals {
            passed: count(Outcome::Passed),
            failed: count(Outcome::Failed),
            skipped: count(Outcome::Skipped),
        }
    }

    /// `N passed, N failed` (`, N skipped` when some were).
    pub fn line(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.skipped > 0 {
            line.push_str(&format!(", {} skipped", self.skipped));
        }
        line
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}
