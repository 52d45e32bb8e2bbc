//! `--format json`: the whole run as one JSON document on stdout, for tools.
//! Each failed step carries the `file`, `line` and `column` it is written at
//! (the last two when known); each scenario its `retries` (`--retries`: runs
//! after the first), and one retried after a failure its failed runs in
//! `earlier_attempts`, each with its `run` number (1 the first run, 2 retry 1).
//! The older keys keep their names: `attempts` counts a scenario's runs (the
//! first run plus its retries) and an earlier run's `attempt` is its `run`;
//! a failed step's `attempts` counts its polls under `retry:`.

use serde::Serialize;
use serde_json::Value;

use crate::runner::report::{ScenarioReport, Totals};

#[derive(Serialize)]
struct Document<'a> {
    totals: Totals,
    scenarios: &'a [ScenarioReport],
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

pub fn render(reports: &[ScenarioReport]) -> String {
    let document = Document {
        totals: Totals::of(reports),
        scenarios: reports,
    };
    let mut value = serde_json::to_value(&document).unwrap_or_default();
    locate_failed_steps(&mut value);
    name_runs(&mut value);
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::report::{Attempt, FailureDetail, Outcome, StepReport};
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
        let doc: Value = serde_json::from_str(&render(&[r])).unwrap();
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
        let doc: Value = serde_json::from_str(&render(&[r])).unwrap();
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
}
