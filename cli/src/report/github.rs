//! GitHub Actions workflow commands: each failure as `::error file=…,line=…::…`
//! so that it shows on the pull request's line; each flaky scenario as a
//! `::warning`.

use crate::runner::report::{Outcome, ScenarioReport, run_name};

/// `--annotations`: which workflow commands to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Annotations {
    /// GitHub Actions `::error` lines (the default when `GITHUB_ACTIONS=true`).
    Github,
    /// None.
    None,
}

impl Annotations {
    /// `--annotations` when given, else GitHub's when the run is in GitHub Actions.
    pub fn resolve(flag: Option<Annotations>, github_actions: Option<&str>) -> Annotations {
        flag.unwrap_or(if github_actions == Some("true") {
            Annotations::Github
        } else {
            Annotations::None
        })
    }
}

/// A message escaped as GitHub's runner expects the data part.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value: the data escapes, plus `:` and `,`, which end a property.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `failed on its first run, passed on retry 1:` and the failure; with
/// several failed runs, each failure under its run's name.
fn flaky_message(r: &ScenarioReport) -> String {
    let failed: Vec<String> = r
        .earlier_attempts
        .iter()
        .map(|run| match run.attempt {
            1 => "its first run".to_owned(),
            n => run_name(n),
        })
        .collect();
    let failed = match failed.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    let failures: Vec<String> = match r.earlier_attempts.as_slice() {
        [only] => vec![only.failure.clone()],
        runs => runs
            .iter()
            .map(|run| format!("{}: {}", run_name(run.attempt), run.failure))
            .collect(),
    };
    format!(
        "failed on {failed}, passed on {}:\n{}",
        run_name(r.attempts),
        failures.join("\n")
    )
}

/// One workflow command.
struct Command<'a> {
    level: &'a str,
    file: String,
    line: Option<u32>,
    column: Option<u32>,
    title: String,
    message: String,
}

impl Command<'_> {
    fn render(&self) -> String {
        let mut properties = vec![format!("file={}", escape_property(&self.file))];
        if let Some(line) = self.line {
            properties.push(format!("line={line}"));
            if let Some(column) = self.column {
                properties.push(format!("col={column}"));
            }
        }
        properties.push(format!("title={}", escape_property(&self.title)));
        format!(
            "::{} {}::{}",
            self.level,
            properties.join(","),
            escape_data(&self.message)
        )
    }
}

/// The workflow commands for a run: one `::error` per failed step (or per
/// failed scenario when no step failed), one `::warning` per flaky scenario.
pub fn render(reports: &[ScenarioReport]) -> Vec<String> {
    let mut out = Vec::new();
    for r in reports {
        let file = r.file.display().to_string();
        if r.outcome == Outcome::Failed {
            let failed: Vec<_> = r.failed_steps().collect();
            for (number, step) in &failed {
                out.push(
                    Command {
                        level: "error",
                        file: file.clone(),
                        line: step.line,
                        column: step.column,
                        title: format!("{}: step {number} \"{}\" failed", r.name, step.name),
                        message: step
                            .failure
                            .as_ref()
                            .map(|f| f.render())
                            .unwrap_or_default(),
                    }
                    .render(),
                );
            }
            // A failure outside the steps (a service that died unasked)
            // is told even when a step failed too.
            let outside = match (&r.error, failed.is_empty()) {
                (_, true) => Some(r.failure_text()),
                (Some(error), false) => Some(error.clone()),
                (None, false) => None,
            };
            if let Some(message) = outside {
                out.push(
                    Command {
                        level: "error",
                        file,
                        line: r.line,
                        column: None,
                        title: format!("{} failed", r.name),
                        message,
                    }
                    .render(),
                );
            }
        } else if r.is_flaky() {
            out.push(
                Command {
                    level: "warning",
                    file,
                    line: r.line,
                    column: None,
                    title: format!("{} is flaky", r.name),
                    message: flaky_message(r),
                }
                .render(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::report::{Attempt, FailureDetail, StepReport};
    use std::time::Duration;

    fn step(outcome: Outcome, line: Option<u32>) -> StepReport {
        StepReport {
            name: "gometr is up".into(),
            kind: "http".into(),
            outcome,
            duration: Duration::ZERO,
            line,
            column: line.map(|_| 5),
            failure: (outcome == Outcome::Failed).then(|| FailureDetail {
                mismatches: vec!["status: expected 200, actual 503".into()],
                error: Some("50% of it: gone".into()),
                attempts: 1,
                ..Default::default()
            }),
        }
    }

    fn scenario(outcome: Outcome, steps: Vec<StepReport>) -> ScenarioReport {
        let mut r = crate::runner::report::tests::report(outcome);
        r.file = "scenarios/a,b:c.yaml".into();
        r.name = "up, then down".into();
        r.line = Some(1);
        r.steps = steps;
        r
    }

    #[test]
    fn data_escapes_percent_and_line_breaks() {
        assert_eq!(escape_data("50%\r\ndone"), "50%25%0D%0Adone");
    }

    #[test]
    fn properties_also_escape_colons_and_commas() {
        assert_eq!(escape_property("a,b:c%\n"), "a%2Cb%3Ac%25%0A");
    }

    #[test]
    fn a_failed_step_is_an_error_at_its_file_and_line() {
        let r = scenario(
            Outcome::Failed,
            vec![
                step(Outcome::Passed, Some(3)),
                step(Outcome::Failed, Some(9)),
            ],
        );
        assert_eq!(
            render(&[r]),
            ["::error file=scenarios/a%2Cb%3Ac.yaml,line=9,col=5,\
                 title=up%2C then down%3A step 2 \"gometr is up\" failed::\
                 error: 50%25 of it: gone%0A✗ status: expected 200, actual 503"]
        );
    }

    #[test]
    fn without_a_line_the_error_names_the_file_alone() {
        let r = scenario(Outcome::Failed, vec![step(Outcome::Failed, None)]);
        let lines = render(&[r]);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("::error file=scenarios/a%2Cb%3Ac.yaml,title="),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn a_scenario_failed_outside_its_steps_is_one_error_at_its_start() {
        let mut r = scenario(Outcome::Failed, vec![]);
        r.error = Some("its stack did not start".into());
        assert_eq!(
            render(&[r]),
            [
                "::error file=scenarios/a%2Cb%3Ac.yaml,line=1,title=up%2C then down failed::its stack did not start"
            ]
        );
    }

    #[test]
    fn a_service_that_died_is_told_beside_the_step_that_failed() {
        let mut r = scenario(Outcome::Failed, vec![step(Outcome::Failed, Some(9))]);
        r.error = Some("service checker died without a step asking for it".into());
        let lines = render(&[r]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("line=9"), "{}", lines[0]);
        assert!(
            lines[1].ends_with("failed::service checker died without a step asking for it"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn a_flaky_scenario_is_a_warning_and_a_plain_pass_is_nothing() {
        let passed = scenario(Outcome::Passed, vec![step(Outcome::Passed, Some(3))]);
        let mut flaky = passed.clone();
        flaky.attempts = 2;
        flaky.earlier_attempts = vec![Attempt {
            attempt: 1,
            outcome: Outcome::Failed,
            duration: Duration::ZERO,
            failure: "step 1 failed".into(),
        }];
        let lines = render(&[passed, flaky]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("::warning file="), "{}", lines[0]);
        assert!(
            lines[0].ends_with("::failed on its first run, passed on retry 1:%0Astep 1 failed"),
            "{}",
            lines[0]
        );
    }

    #[test]
    fn a_scenario_flaky_twice_names_each_failed_run() {
        let mut flaky = scenario(Outcome::Passed, vec![step(Outcome::Passed, Some(3))]);
        flaky.attempts = 3;
        flaky.earlier_attempts = (1..=2)
            .map(|run| Attempt {
                attempt: run,
                outcome: Outcome::Failed,
                duration: Duration::ZERO,
                failure: format!("step {run} failed"),
            })
            .collect();
        assert_eq!(
            flaky_message(&flaky),
            "failed on its first run and retry 1, passed on retry 2:\nfirst run: step 1 failed\nretry 1: step 2 failed"
        );
    }

    #[test]
    fn github_annotations_follow_the_environment_unless_the_flag_says() {
        assert_eq!(
            Annotations::resolve(None, Some("true")),
            Annotations::Github
        );
        assert_eq!(Annotations::resolve(None, None), Annotations::None);
        assert_eq!(
            Annotations::resolve(Some(Annotations::None), Some("true")),
            Annotations::None
        );
        assert_eq!(
            Annotations::resolve(Some(Annotations::Github), None),
            Annotations::Github
        );
    }
}
