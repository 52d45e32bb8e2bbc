//! `report merge`: the JSON reports of `--partition` shards as one report,
//! as one run of the whole suite would have written it: the scenarios in
//! file order, the totals theirs, the wall time the longest shard's (shards
//! run side by side) beside the shards' times added up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::report::json::{Report, RunSummary, Shard};
use crate::runner::report::ScenarioReport;

/// A scenario in two of the reports: they were not shards of one partition
/// (or one was given twice), and their totals would count it twice.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error(
    "scenario {name:?} ({}) is in two reports, {} and {}: merge the reports of one --partition's shards, each once",
    file.display(), first.display(), second.display()
)]
pub struct Overlap {
    pub name: String,
    pub file: PathBuf,
    pub first: PathBuf,
    pub second: PathBuf,
}

/// One report from the shards' reports, each given with the file it was read from.
pub fn merge(shards: Vec<(PathBuf, Report)>) -> Result<Report, Overlap> {
    let mut seen: BTreeMap<(PathBuf, String), PathBuf> = BTreeMap::new();
    let mut scenarios = Vec::new();
    let mut listed = Vec::new();
    for (file, report) in shards {
        for s in &report.scenarios {
            let key = (s.file.clone(), s.name.clone());
            if let Some(first) = seen.insert(key, file.clone()) {
                return Err(Overlap {
                    name: s.name.clone(),
                    file: s.file.clone(),
                    first,
                    second: file,
                });
            }
        }
        listed.push(Shard {
            file,
            duration: report.summary.duration,
            scenarios: report.scenarios.len(),
        });
        scenarios.extend(report.scenarios);
    }
    // A run lists its scenarios in the order of their files; the shards'
    // order on the command line does not matter.
    scenarios.sort_by(|a, b| (&a.file, a.line, &a.name).cmp(&(&b.file, b.line, &b.name)));
    let times: Vec<Duration> = listed.iter().filter_map(|s| s.duration).collect();
    Ok(Report {
        summary: RunSummary {
            duration: times.iter().max().copied(),
            duration_sum: (!times.is_empty()).then(|| times.iter().sum()),
            shards: listed,
        },
        scenarios,
    })
}

/// Puts back the source line under each positioned diagnostic, which a JSON
/// report does not carry, from the scenario files as `read` finds them (the
/// reports name them from where the shards ran: run the merge there too), so
/// that failures show the line and its caret as `run` shows them.
pub fn restore_source_lines(
    scenarios: &mut [ScenarioReport],
    read: impl Fn(&Path) -> Option<String>,
) {
    let mut files: HashMap<PathBuf, Option<String>> = HashMap::new();
    let diagnostics = scenarios
        .iter_mut()
        .flat_map(|s| s.steps.iter_mut())
        .filter_map(|step| step.failure.as_mut())
        .flat_map(|failure| failure.diagnostics.iter_mut())
        .filter(|d| d.source_line.is_none());
    for d in diagnostics {
        let Some(line) = d.line else { continue };
        let text = files.entry(d.file.clone()).or_insert_with(|| read(&d.file));
        d.source_line = text
            .as_deref()
            .and_then(|t| t.lines().nth(line.checked_sub(1)?))
            .map(str::to_owned);
    }
}

/// What the merged run took: `merged 2 reports (5 scenarios): 42.1 s wall
/// time (the longest shard), 80.3 s over all shards`, naming the reports
/// that do not say.
pub fn durations_line(report: &Report) -> String {
    let summary = &report.summary;
    let seconds = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let mut line = format!(
        "merged {} ({})",
        count(summary.shards.len(), "report"),
        count(report.scenarios.len(), "scenario")
    );
    if let (Some(wall), Some(sum)) = (summary.duration, summary.duration_sum) {
        line.push_str(&format!(
            ": {} wall time (the longest shard), {} over all shards",
            seconds(wall),
            seconds(sum)
        ));
    }
    let untimed: Vec<String> = summary
        .shards
        .iter()
        .filter(|s| s.duration.is_none())
        .map(|s| s.file.display().to_string())
        .collect();
    match untimed.len() {
        0 => {}
        1 => line.push_str(&format!(
            "; {} does not say how long it took (an older metrtest wrote it)",
            untimed[0]
        )),
        _ => line.push_str(&format!(
            "; {} do not say how long they took (an older metrtest wrote them)",
            untimed.join(", ")
        )),
    }
    line
}

/// `1 report`, `2 reports`.
fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::report::tests::report;
    use crate::runner::report::{Outcome, Totals};
    use crate::scenario::diagnostic::Diagnostic;

    fn scenario(file: &str, outcome: Outcome) -> ScenarioReport {
        let mut r = report(outcome);
        r.file = file.into();
        r.name = format!("in {file}");
        r
    }

    fn shard(file: &str, millis: Option<u64>, scenarios: Vec<ScenarioReport>) -> (PathBuf, Report) {
        let summary = RunSummary {
            duration: millis.map(Duration::from_millis),
            ..RunSummary::default()
        };
        (file.into(), Report { summary, scenarios })
    }

    #[test]
    fn totals_add_up_and_scenarios_come_in_file_order() {
        let merged = merge(vec![
            shard(
                "2.json",
                Some(40_000),
                vec![scenario("s/c.yaml", Outcome::Passed)],
            ),
            shard(
                "1.json",
                Some(30_000),
                vec![
                    scenario("s/b.yaml", Outcome::Failed),
                    scenario("s/a.yaml", Outcome::Passed),
                ],
            ),
        ])
        .unwrap();
        let files: Vec<_> = merged.scenarios.iter().map(|s| s.file.clone()).collect();
        assert_eq!(
            files,
            ["s/a.yaml", "s/b.yaml", "s/c.yaml"].map(PathBuf::from)
        );
        assert_eq!(
            Totals::of(&merged.scenarios),
            Totals {
                passed: 2,
                failed: 1,
                ..Totals::default()
            }
        );
        assert_eq!(merged.summary.duration, Some(Duration::from_secs(40)));
        assert_eq!(merged.summary.duration_sum, Some(Duration::from_secs(70)));
        let shards: Vec<_> = merged.summary.shards.iter().map(|s| s.scenarios).collect();
        assert_eq!(shards, [1, 2], "the shards in the order given");
        assert_eq!(
            durations_line(&merged),
            "merged 2 reports (3 scenarios): 40.0 s wall time (the longest shard), 70.0 s over all shards"
        );
    }

    #[test]
    fn a_scenario_in_two_reports_is_an_overlap_naming_it_and_both() {
        let overlap = merge(vec![
            shard("1.json", None, vec![scenario("s/a.yaml", Outcome::Passed)]),
            shard("2.json", None, vec![scenario("s/a.yaml", Outcome::Failed)]),
        ])
        .unwrap_err();
        assert_eq!(
            overlap.to_string(),
            "scenario \"in s/a.yaml\" (s/a.yaml) is in two reports, 1.json and 2.json: \
             merge the reports of one --partition's shards, each once"
        );
    }

    #[test]
    fn reports_that_do_not_say_their_time_are_named() {
        let merged = merge(vec![
            shard(
                "old.json",
                None,
                vec![scenario("s/a.yaml", Outcome::Passed)],
            ),
            shard("new.json", Some(2_000), vec![]),
        ])
        .unwrap();
        assert_eq!(merged.summary.duration, Some(Duration::from_secs(2)));
        assert_eq!(
            durations_line(&merged),
            "merged 2 reports (1 scenario): 2.0 s wall time (the longest shard), 2.0 s over all shards; \
             old.json does not say how long it took (an older metrtest wrote it)"
        );
    }

    #[test]
    fn failures_get_their_source_line_back_from_the_scenario_file() {
        let mut failed = scenario("s/a.yaml", Outcome::Failed);
        let detail = failed.steps[0].failure.as_mut().unwrap();
        detail.diagnostics = vec![Diagnostic {
            file: "s/a.yaml".into(),
            line: Some(2),
            column: Some(7),
            message: "status did not hold".into(),
            source_line: None,
            label: Some("expected 200, actual 503".into()),
            help: None,
        }];
        let mut gone = failed.clone();
        gone.steps[0].failure.as_mut().unwrap().diagnostics[0].file = "s/gone.yaml".into();
        let mut scenarios = [failed, gone];
        restore_source_lines(&mut scenarios, |path| {
            (path == Path::new("s/a.yaml")).then(|| "name: a\n      status: 200\n".into())
        });
        let line = |s: &ScenarioReport| {
            let failure = s.steps[0].failure.as_ref().unwrap();
            failure.diagnostics[0].source_line.clone()
        };
        assert_eq!(line(&scenarios[0]).as_deref(), Some("      status: 200"));
        assert_eq!(
            line(&scenarios[1]),
            None,
            "a file that is gone shows no line"
        );
        let text = scenarios[0].failure_text();
        assert!(text.contains("2 |       status: 200"), "{text}");
    }
}
