//! The end-of-run table and total line.

use comfy_table::{Cell, Color, Table};

use crate::runner::report::{Outcome, ScenarioReport, Totals};

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
            Outcome::Passed => ("passed", Color::Green),
            Outcome::Failed => ("FAILED", Color::Red),
            Outcome::Skipped => ("skipped", Color::Yellow),
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
