//! JUnit XML as GitLab, GitHub and Jenkins read it: a testsuite per file, a
//! testcase per scenario, the failure text, service logs in system-out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::runner::report::{Outcome, ScenarioReport};

pub fn render(reports: &[ScenarioReport]) -> String {
    let mut by_file: BTreeMap<PathBuf, Vec<&ScenarioReport>> = BTreeMap::new();
    for r in reports {
        by_file.entry(r.file.clone()).or_default().push(r);
    }
    let mut report = Report::new("metrtest");
    for (file, scenarios) in by_file {
        let mut suite = TestSuite::new(file.display().to_string());
        for r in scenarios {
            let status = match r.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Skipped => TestCaseStatus::skipped(),
                Outcome::Failed => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let text = r.failure_text();
                    s.set_message(text.lines().next().unwrap_or("failed").to_owned());
                    s.set_type("assertion");
                    s.set_description(text);
                    s
                }
            };
            let mut case = TestCase::new(r.name.clone(), status);
            case.set_classname(file.display().to_string());
            case.set_time(r.duration);
            case.set_assertions(r.steps.len());
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
    use crate::runner::report::{FailureDetail, StepReport};
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
            outcome,
            duration: Duration::from_millis(1500),
            steps: vec![StepReport {
                name: "s".into(),
                kind: "http".into(),
                outcome,
                duration: Duration::ZERO,
                failure,
            }],
            stack: Some("abc".into()),
            error: None,
            logs: [(
                "api".to_owned(),
                "a log line <with> markup & more".to_owned(),
            )]
            .into_iter()
            .filter(|_| outcome == Outcome::Failed)
            .collect(),
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
    }
}
