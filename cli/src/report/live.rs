//! The terminal reporter: runner events as progress lines (spinners on a
//! terminal, plain lines in CI logs), failures in full as they happen.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::runner::event::{Event, Level, Reporter};
use crate::runner::report::Outcome;
use crate::ui::{Task, Ui};

/// Prints a run's progress through [`Ui`].
pub struct Live {
    ui: Ui,
    /// The open task line of each running scenario attempt.
    tasks: Mutex<HashMap<(String, u32), Task>>,
}

impl Live {
    pub fn new(ui: &Ui) -> Live {
        Live {
            ui: ui.clone(),
            tasks: Mutex::default(),
        }
    }

    fn take_task(&self, name: &str, attempt: u32) -> Option<Task> {
        self.tasks
            .lock()
            .expect("task lines")
            .remove(&(name.to_owned(), attempt))
    }
}

fn label(name: &str, attempt: u32) -> String {
    if attempt > 1 {
        format!("scenario {name} (attempt {attempt})")
    } else {
        format!("scenario {name}")
    }
}

impl Reporter for Live {
    fn event(&self, event: &Event<'_>) {
        let ui = &self.ui;
        match event {
            Event::RunStarted { scenarios, jobs } => ui.info(format!(
                "running {scenarios} scenario(s) with {jobs} job(s)"
            )),
            Event::StackStarting { run_id } => ui.info(format!("starting stack {run_id}")),
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
            } => {
                let task = self.take_task(&report.name, *attempt);
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
                            task.fail(if *retrying {
                                "failed, retrying"
                            } else {
                                "FAILED"
                            });
                        }
                        let mut text = format!(
                            "scenario {:?} ({}) failed{}\n{}",
                            report.name,
                            report.file.display(),
                            if *retrying {
                                format!(" on attempt {attempt}; it will be retried")
                            } else {
                                String::new()
                            },
                            report.failure_text(),
                        );
                        if !report.logs.is_empty() {
                            text.push('\n');
                            text.push_str(&report.logs_text());
                        }
                        ui.error(text);
                    }
                    (_, Some(task)) => task.fail("skipped"),
                    (_, None) => {}
                }
            }
            Event::Notice { level, text } => match level {
                Level::Debug => ui.debug(text),
                Level::Info => ui.info(text),
                Level::Warn => ui.warn(text),
                Level::Error => ui.error(text),
            },
            Event::RunFinished => {}
        }
    }
}
