//! `--format json`: the whole run as one JSON document on stdout, for tools.
//! Each failed step carries the `file`, `line` and `column` it is written at
//! (the last two when known); each scenario its `retries` (`--retries`: runs
//! after the first), and one retried after a failure its failed runs in
//! `earlier_attempts`, each with its `run` number (1 the first run, 2 retry 1).
//! The older keys keep their names: `attempts` counts a scenario's runs (the
//! first run plus its retries) and an earlier run's `attempt` is its `run`;
//! a failed step's `attempts` counts its polls under `retry:`.
//! The run's wall time is `duration` (ms); a report merged from shards
//! (`report merge`) has its longest shard's there, the shards' added up in
//! `duration_sum`, and the shards in `shards`.
//!
//! [`parse`] reads a report back: render, parse and render again gives the
//! same document.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::runner::report::{ScenarioReport, Totals};

/// What a report says of the run as a whole, beside its scenarios.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run's wall time; a merged report's longest shard's, as shards
    /// run side by side.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_millis"
    )]
    pub duration: Option<Duration>,
    /// A merged report's: its shards' wall times added up.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_millis"
    )]
    pub duration_sum: Option<Duration>,
    /// A merged report's shards, in the order they were given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<Shard>,
}

/// A report that went into a merged one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub file: PathBuf,
    /// Its wall time, when it says (reports written before it was recorded do not).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_millis",
        deserialize_with = "from_optional_millis"
    )]
    pub duration: Option<Duration>,
    /// How many scenarios it had.
    pub scenarios: usize,
}

#[derive(Serialize)]
struct Document<'a> {
    totals: Totals,
    #[serde(flatten)]
    summary: &'a RunSummary,
    scenarios: &'a [ScenarioReport],
}

/// A JSON report read back. The fields are listed rather than flattened
/// from [`RunSummary`], so that an error keeps its line and column.
#[derive(Deserialize)]
struct Written {
    totals: Totals,
    #[serde(default, deserialize_with = "from_optional_millis")]
    duration: Option<Duration>,
    #[serde(default, deserialize_with = "from_optional_millis")]
    duration_sum: Option<Duration>,
    #[serde(default)]
    shards: Vec<Shard>,
    scenarios: Vec<ScenarioReport>,
}

/// A JSON report as [`parse`] reads it.
#[derive(Debug, Clone)]
pub struct Report {
    pub summary: RunSummary,
    pub scenarios: Vec<ScenarioReport>,
}

/// Why a text is not a metrtest JSON report.
#[derive(Debug, thiserror::Error)]
pub enum NotAReport {
    /// Not JSON, or not of the report's shape: where and what, from serde.
    #[error("{0}")]
    Shape(#[from] serde_path_to_error::Error<serde_json::Error>),
    /// Something after the document.
    #[error("{0}")]
    Trailing(#[from] serde_json::Error),
    /// Well formed, but its totals are not its scenarios'.
    #[error("its totals say {written} but its scenarios are {counted}")]
    Totals { written: String, counted: String },
}

/// Reads a report that [`render`] wrote (`run --format json`).
pub fn parse(text: &str) -> Result<Report, NotAReport> {
    let mut json = serde_json::Deserializer::from_str(text);
    let written: Written = serde_path_to_error::deserialize(&mut json)?;
    json.end()?;
    let counted = Totals::of(&written.scenarios);
    if counted != written.totals {
        return Err(NotAReport::Totals {
            written: written.totals.line(),
            counted: counted.line(),
        });
    }
    Ok(Report {
        summary: RunSummary {
            duration: written.duration,
            duration_sum: written.duration_sum,
            shards: written.shards,
        },
        scenarios: written.scenarios,
    })
}

/// Adds the scenario's file to each failed step, so a tool needs no lookup.
fn locate_failed_steps(document: &mut Value) {
    let Some(scenarios) = document["scenarios"].as_array_mut() else {
        return;
    };
    for scenario in scenarios {
        let file = scenario["file"].clone();
        let Some(steps) = scenario["steps"].as_array_mut() else {
            continue;
        };
        for step in steps.iter_mut().filter(|s| s.get("failure").is_some()) {
            step["file"] = file.clone();
        }
    }
}

/// Adds `retries` to each scenario and `run` to each of its earlier runs:
/// the words the other reports use, beside the keys named before them.
fn name_runs(document: &mut Value) {
    let Some(scenarios) = document["scenarios"].as_array_mut() else {
        return;
    };
    for scenario in scenarios {
        let runs = scenario["attempts"].as_u64().unwrap_or(0);
        scenario["retries"] = runs.saturating_sub(1).into();
        let Some(earlier) = scenario
            .get_mut("earlier_attempts")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for run in earlier {
            run["run"] = run["attempt"].clone();
        }
    }
}

/// The document `--format json` prints.
pub fn render(reports: &[ScenarioReport], summary: &RunSummary) -> String {
    let document = Document {
        totals: Totals::of(reports),
        summary,
        scenarios: reports,
    };
    let mut value = serde_json::to_value(&document).unwrap_or_default();
    locate_failed_steps(&mut value);
    name_runs(&mut value);
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

fn optional_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

fn from_optional_millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ContainerState;
    use crate::runner::report::{Attempt, FailureDetail, Outcome, StepReport};
    use crate::runner::watch::{Change, Death};
    use crate::scenario::diagnostic::Diagnostic;
    use std::time::Duration;

    fn step(outcome: Outcome) -> StepReport {
        StepReport {
            name: "s".into(),
            kind: "sql".into(),
            outcome,
            duration: Duration::from_millis(3),
            line: Some(4),
            column: Some(5),
            failure: (outcome == Outcome::Failed).then(FailureDetail::default),
        }
    }

    fn scenario(outcome: Outcome, steps: Vec<StepReport>) -> ScenarioReport {
        let mut r = crate::runner::report::tests::report(outcome);
        r.steps = steps;
        r
    }

    #[test]
    fn failed_steps_carry_file_line_and_column() {
        let r = scenario(
            Outcome::Failed,
            vec![step(Outcome::Passed), step(Outcome::Failed)],
        );
        let doc: Value = serde_json::from_str(&render(&[r], &RunSummary::default())).unwrap();
        let steps = &doc["scenarios"][0]["steps"];
        assert_eq!(steps[1]["file"], "scenarios/x.yaml");
        assert_eq!(steps[1]["line"], 4);
        assert_eq!(steps[1]["column"], 5);
        assert!(steps[0].get("file").is_none(), "{steps}");
    }

    #[test]
    fn a_flaky_scenario_lists_its_failed_runs_and_counts_as_flaky() {
        let mut r = scenario(Outcome::Passed, vec![step(Outcome::Passed)]);
        r.attempts = 2;
        r.earlier_attempts = vec![Attempt {
            attempt: 1,
            outcome: Outcome::Failed,
            duration: Duration::from_millis(10),
            failure: "step 1 failed".into(),
        }];
        let doc: Value = serde_json::from_str(&render(&[r], &RunSummary::default())).unwrap();
        assert_eq!(doc["totals"]["flaky"], 1);
        assert_eq!(doc["totals"]["passed"], 0);
        let scenario = &doc["scenarios"][0];
        assert_eq!(scenario["attempts"], 2);
        assert_eq!(scenario["retries"], 1);
        assert_eq!(scenario["earlier_attempts"][0]["attempt"], 1);
        assert_eq!(scenario["earlier_attempts"][0]["run"], 1);
        assert_eq!(scenario["earlier_attempts"][0]["outcome"], "failed");
        assert_eq!(scenario["earlier_attempts"][0]["failure"], "step 1 failed");
    }

    /// Every kind of scenario, with every field a report can write.
    fn every_field() -> Vec<ScenarioReport> {
        let mut failed = scenario(
            Outcome::Failed,
            vec![step(Outcome::Passed), step(Outcome::Failed)],
        );
        failed.tags = vec!["api".into()];
        failed.line = Some(1);
        failed.stack = Some("r1".into());
        failed.isolated = Some("it stops a service".into());
        failed.neighbours = vec!["other (scenarios/o.yaml)".into()];
        failed.error = Some("service checker restarted".into());
        failed.logs = [("api".to_owned(), "a line\n".to_owned())].into();
        failed.attempts = 2;
        failed.earlier_attempts = vec![crate::runner::report::tests::failed_attempt(1)];
        failed.service_deaths = vec![Death {
            service: "checker".into(),
            change: Change::Restarted { restarts_before: 0 },
            state: Some(ContainerState {
                running: true,
                status: "running".into(),
                exit_code: 137,
                oom_killed: true,
                restart_count: 1,
                started_at: "2026-01-01T00:00:00Z".into(),
            }),
            after_step: 2,
            step_name: "s".into(),
            logs: "killed\n".into(),
        }];
        let detail = failed.steps[1].failure.as_mut().unwrap();
        detail.request = Some("GET http://127.0.0.1:1/x?a=1".into());
        detail.curl = Some("curl 'http://127.0.0.1:1/x?a=1'".into());
        detail.status = Some(503);
        detail.body = Some("{}".into());
        detail.mismatches = vec!["status: expected 200, actual 503".into()];
        detail.error = Some("an error".into());
        detail.diagnostics = vec![Diagnostic {
            file: "scenarios/x.yaml".into(),
            line: Some(4),
            column: None,
            message: "status did not hold".into(),
            source_line: None,
            label: Some("expected 200, actual 503".into()),
            help: Some("did you mean 503?".into()),
        }];
        let mut gone = scenario(Outcome::Failed, vec![]);
        gone.service_deaths = vec![Death {
            service: "api".into(),
            change: Change::Unreadable {
                error: "engine gone".into(),
            },
            state: None,
            after_step: 1,
            step_name: "s".into(),
            logs: String::new(),
        }];
        vec![
            failed,
            gone,
            scenario(Outcome::Passed, vec![step(Outcome::Passed)]),
            scenario(Outcome::Skipped, vec![step(Outcome::Skipped)]),
        ]
    }

    #[test]
    fn a_report_read_back_renders_the_same_document() {
        let summary = RunSummary {
            duration: Some(Duration::from_millis(42_100)),
            duration_sum: Some(Duration::from_millis(80_300)),
            shards: vec![Shard {
                file: "shard-1.json".into(),
                duration: Some(Duration::from_millis(42_100)),
                scenarios: 4,
            }],
        };
        let written = render(&every_field(), &summary);
        let read = parse(&written).unwrap_or_else(|e| panic!("{e}\n{written}"));
        assert_eq!(read.summary, summary);
        assert_eq!(read.scenarios.len(), 4);
        assert_eq!(render(&read.scenarios, &read.summary), written);
    }

    #[test]
    fn a_run_writes_its_wall_time_and_no_shards() {
        let summary = RunSummary {
            duration: Some(Duration::from_millis(1500)),
            ..Default::default()
        };
        let doc: Value = serde_json::from_str(&render(&[], &summary)).unwrap();
        assert_eq!(doc["duration"], 1500);
        assert!(doc.get("shards").is_none(), "{doc}");
        assert!(doc.get("duration_sum").is_none(), "{doc}");
    }

    #[test]
    fn a_text_that_is_not_a_report_says_where_and_what() {
        let not_json = parse("<testsuites/>").unwrap_err().to_string();
        assert_eq!(not_json, "expected value at line 1 column 1");
        let written = render(&every_field(), &RunSummary::default());
        let no_outcome = written.replacen("\"outcome\": \"failed\",", "", 1);
        let error = parse(&no_outcome).unwrap_err().to_string();
        assert_eq!(
            error, "scenarios[0].earlier_attempts[0]: missing field `outcome` at line 13 column 9",
            "the path to the field, and the line and column where it ends"
        );
        let wrong_totals = written.replacen("\"passed\": 1", "\"passed\": 7", 1);
        assert_eq!(
            parse(&wrong_totals).unwrap_err().to_string(),
            "its totals say 7 passed, 2 failed, 1 skipped but its scenarios are 1 passed, 2 failed, 1 skipped"
        );
    }
}
