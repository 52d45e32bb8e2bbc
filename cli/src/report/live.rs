//! The terminal reporter: runner events as progress lines (spinners on a
//! terminal, plain lines in CI logs), failures in full as they happen.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::runner::event::{Event, Level, Reporter};
use crate::runner::report::{Outcome, ScenarioReport, run_name};
use crate::stack::progress::{Listener, StackEvent};
use crate::ui::{StackLines, Task, Ui};

/// Prints a run's progress through [`Ui`].
pub struct Live {
    ui: Ui,
    /// The open task line of each scenario's running run (first run or retry).
    tasks: Mutex<HashMap<(String, u32), Task>>,
    /// The stack layer's lines of the run's own (its images).
    stack_lines: StackLines,
    /// Those of each labelled stack while it starts, on a Ui labelled with it.
    lanes: Mutex<HashMap<String, StackLines>>,
}

impl Live {
    pub fn new(ui: &Ui) -> Live {
        Live {
            ui: ui.clone(),
            tasks: Mutex::default(),
            stack_lines: StackLines::new(ui),
            lanes: Mutex::default(),
        }
    }

    /// A stack-layer event, on its lane's labelled lines if it has one.
    fn stack(&self, lane: Option<&str>, event: &StackEvent) {
        let Some(lane) = lane else {
            return self.stack_lines.event(event);
        };
        self.lanes
            .lock()
            .expect("lanes")
            .entry(lane.to_owned())
            .or_insert_with(|| StackLines::new(&self.ui.labelled(lane)))
            .event(event);
    }

    fn take_task(&self, name: &str, run: u32) -> Option<Task> {
        self.tasks
            .lock()
            .expect("task lines")
            .remove(&(name.to_owned(), run))
    }
}

/// `scenario NAME`, and on a retry (`--retries`) `scenario NAME (retry 1)`.
fn label(name: &str, run: u32) -> String {
    if run > 1 {
        format!("scenario {name} ({})", run_name(run))
    } else {
        format!("scenario {name}")
    }
}

/// What follows `failed` in a scenario's failure: on which run, and whether
/// it runs again; nothing when it ran once and for all.
fn which_run(run: u32, retrying: bool) -> String {
    match (run, retrying) {
        (1, false) => String::new(),
        (1, true) => " on its first run; running it again as retry 1".into(),
        (run, true) => format!(
            " on {}; running it again as {}",
            run_name(run),
            run_name(run + 1)
        ),
        (run, false) => format!(" on {} too", run_name(run)),
    }
}

impl Reporter for Live {
    fn event(&self, event: &Event<'_>) {
        let ui = &self.ui;
        match event {
            Event::RunStarted { scenarios, jobs } => ui.info(format!(
                "running {scenarios} scenario(s) with {jobs} job(s)"
            )),
            // Kept as it was, `starting stack ID`, for whoever reads it;
            // when several stacks start, their lines say whom each is for.
            Event::StackStarting { run_id, .. } => ui.info(format!("starting stack {run_id}")),
            Event::StackReady { run_id, ready_in } => ui.info(format!(
                "stack {run_id} ready in {:.1} s",
                ready_in.as_secs_f64()
            )),
            Event::ScenarioStarted { name, attempt, .. } => {
                let task = ui.task(label(name, *attempt));
                self.tasks
                    .lock()
                    .expect("task lines")
                    .insert(((*name).to_owned(), *attempt), task);
            }
            Event::StepFinished {
                scenario,
                attempt,
                step,
            } => {
                if let Some(task) = self
                    .tasks
                    .lock()
                    .expect("task lines")
                    .get(&((*scenario).to_owned(), *attempt))
                {
                    task.update(format!("{} {:?}", step.name, step.outcome).to_lowercase());
                }
            }
            Event::ScenarioFinished {
                report,
                attempt,
                retrying,
            } => self.finished(report, *attempt, *retrying),
            Event::Notice { level, text } => match level {
                Level::Debug => ui.debug(text),
                Level::Info => ui.info(text),
                Level::Warn => ui.warn(text),
                Level::Error => ui.error(text),
            },
            Event::Stack { lane, event } => self.stack(*lane, event),
            // Its live line goes with its labelled Ui.
            Event::LaneEnded { lane } => drop(self.lanes.lock().expect("lanes").remove(*lane)),
            Event::RunFinished { .. } => {}
        }
    }
}

impl Live {
    /// A scenario's run ended: its line is closed, and a failure is shown in
    /// full with the services' last log lines.
    fn finished(&self, report: &ScenarioReport, attempt: u32, retrying: bool) {
        let task = self.take_task(&report.name, attempt);
        match (report.outcome, task) {
            (Outcome::Passed, Some(task)) => {
                let flaky = if report.is_flaky() { " (flaky)" } else { "" };
                task.done(format!(
                    "passed in {:.1} s{flaky}",
                    report.duration.as_secs_f64()
                ))
            }
            (Outcome::Failed, task) => {
                if let Some(task) = task {
                    task.fail(if retrying {
                        "failed, retrying"
                    } else {
                        "FAILED"
                    });
                }
                let mut text = format!(
                    "scenario {:?} ({}) failed{}\n{}",
                    report.name,
                    report.file.display(),
                    which_run(attempt, retrying),
                    report.failure_text(),
                );
                if !report.logs.is_empty() {
                    text.push('\n');
                    text.push_str(&report.logs_text());
                }
                self.ui.error(text);
            }
            (_, Some(task)) => task.fail("skipped"),
            (_, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::runner::report::tests::{failed_attempt, report};
    use crate::stack::progress::{Progress, Recording};
    use crate::ui::Verbosity;

    fn replay(verbosity: Verbosity, events: &[Event<'_>]) -> Vec<String> {
        let (ui, lines) = Ui::capturing(verbosity);
        let live = Live::new(&ui);
        for event in events {
            live.event(event);
        }
        lines.lock().unwrap().clone()
    }

    fn started(run: u32) -> Event<'static> {
        Event::ScenarioStarted {
            name: "x",
            file: Path::new("scenarios/x.yaml"),
            attempt: run,
        }
    }

    #[test]
    fn a_scenario_that_passes_after_a_retry_is_shown_failing_then_flaky() {
        let failed = report(Outcome::Failed);
        let mut passed = report(Outcome::Passed);
        passed.earlier_attempts = vec![failed_attempt(1)];
        let lines = replay(
            Verbosity::Normal,
            &[
                started(1),
                Event::ScenarioFinished {
                    report: &failed,
                    attempt: 1,
                    retrying: true,
                },
                started(2),
                Event::ScenarioFinished {
                    report: &passed,
                    attempt: 2,
                    retrying: false,
                },
            ],
        );
        assert_eq!(lines[0], "scenario x ...");
        assert_eq!(lines[1], "✗ scenario x failed, retrying");
        assert!(
            lines[2].starts_with(
                "error: scenario \"x\" (scenarios/x.yaml) failed on its first run; running it again as retry 1\n"
            ),
            "{lines:?}"
        );
        assert!(
            lines[2].contains("status: expected 200, actual 503"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "scenario x (retry 1) ...");
        assert_eq!(lines[4], "✓ scenario x (retry 1) passed in 0.0 s (flaky)");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn a_final_failure_says_failed_without_a_retry_and_quiet_keeps_only_errors() {
        let failed = report(Outcome::Failed);
        let events = [
            Event::RunStarted {
                scenarios: 1,
                jobs: 2,
            },
            Event::StackReady {
                run_id: "abc",
                ready_in: Duration::from_millis(2500),
            },
            started(1),
            Event::ScenarioFinished {
                report: &failed,
                attempt: 1,
                retrying: false,
            },
            Event::Notice {
                level: Level::Warn,
                text: "w".into(),
            },
        ];
        let normal = replay(Verbosity::Normal, &events);
        assert_eq!(normal[0], "running 1 scenario(s) with 2 job(s)");
        assert_eq!(normal[1], "stack abc ready in 2.5 s");
        assert_eq!(normal[3], "✗ scenario x FAILED");
        assert!(normal[4].starts_with("error: scenario \"x\" (scenarios/x.yaml) failed\n"));
        assert_eq!(normal[5], "warning: w");
        let quiet = replay(Verbosity::Quiet, &events);
        assert_eq!(quiet.len(), 1, "{quiet:?}");
        assert!(quiet[0].starts_with("error: scenario \"x\""));
    }

    #[test]
    fn a_failure_names_its_run_as_first_run_or_retry() {
        assert_eq!(which_run(1, false), "");
        assert_eq!(
            which_run(2, true),
            " on retry 1; running it again as retry 2"
        );
        assert_eq!(which_run(3, false), " on retry 2 too");
        assert_eq!(label("x", 3), "scenario x (retry 2)");
    }

    #[test]
    fn a_stack_s_progress_is_shown_on_its_lane_and_the_run_s_own_unlabelled() {
        let recording = Recording::default();
        let progress = Progress::new(recording.clone());
        progress.info("images: nothing to build");
        progress.task("postgres ").done("ready in 0.9 s");
        let events = recording.0.lock().unwrap().clone();
        let lane = "ab12cd34 reads gometr";
        let mut replayed: Vec<Event<'_>> = events
            .iter()
            .map(|event| Event::Stack {
                lane: Some(lane),
                event,
            })
            .collect();
        replayed.push(Event::LaneEnded { lane });
        replayed.push(Event::Stack {
            lane: None,
            event: &events[0],
        });
        assert_eq!(
            replay(Verbosity::Normal, &replayed),
            [
                "ab12cd34 reads gometr | images: nothing to build",
                "ab12cd34 reads gometr | postgres  ...",
                "ab12cd34 reads gometr | ✓ postgres  ready in 0.9 s",
                "images: nothing to build",
            ]
        );
    }
}
