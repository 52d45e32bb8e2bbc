//! JUnit XML as GitLab, GitHub and Jenkins read it: a testsuite per file, a
//! testcase per scenario (with `file` and, when known, `line` attributes), the
//! failure text, service logs in system-out, and the failed runs of a flaky
//! scenario (`--retries`) as Surefire's `flakyFailure` elements, each message
//! naming its run (`first run: …`, `retry 1: …`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

use crate::runner::report::{Attempt, Outcome, ScenarioReport, StepReport, run_name};

/// The message attribute: the failure text's first line and, when that line
/// only says where (`step 2 ... at FILE:20:15 failed:`), its first failed
/// expectation (`expected equals "pass", actual "warn"`), since report UIs
/// that show only the message would otherwise lose what went wrong. The
/// whole text stays in the failure's body.
fn headline(text: &str) -> String {
    let first = text.lines().next().unwrap_or("failed");
    if !first.trim_end().ends_with(':') {
        return first.to_owned();
    }
    let expectation = text.lines().skip(1).find_map(|line| {
        let at = line.find("expected ")?;
        let what = line[at..].trim();
        (what.contains("actual") || what.contains("got")).then_some(what)
    });
    match expectation {
        Some(what) => format!("{first} {what}"),
        None => first.to_owned(),
    }
}

/// A failed run before the passing one, as `<flakyFailure>`.
fn flaky_failure(run: &Attempt) -> TestRerun {
    let mut rerun = TestRerun::new(NonSuccessKind::Failure);
    rerun
        .set_message(format!(
            "{}: {}",
            run_name(run.attempt),
            headline(&run.failure)
        ))
        .set_type("assertion")
        .set_time(run.duration)
        .set_description(run.failure.clone());
    rerun
}

fn status(r: &ScenarioReport) -> TestCaseStatus {
    match r.outcome {
        Outcome::Passed => {
            let mut s = TestCaseStatus::success();
            s.add_reruns(r.earlier_attempts.iter().map(flaky_failure));
            s
        }
        Outcome::Skipped => TestCaseStatus::skipped(),
        Outcome::Failed => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let text = r.failure_text();
            s.set_message(headline(&text));
            s.set_type("assertion");
            s.set_description(text);
            s
        }
    }
}

/// The line a testcase points at: the first failed step's, else the scenario's.
fn line_of(r: &ScenarioReport) -> Option<u32> {
    let failed: Option<&StepReport> = r.failed_steps().map(|(_, s)| s).next();
    failed.and_then(|s| s.line).or(r.line)
}

pub fn render(reports: &[ScenarioReport]) -> String {
    let mut by_file: BTreeMap<PathBuf, Vec<&ScenarioReport>> = BTreeMap::new();
    for r in reports {
        by_file.entry(r.file.clone()).or_default().push(r);
    }
    let mut report = Report::new("metrtest");
    for (file, scenarios) in by_file {
        let file = file.display().to_string();
        let mut suite = TestSuite::new(file.clone());
        for r in scenarios {
            let mut case = TestCase::new(r.name.clone(), status(r));
            case.set_classname(file.clone());
            case.set_time(r.duration);
            case.set_assertions(r.steps.len());
            case.extra.insert("file".into(), file.clone().into());
            if let Some(line) = line_of(r) {
                case.extra.insert("line".into(), line.to_string().into());
            }
            if !r.logs.is_empty() {
                case.set_system_out(r.logs_text());
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::report::FailureDetail;
    use std::time::Duration;

    fn scenario(file: &str, name: &str, outcome: Outcome) -> ScenarioReport {
        let failure = (outcome == Outcome::Failed).then(|| FailureDetail {
            request: Some("GET http://127.0.0.1:1/api/v1/checks".into()),
            status: Some(200),
            mismatches: vec!["status: expected equals 404, actual 200".into()],
            attempts: 1,
            ..Default::default()
        });
        ScenarioReport {
            file: file.into(),
            name: name.into(),
            tags: vec![],
            line: None,
            outcome,
            duration: Duration::from_millis(1500),
            steps: vec![StepReport {
                name: "s".into(),
                kind: "http".into(),
                outcome,
                duration: Duration::ZERO,
                line: Some(7),
                column: Some(5),
                failure,
            }],
            stack: Some("abc".into()),
            error: None,
            isolated: None,
            neighbours: vec![],
            service_deaths: vec![],
            logs: [(
                "api".to_owned(),
                "a log line <with> markup & more".to_owned(),
            )]
            .into_iter()
            .filter(|_| outcome == Outcome::Failed)
            .collect(),
            attempts: 1,
            earlier_attempts: vec![],
        }
    }

    #[test]
    fn one_suite_per_file_one_case_per_scenario_with_failure_and_logs() {
        let xml = render(&[
            scenario("a.yaml", "first", Outcome::Passed),
            scenario("b.yaml", "second", Outcome::Failed),
            scenario("c.yaml", "third", Outcome::Skipped),
        ]);
        assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert!(xml.contains("<failure"), "{xml}");
        assert!(xml.contains("status: expected equals 404, actual 200"));
        assert!(xml.contains("<skipped"));
        assert!(xml.contains("<system-out>"));
        assert!(
            xml.contains("&lt;with&gt; markup &amp; more"),
            "log text is escaped: {xml}"
        );
        assert!(!xml.contains("flakyFailure"), "{xml}");
    }

    #[test]
    fn the_message_holds_the_first_failed_expectation() {
        let text = "step 2 \"the API is healthy\" (http) at s.yaml:20:15 failed:\n  request: GET http://127.0.0.1:1/health\n  response status: 200\n  s.yaml:20:15: json $.status did not hold\n     |\n  20 |       json: { \"$.status\": pass }\n     |               ^ expected equals \"pass\", actual \"warn\"\n  body: {}";
        assert_eq!(
            headline(text),
            "step 2 \"the API is healthy\" (http) at s.yaml:20:15 failed: expected equals \"pass\", actual \"warn\""
        );
        assert_eq!(
            headline("service checker died (exit 137)\nlogs"),
            "service checker died (exit 137)"
        );
        assert_eq!(
            headline("step 1 failed:\n  no expectation here"),
            "step 1 failed:"
        );
    }

    #[test]
    fn a_testcase_names_its_file_and_the_failed_steps_line() {
        let xml = render(&[
            scenario("a.yaml", "first", Outcome::Passed),
            scenario("b.yaml", "second", Outcome::Failed),
        ]);
        assert!(xml.contains(r#"file="a.yaml""#), "{xml}");
        assert!(xml.contains(r#"file="b.yaml" line="7""#), "{xml}");
        assert_eq!(
            xml.matches("line=").count(),
            1,
            "only the failure has a line: {xml}"
        );
    }

    #[test]
    fn a_flaky_scenario_passes_with_one_flaky_failure_per_failed_run() {
        let mut flaky = scenario("a.yaml", "flaky", Outcome::Passed);
        flaky.attempts = 3;
        flaky.earlier_attempts = (1..=2)
            .map(|run| Attempt {
                attempt: run,
                outcome: Outcome::Failed,
                duration: Duration::from_millis(200),
                failure: format!("step 1 \"s\" (http) failed:\n  ✗ try {run}"),
            })
            .collect();
        let xml = render(&[flaky]);
        assert!(!xml.contains("<failure"), "the case passed: {xml}");
        assert_eq!(xml.matches("<flakyFailure").count(), 2, "{xml}");
        assert!(
            xml.contains(r#"message="first run: step 1 &quot;s&quot; (http) failed:""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"message="retry 1: step 1 &quot;s&quot; (http) failed:""#),
            "{xml}"
        );
        assert!(xml.contains("✗ try 2"), "the failure text is kept: {xml}");
    }
}
