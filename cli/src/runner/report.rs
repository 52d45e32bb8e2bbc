//! What a run found out: per scenario and per step, with failure details.
//! Each type is written as the JSON report and read back from it (`report
//! merge`): a field it may leave out is read as its default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::runner::watch::Death;
use crate::scenario::diagnostic::Diagnostic;

/// Result of a step or a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

/// Why a step failed, complete enough to act on without a re-run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailureDetail {
    /// The request as sent: `GET http://127.0.0.1:1234/api/v1/checks?target=gometr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// An http step's request as a `curl` command line to paste in a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The relevant part of the response body (or query result, or log excerpt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Each failed expectation: what was checked, expected vs actual.
    pub mismatches: Vec<String>,
    /// The same failures positioned in the scenario file: each failed
    /// expectation at its matcher's line, an error at its step's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
    /// An error that prevented checking (connection refused, bad template, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Attempts the step made: polls under its `retry:` (1 without one).
    pub attempts: u32,
}

impl FailureDetail {
    /// The failure as text: the same words in the terminal, JUnit and JSON.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Some(r) = &self.request {
            out.push(format!("request: {r}"));
        }
        if let Some(c) = &self.curl {
            out.push(format!("as curl: {c}"));
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub name: String,
    pub kind: String,
    pub outcome: Outcome,
    #[serde(serialize_with = "millis", deserialize_with = "from_millis")]
    pub duration: Duration,
    /// Where the step is written in its file (from 1), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDetail>,
}

/// A failed run of a scenario that was run again (`--retries`). The type and
/// its `attempt` key keep their first names (JSON readers rely on the key);
/// the reports call it a run: the first run, then retry 1, retry 2, ….
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Which run it was, from 1: 1 the first run, 2 retry 1, ….
    pub attempt: u32,
    pub outcome: Outcome,
    #[serde(serialize_with = "millis", deserialize_with = "from_millis")]
    pub duration: Duration,
    /// Why it failed, as [`ScenarioReport::failure_text`] says it.
    pub failure: String,
}

impl Attempt {
    /// The run a report describes.
    pub fn of(report: &ScenarioReport) -> Attempt {
        Attempt {
            attempt: report.attempts,
            outcome: report.outcome,
            duration: report.duration,
            failure: report.failure_text(),
        }
    }
}

/// The name of a scenario's run `number` (from 1): `first run`, then
/// `retry 1`, `retry 2`, …: "attempt" is kept for a step's polls under `retry:`.
pub fn run_name(number: u32) -> String {
    match number {
        0 | 1 => "first run".into(),
        n => format!("retry {}", n - 1),
    }
}

/// `1 retry`, `2 retries`.
pub fn retries(count: u32) -> String {
    if count == 1 {
        "1 retry".into()
    } else {
        format!("{count} retries")
    }
}

/// A scenario's last run, with the failed runs before it (`--retries`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub file: PathBuf,
    pub name: String,
    pub tags: Vec<String>,
    /// Where the scenario starts in its file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    pub outcome: Outcome,
    #[serde(serialize_with = "millis", deserialize_with = "from_millis")]
    pub duration: Duration,
    pub steps: Vec<StepReport>,
    /// Run id of the stack it ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// Why it ran on a stack of its own; absent when it shared its
    /// environment's stack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated: Option<String>,
    /// It failed on a shared stack: the scenarios that ran on that stack at
    /// the same time (`NAME (FILE)`), any of which may have changed what it read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<String>,
    /// Why the scenario failed outside any step (stack start, a service
    /// that died or restarted unasked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The services that died or restarted without a step asking for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_deaths: Vec<Death>,
    /// Last log lines of every service, kept when the scenario failed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, String>,
    /// Runs made: the first run plus its retries (`--retries`); 0 when it
    /// never ran. The JSON report adds `retries`, this less one.
    pub attempts: u32,
    /// The failed runs before the last one (`--retries`), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_attempts: Vec<Attempt>,
}

impl ScenarioReport {
    /// Passed after failing: on a retry.
    pub fn is_flaky(&self) -> bool {
        self.outcome == Outcome::Passed && !self.earlier_attempts.is_empty()
    }

    /// The failed steps with their numbers (from 1).
    pub fn failed_steps(&self) -> impl Iterator<Item = (usize, &StepReport)> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.failure.is_some())
            .map(|(i, s)| (i + 1, s))
    }

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
        for (number, step) in self.failed_steps() {
            // `file:line:column`, so the headline (JUnit's message) links to the line.
            let file = self.file.display();
            let at = match (step.line, step.column) {
                (Some(line), Some(column)) => format!(" at {file}:{line}:{column}"),
                (Some(line), None) => format!(" at {file}:{line}"),
                _ => String::new(),
            };
            out.push(format!(
                "step {number} \"{}\" ({}){at} failed:",
                step.name, step.kind
            ));
            let detail = step
                .failure
                .as_ref()
                .map(|f| f.render())
                .unwrap_or_default();
            out.push(
                detail
                    .lines()
                    .map(|l| format!("  {l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        if !self.neighbours.is_empty() {
            out.push(self.neighbours_text());
        }
        out.join("\n")
    }

    /// Who else was on the shared stack when this scenario failed there.
    pub fn neighbours_text(&self) -> String {
        let stack = self.stack.as_deref().unwrap_or("?");
        let mut text = format!(
            "it ran on shared stack {stack} beside {} other scenario(s), any of which may have changed what it read:",
            self.neighbours.len()
        );
        for n in &self.neighbours {
            text.push_str(&format!("\n  - {n}"));
        }
        text.push_str("\n  (one that changes the stack needs one of its own: drop its isolated: false, or set isolated: true)");
        text
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

/// Totals of a run; each scenario counts once: a flaky one is not also passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    /// Passed on a retry (`--retries`) after failing.
    pub flaky: usize,
    pub skipped: usize,
}

impl Totals {
    pub fn of(reports: &[ScenarioReport]) -> Totals {
        let count = |o| reports.iter().filter(|r| r.outcome == o).count();
        let flaky = reports.iter().filter(|r| r.is_flaky()).count();
        Totals {
            passed: count(Outcome::Passed) - flaky,
            failed: count(Outcome::Failed),
            flaky,
            skipped: count(Outcome::Skipped),
        }
    }

    /// `N passed, N failed` (then `, N flaky` and `, N skipped` when some were).
    pub fn line(&self) -> String {
        let mut line = format!("{} passed, {} failed", self.passed, self.failed);
        if self.flaky > 0 {
            line.push_str(&format!(", {} flaky", self.flaky));
        }
        if self.skipped > 0 {
            line.push_str(&format!(", {} skipped", self.skipped));
        }
        line
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn from_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report of one scenario with one step of `outcome`.
    pub(crate) fn report(outcome: Outcome) -> ScenarioReport {
        ScenarioReport {
            file: "scenarios/x.yaml".into(),
            name: "x".into(),
            tags: vec![],
            line: None,
            outcome,
            duration: Duration::from_millis(10),
            steps: vec![StepReport {
                name: "s".into(),
                kind: "http".into(),
                outcome,
                duration: Duration::ZERO,
                line: Some(3),
                column: Some(5),
                failure: (outcome == Outcome::Failed).then(|| FailureDetail {
                    mismatches: vec!["status: expected 200, actual 503".into()],
                    attempts: 1,
                    ..Default::default()
                }),
            }],
            stack: None,
            error: None,
            isolated: None,
            neighbours: vec![],
            service_deaths: vec![],
            logs: Default::default(),
            attempts: 1,
            earlier_attempts: vec![],
        }
    }

    /// The failed run numbered `run` (1 the first run).
    pub(crate) fn failed_attempt(run: u32) -> Attempt {
        let mut failed = report(Outcome::Failed);
        failed.attempts = run;
        Attempt::of(&failed)
    }

    #[test]
    fn a_flaky_scenario_counts_as_flaky_and_not_as_passed() {
        let mut flaky = report(Outcome::Passed);
        flaky.earlier_attempts = vec![failed_attempt(1)];
        let reports = [
            report(Outcome::Passed),
            flaky,
            report(Outcome::Failed),
            report(Outcome::Skipped),
        ];
        assert_eq!(
            Totals::of(&reports),
            Totals {
                passed: 1,
                failed: 1,
                flaky: 1,
                skipped: 1
            }
        );
    }

    #[test]
    fn a_failed_run_keeps_its_number_and_failure_text_with_the_steps_line() {
        let attempt = failed_attempt(2);
        assert_eq!(attempt.attempt, 2);
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(
            attempt.failure,
            "step 1 \"s\" (http) at scenarios/x.yaml:3:5 failed:\n  ✗ status: expected 200, actual 503"
        );
    }

    #[test]
    fn only_a_pass_after_failed_runs_is_flaky() {
        let mut failed_again = report(Outcome::Failed);
        failed_again.earlier_attempts = vec![failed_attempt(1)];
        assert!(!failed_again.is_flaky());
        assert!(!report(Outcome::Passed).is_flaky());
    }

    #[test]
    fn a_scenario_has_runs_and_retries_while_a_step_has_attempts() {
        assert_eq!(run_name(1), "first run");
        assert_eq!(run_name(3), "retry 2");
        assert_eq!(retries(1), "1 retry");
        assert_eq!(retries(2), "2 retries");
        let polled = FailureDetail {
            mismatches: vec!["status: expected 200, actual 503".into()],
            attempts: 22,
            ..Default::default()
        };
        assert!(polled.render().ends_with("(last of 22 attempts)"));
    }

    #[test]
    fn a_failed_request_is_shown_as_sent_and_as_curl_under_it() {
        let failed = FailureDetail {
            request: Some("GET http://127.0.0.1:1/x?a=1".into()),
            curl: Some("curl 'http://127.0.0.1:1/x?a=1'".into()),
            status: Some(503),
            mismatches: vec!["status: expected 200, actual 503".into()],
            attempts: 1,
            ..Default::default()
        };
        assert_eq!(
            failed.render(),
            "request: GET http://127.0.0.1:1/x?a=1\n\
             as curl: curl 'http://127.0.0.1:1/x?a=1'\n\
             response status: 503\n\
             ✗ status: expected 200, actual 503"
        );
    }
}
