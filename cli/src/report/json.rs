//! `--format json`: the whole run as one JSON document on stdout, for tools.

use serde::Serialize;

use crate::runner::report::{ScenarioReport, Totals};

#[derive(Serialize)]
struct Document<'a> {
    totals: Totals,
    scenarios: &'a [ScenarioReport],
}

pub fn render(reports: &[ScenarioReport]) -> String {
    serde_json::to_string_pretty(&Document {
        totals: Totals::of(reports),
        scenarios: reports,
    })
    .unwrap_or_default()
}
