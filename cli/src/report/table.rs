//! The end-of-run table and total line.

use comfy_table::{Cell, Color, Table};

use crate::runner::report::{Outcome, ScenarioReport, Totals, retries, run_name};

/// Scenario, steps passed/total, result, duration.
pub fn render(reports: &[ScenarioReport], color: bool) -> String {
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    if !color {
        table.force_no_tty();
    }
    table.set_header(["scenario", "steps", "result", "duration"]);
    for r in reports {
        let (word, tint) = match r.outcome {
            Outcome::Passed if r.is_flaky() => (
                format!("flaky (passed on {})", run_name(r.attempts)),
                Color::Yellow,
            ),
            Outcome::Passed => ("passed".into(), Color::Green),
            Outcome::Failed if r.attempts > 1 => (
                format!("FAILED (after {})", retries(r.attempts - 1)),
                Color::Red,
            ),
            Outcome::Failed => ("FAILED".into(), Color::Red),
            Outcome::Skipped => ("skipped".into(), Color::Yellow),
        };
        let result = if color {
            Cell::new(word).fg(tint)
        } else {
            Cell::new(word)
        };
        table.add_row(vec![
            Cell::new(&r.name),
            Cell::new(format!("{}/{}", r.passed_steps(), r.steps.len())),
            result,
            Cell::new(format!("{:.1} s", r.duration.as_secs_f64())),
        ]);
    }
    format!("{table}\n{}", Totals::of(reports).line())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::report::Totals;

    #[test]
    fn the_total_line_names_skipped_only_when_there_are_some() {
        assert_eq!(
            Totals {
                passed: 3,
                failed: 1,
                flaky: 0,
                skipped: 0
            }
            .line(),
            "3 passed, 1 failed"
        );
        assert_eq!(
            Totals {
                passed: 3,
                failed: 0,
                flaky: 2,
                skipped: 1
            }
            .line(),
            "3 passed, 0 failed, 2 flaky, 1 skipped"
        );
        assert_eq!(
            Totals {
                passed: 0,
                failed: 0,
                flaky: 0,
                skipped: 2
            }
            .line(),
            "0 passed, 0 failed, 2 skipped"
        );
    }

    #[test]
    fn a_flaky_scenario_shows_the_retry_it_passed_on() {
        let mut flaky = crate::runner::report::tests::report(Outcome::Passed);
        flaky.attempts = 2;
        flaky.earlier_attempts = vec![crate::runner::report::tests::failed_attempt(1)];
        let text = render(&[flaky], false);
        assert!(text.contains("flaky (passed on retry 1)"), "{text}");
        assert!(text.ends_with("0 passed, 0 failed, 1 flaky"), "{text}");
    }

    #[test]
    fn a_scenario_failing_on_every_run_says_how_many_retries() {
        let mut failed = crate::runner::report::tests::report(Outcome::Failed);
        failed.attempts = 3;
        let text = render(&[failed], false);
        assert!(text.contains("FAILED (after 2 retries)"), "{text}");
    }

    #[test]
    fn an_empty_run_still_prints_its_total() {
        assert!(render(&[], false).ends_with("0 passed, 0 failed"));
    }
}
