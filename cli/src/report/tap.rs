//! `--format tap`: the run as a TAP version 14 document on stdout, for TAP
//! harnesses: a test point per scenario, its steps as a commented subtest
//! (indented 4 spaces), a failure's details in a YAML block. A skipped
//! scenario or step is `ok … # SKIP why`; a flaky scenario is `ok`, with a
//! comment saying on which retry it passed.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::runner::report::{FailureDetail, Outcome, ScenarioReport, StepReport, run_name};

/// The whole run as one TAP document, without a trailing newline.
pub fn render(reports: &[ScenarioReport]) -> String {
    let mut out = vec!["TAP version 14".to_owned(), format!("1..{}", reports.len())];
    for (i, report) in reports.iter().enumerate() {
        scenario(&mut out, i + 1, report);
    }
    out.join("\n")
}

/// A scenario's subtest (its steps), then its correlated test point.
fn scenario(out: &mut Vec<String>, number: usize, r: &ScenarioReport) {
    let name = description(&r.name);
    if !r.steps.is_empty() {
        out.push(format!("# Subtest: {name}"));
        out.push(format!("    1..{}", r.steps.len()));
        let first_failed = r.failed_steps().map(|(n, _)| n).next();
        for (i, step) in r.steps.iter().enumerate() {
            step_point(out, i + 1, step, &r.file, first_failed);
        }
    }
    match r.outcome {
        Outcome::Passed => {
            out.push(format!("ok {number} - {name}"));
            if r.is_flaky() {
                out.push(format!(
                    "# flaky: passed on {} after {}",
                    run_name(r.attempts),
                    failed_runs(r.earlier_attempts.len())
                ));
            }
        }
        Outcome::Skipped => out.push(format!(
            "ok {number} - {name} # SKIP not run: the run stopped before it (--fail-fast or an interrupt)"
        )),
        Outcome::Failed => {
            out.push(format!("not ok {number} - {name}"));
            yaml_block(out, "  ", &ScenarioFailure::of(r));
        }
    }
}

/// `1 failed run`, `2 failed runs`.
fn failed_runs(count: usize) -> String {
    if count == 1 {
        "1 failed run".into()
    } else {
        format!("{count} failed runs")
    }
}

/// One step's test point in its scenario's subtest.
fn step_point(
    out: &mut Vec<String>,
    number: usize,
    step: &StepReport,
    file: &Path,
    first_failed: Option<usize>,
) {
    let name = description(&step.name);
    match (step.outcome, &step.failure) {
        (Outcome::Failed, failure) | (_, failure @ Some(_)) => {
            out.push(format!("    not ok {number} - {name}"));
            yaml_block(
                out,
                "      ",
                &StepFailure::of(step, failure.as_ref(), file),
            );
        }
        (Outcome::Passed, None) => out.push(format!("    ok {number} - {name}")),
        (Outcome::Skipped, None) => {
            let why = match first_failed {
                Some(failed) if failed < number => format!("not run: step {failed} failed"),
                _ => "not run: the scenario stopped before it".into(),
            };
            out.push(format!("    ok {number} - {name} # SKIP {why}"));
        }
    }
}

/// A description as TAP 14 wants it: on one line, `#` and `\` escaped so
/// that neither starts a directive.
fn description(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
        .replace('\\', "\\\\")
        .replace('#', "\\#")
}

/// Where a failure is, as the YAML block's `at`.
#[derive(Serialize)]
struct At {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
}

/// A failed step's YAML diagnostics: the first problem as `message`, where,
/// the request (as `curl` too) and response status, and the whole failure as the terminal
/// shows it (source line, caret, expected and actual).
#[derive(Serialize)]
struct StepFailure {
    message: String,
    severity: &'static str,
    at: At,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    curl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mismatches: Vec<String>,
    attempts: u32,
    failure: String,
}

impl StepFailure {
    fn of(step: &StepReport, failure: Option<&FailureDetail>, file: &Path) -> StepFailure {
        let failure = failure.cloned().unwrap_or_default();
        let message = failure
            .diagnostics
            .first()
            .map(|d| d.message.clone())
            .or_else(|| failure.error.clone())
            .or_else(|| failure.mismatches.first().cloned())
            .unwrap_or_else(|| format!("step {:?} failed", step.name));
        StepFailure {
            message,
            severity: "fail",
            at: At {
                file: file.display().to_string(),
                line: step.line,
                column: step.column,
            },
            request: failure.request.clone(),
            curl: failure.curl.clone(),
            status: failure.status,
            mismatches: failure.mismatches.clone(),
            attempts: failure.attempts,
            failure: failure.render(),
        }
    }
}

/// A failed scenario's YAML diagnostics: its failure as the terminal shows
/// it, how many runs it had, and its services' last log lines.
#[derive(Serialize)]
struct ScenarioFailure {
    message: String,
    severity: &'static str,
    at: At,
    /// Runs after the first (`--retries`), as the JSON report counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u32>,
    failure: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    logs: BTreeMap<String, String>,
}

impl ScenarioFailure {
    fn of(r: &ScenarioReport) -> ScenarioFailure {
        let text = r.failure_text();
        let first_failed = r.failed_steps().map(|(_, s)| s).next();
        ScenarioFailure {
            message: text
                .lines()
                .next()
                .map_or("failed", |l| l.trim_end_matches(':'))
                .to_owned(),
            severity: "fail",
            at: At {
                file: r.file.display().to_string(),
                line: first_failed.and_then(|s| s.line).or(r.line),
                column: first_failed.and_then(|s| s.column),
            },
            retries: (r.attempts > 1).then(|| r.attempts - 1),
            failure: text,
            logs: r.logs.clone(),
        }
    }
}

/// `value` as a YAML diagnostics block (`---` … `...`), each line indented.
fn yaml_block(out: &mut Vec<String>, indent: &str, value: &impl Serialize) {
    let yaml = serde_yaml::to_string(value)
        .unwrap_or_else(|e| format!("message: {:?}\n", format!("cannot render: {e}")));
    out.push(format!("{indent}---"));
    out.extend(yaml.lines().map(|line| format!("{indent}{line}")));
    out.push(format!("{indent}..."));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::report::tests::{failed_attempt, report};
    use crate::scenario::diagnostic::Diagnostic;
    use std::time::Duration;

    fn step(name: &str, outcome: Outcome) -> StepReport {
        StepReport {
            name: name.into(),
            kind: "http".into(),
            outcome,
            duration: Duration::ZERO,
            line: Some(5),
            column: Some(7),
            failure: None,
        }
    }

    /// A scenario whose second of three steps failed on `status: 404`.
    fn failed_second_step() -> ScenarioReport {
        let mut r = report(Outcome::Failed);
        r.name = "wrong status".into();
        let mut failed = step("GET /api/v1/checks", Outcome::Failed);
        failed.failure = Some(FailureDetail {
            request: Some("GET http://127.0.0.1:1/api/v1/checks".into()),
            curl: Some("curl 'http://127.0.0.1:1/api/v1/checks?a=it'\\''s'".into()),
            status: Some(200),
            mismatches: vec!["status: expected equals 404, actual 200".into()],
            diagnostics: vec![Diagnostic {
                file: "scenarios/x.yaml".into(),
                line: Some(5),
                column: Some(7),
                message: "status did not hold".into(),
                source_line: Some("      status: 404".into()),
                label: Some("expected equals 404, actual 200".into()),
                help: None,
            }],
            attempts: 1,
            ..Default::default()
        });
        r.steps = vec![
            step("first", Outcome::Passed),
            failed,
            step("third", Outcome::Skipped),
        ];
        r
    }

    #[test]
    fn a_run_is_tap_14_with_a_plan_and_a_point_per_scenario() {
        let tap = render(&[report(Outcome::Passed), failed_second_step()]);
        let lines: Vec<&str> = tap.lines().collect();
        assert_eq!(lines[0], "TAP version 14");
        assert_eq!(lines[1], "1..2");
        assert_eq!(
            lines[2..6],
            ["# Subtest: x", "    1..1", "    ok 1 - s", "ok 1 - x"]
        );
        assert!(lines.contains(&"not ok 2 - wrong status"), "{tap}");
    }

    #[test]
    fn steps_are_a_subtest_and_a_failed_step_carries_yaml_diagnostics() {
        let tap = render(&[failed_second_step()]);
        let expected_start = "TAP version 14\n1..1\n# Subtest: wrong status\n    1..3\n    ok 1 - first\n    not ok 2 - GET /api/v1/checks\n      ---\n      message: status did not hold\n      severity: fail\n      at:\n        file: scenarios/x.yaml\n        line: 5\n        column: 7\n      request: GET http://127.0.0.1:1/api/v1/checks\n      curl: curl 'http://127.0.0.1:1/api/v1/checks?a=it'\\''s'\n      status: 200\n";
        assert!(tap.starts_with(expected_start), "{tap}");
        assert!(
            tap.contains("\n          |       ^ expected equals 404, actual 200\n"),
            "the caret and expected/actual as the terminal shows them: {tap}"
        );
        assert!(
            tap.contains("      ...\n    ok 3 - third # SKIP not run: step 2 failed\nnot ok 1 - wrong status\n  ---\n  message: step 2 \"GET /api/v1/checks\" (http) at scenarios/x.yaml:5:7 failed\n"),
            "{tap}"
        );
        assert!(tap.ends_with("\n  ..."), "{tap}");
    }

    #[test]
    fn the_yaml_blocks_are_yaml_that_says_where_and_what() {
        let tap = render(&[failed_second_step()]);
        let block: String = tap
            .lines()
            .skip_while(|l| *l != "      ---")
            .skip(1)
            .take_while(|l| *l != "      ...")
            .map(|l| format!("{}\n", l.strip_prefix("      ").unwrap_or(l)))
            .collect();
        let yaml: serde_yaml::Value = serde_yaml::from_str(&block).expect(&block);
        assert_eq!(yaml["at"]["file"], "scenarios/x.yaml");
        assert_eq!(yaml["at"]["line"], 5);
        assert_eq!(
            yaml["curl"], r"curl 'http://127.0.0.1:1/api/v1/checks?a=it'\''s'",
            "the command line to paste, as it is"
        );
        assert_eq!(
            yaml["mismatches"][0],
            "status: expected equals 404, actual 200"
        );
        let failure = yaml["failure"].as_str().unwrap();
        assert!(failure.contains("5 |       status: 404\n"), "{failure}");
    }

    #[test]
    fn a_skipped_scenario_says_skip_and_why() {
        let mut skipped = report(Outcome::Skipped);
        skipped.steps.clear();
        let tap = render(&[skipped]);
        assert_eq!(
            tap,
            "TAP version 14\n1..1\nok 1 - x # SKIP not run: the run stopped before it (--fail-fast or an interrupt)"
        );
    }

    #[test]
    fn a_flaky_scenario_is_ok_with_a_comment_naming_the_retry_it_passed_on() {
        let mut flaky = report(Outcome::Passed);
        flaky.attempts = 3;
        flaky.earlier_attempts = vec![failed_attempt(1), failed_attempt(2)];
        let tap = render(&[flaky]);
        assert!(
            tap.ends_with("ok 1 - x\n# flaky: passed on retry 2 after 2 failed runs"),
            "{tap}"
        );
    }

    #[test]
    fn a_scenario_failing_after_retries_says_how_many_runs() {
        let mut failed = failed_second_step();
        failed.attempts = 2;
        let tap = render(&[failed]);
        assert!(tap.contains("\n  retries: 1\n"), "{tap}");
    }

    #[test]
    fn hashes_and_backslashes_in_names_start_no_directive() {
        assert_eq!(description("a # SKIP b \\ c"), "a \\# SKIP b \\\\ c");
        assert_eq!(description("two\nlines"), "two lines");
        let mut r = report(Outcome::Passed);
        r.name = "issue #23".into();
        let tap = render(&[r]);
        assert!(tap.contains("# Subtest: issue \\#23\n"), "{tap}");
        assert!(tap.ends_with("ok 1 - issue \\#23"), "{tap}");
    }

    #[test]
    fn an_empty_run_plans_no_test() {
        assert_eq!(render(&[]), "TAP version 14\n1..0");
    }
}
