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
