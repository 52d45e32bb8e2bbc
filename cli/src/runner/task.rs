//! One scenario task of a run: what every task shares (the engine, the
//! images, the options, the reporter), and a scenario's way from its permit
//! through its stack's start, its attempts and retries, to its stack's
//! removal or keeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::{self, labels};
use crate::exit::{ExitKind, Failure, Result};
use crate::interrupt::Interrupt;
use crate::runner::event::{Event, Level, Reporter, stack_progress};
use crate::runner::needs::Needs;
use crate::runner::report::{Attempt, Outcome, ScenarioReport};
use crate::runner::scenario;
use crate::runner::shared::SharedStack;
use crate::runner::suite::{Kept, SuiteOptions};
use crate::runner::target::StackHandle;
use crate::scenario::load::Loaded;
use crate::scenarios::Environments;
use crate::stack;
use crate::stack::faults;
use crate::stack::provision::Built;
use crate::stack::reaper::{self, Owner};
use crate::stack::spec::StackSpec;

pub(crate) fn not_run(loaded: &Loaded, error: Option<String>) -> ScenarioReport {
    ScenarioReport {
        file: loaded.file.clone(),
        name: loaded.scenario.name.clone(),
        tags: loaded.scenario.tags.clone(),
        line: None,
        outcome: if error.is_some() {
            Outcome::Failed
        } else {
            Outcome::Skipped
        },
        duration: Duration::ZERO,
        steps: vec![],
        stack: None,
        error,
        isolated: loaded.scenario.isolation().reason(),
        neighbours: vec![],
        service_deaths: vec![],
        logs: Default::default(),
        attempts: 0,
        earlier_attempts: vec![],
    }
}

/// A scenario whose stack did not start: the error, and the last log lines of
/// the service that failed, for every report.
fn stack_not_started(loaded: &Loaded, failure: &Failure) -> ScenarioReport {
    let error = format!("its stack did not start: {}", failure.message);
    let mut report = not_run(loaded, Some(error));
    report.logs = failure.logs.clone();
    report
}

/// What every scenario task of a run shares.
pub struct Context {
    pub(crate) engine: engine::Client,
    /// The images fresh stacks need; none when every scenario runs on an
    /// attached stack.
    pub(crate) built: Option<Built>,
    /// The run's own environment and those of folders with their own file.
    pub(crate) environments: Environments,
    pub(crate) options: SuiteOptions,
    pub(crate) interrupt: Interrupt,
    pub(crate) reporter: Arc<dyn Reporter>,
    /// Cancelled by fail-fast and by Ctrl-C.
    pub(crate) stop: CancellationToken,
    pub(crate) environment_error: Mutex<Option<String>>,
    pub(crate) any_failed: AtomicBool,
    /// Stacks left running past the run.
    pub(crate) kept: Mutex<Vec<Kept>>,
    /// More than one stack starts: each one's progress lines carry its run
    /// id and scenario.
    pub(crate) labelled: bool,
}

/// `RUN_ID SCENARIO` for a stack's progress lines, the name cut to fit a line.
fn lane_label(run_id: &str, whom: &str) -> String {
    const WIDTH: usize = 40;
    match whom.char_indices().nth(WIDTH) {
        Some((cut, _)) => format!("{run_id} {}…", &whom[..cut]),
        None => format!("{run_id} {whom}"),
    }
}

impl Context {
    pub(crate) fn environment_failed(&self, failure: &Failure) {
        *self.environment_error.lock().expect("environment error") = Some(failure.message.clone());
    }

    pub(crate) fn notice(&self, level: Level, text: impl Into<String>) {
        self.reporter.event(&Event::Notice {
            level,
            text: text.into(),
        });
    }

    /// Starts a stack of its own run, guarded by the run's reaper from the
    /// start, shaped by what its scenario `needs`: the fault proxy on its
    /// links, a pinned subnet if it cuts services off and heals them, and
    /// PostgreSQL's data on a volume or in memory.
    /// Starts a stack for `whom` (a scenario's name, or "shared").
    pub(crate) async fn new_stack(
        &self,
        needs: &Needs,
        env: usize,
        whom: &str,
    ) -> Result<StackHandle> {
        let built = self
            .built
            .as_ref()
            .ok_or_else(|| Failure::environment("no images were built for a fresh stack"))?;
        let reaper_image = &built.reaper;
        let mut file = self.environments.list[env].file.clone();
        file.postgres.data = file.postgres.data.or(Some(
            needs.data(self.options.keep || self.options.keep_failed),
        ));
        let mut spec = StackSpec::build(&built.sets[env], &file);
        spec.pinned_subnet = needs.partitions;
        if let Some(image) = &built.faultproxy {
            faults::place(&mut spec, image, &needs.links);
        }
        let run_id = labels::new_run_id();
        stack::register(&run_id);
        self.reporter.event(&Event::StackStarting {
            run_id: &run_id,
            whom,
        });
        let started = async {
            if !reaper::start(&self.engine, reaper_image.as_deref(), &run_id, Owner::Run).await? {
                self.notice(Level::Warn, reaper::NO_REAPER);
            }
            let lane = self.labelled.then(|| lane_label(&run_id, whom));
            let progress = stack_progress(&self.reporter, lane.clone());
            let started = stack::start(
                &self.engine,
                &spec,
                &run_id,
                &progress,
                &self.interrupt.stop,
            )
            .await;
            if let Some(lane) = &lane {
                self.reporter.event(&Event::LaneEnded { lane });
            }
            started
        };
        match started.await {
            Ok(s) => {
                self.reporter.event(&Event::StackReady {
                    run_id: &run_id,
                    ready_in: s.ready_in,
                });
                Ok(StackHandle::new(self.engine.clone(), s, spec).await)
            }
            Err(e) => {
                let force = &self.interrupt.force;
                let _ = stack::teardown(&self.engine, Some(&run_id), Duration::ZERO, force).await;
                Err(e.into())
            }
        }
    }

    pub(crate) async fn remove(&self, handle: &StackHandle) {
        // Its start and its scenario are over: nothing of it is still being created.
        let run_id = &handle.stack.run_id;
        if let Err(e) = stack::teardown_settled(&handle.engine, run_id).await {
            self.notice(Level::Error, format!("teardown of {run_id} failed: {e}"));
        }
    }

    /// One scenario from its permit to its stack's removal (or keeping).
    pub(crate) async fn run_one(
        &self,
        loaded: &Loaded,
        shared: Option<Arc<SharedStack>>,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> ScenarioReport {
        if permit.is_none() || self.stop.is_cancelled() {
            if let Some(shared) = &shared {
                shared.done(self, None).await;
            }
            return not_run(loaded, None);
        }
        let (report, own) = match &shared {
            Some(stack) => match stack.handle(self).await {
                Ok(handle) => self.scenario(loaded, Some((stack, handle))).await,
                Err(e) => {
                    if e.kind == ExitKind::Environment {
                        self.environment_failed(&e);
                    }
                    (stack_not_started(loaded, &e), None)
                }
            },
            None => self.scenario(loaded, None).await,
        };
        // Removing a stack only waits on the engine: the next scenario
        // starts meanwhile.
        drop(permit);
        let failed = report.outcome == Outcome::Failed;
        if failed {
            self.any_failed.store(true, Ordering::SeqCst);
            if self.options.fail_fast {
                self.stop.cancel();
            }
        }
        match (&shared, own) {
            (Some(stack), _) => stack.done(self, Some(&report)).await,
            (None, Some(handle)) if self.options.keeps(failed) => self.keep(Kept {
                handle,
                scenarios: vec![report.name.clone()],
            }),
            (None, Some(handle)) => self.remove(&handle).await,
            (None, None) => {}
        }
        report
    }

    /// Leaves a stack running past the run (`--keep`, `--keep-failed`).
    pub(crate) fn keep(&self, kept: Kept) {
        self.kept.lock().expect("kept").push(kept);
    }

    /// Runs one attempt of a scenario on `handle`, telling the reporter.
    async fn attempt(
        &self,
        loaded: &Loaded,
        handle: &mut StackHandle,
        attempt: u32,
    ) -> ScenarioReport {
        let name = loaded.scenario.name.as_str();
        self.reporter.event(&Event::ScenarioStarted {
            name,
            file: &loaded.file,
            attempt,
        });
        let on_step = |step: &_| {
            self.reporter.event(&Event::StepFinished {
                scenario: name,
                attempt,
                step,
            })
        };
        scenario::run(loaded, handle, &self.options.scenario, &self.stop, &on_step).await
    }

    /// Runs a scenario, again after a failure while `--retries` allows: on the
    /// shared stack, or on a fresh stack of its own for each attempt.
    /// Returns its report and the stack of its own it last ran on.
    async fn scenario(
        &self,
        loaded: &Loaded,
        shared: Option<(&SharedStack, StackHandle)>,
    ) -> (ScenarioReport, Option<StackHandle>) {
        let own = shared.is_none() || loaded.scenario.needs_own_stack();
        let mut earlier: Vec<Attempt> = Vec::new();
        let mut attempt = 1;
        loop {
            let mut handle = match (own, &shared) {
                (false, Some((_, h))) => h.clone(),
                _ => match self
                    .new_stack(
                        &Needs::of(loaded),
                        self.environments.index_of(&loaded.file),
                        &loaded.scenario.name,
                    )
                    .await
                {
                    Ok(h) => h,
                    Err(e) => {
                        self.environment_failed(&e);
                        let mut report = stack_not_started(loaded, &e);
                        report.attempts = attempt;
                        report.earlier_attempts = std::mem::take(&mut earlier);
                        return (report, None);
                    }
                },
            };
            let visit = shared
                .as_ref()
                .filter(|_| !own)
                .map(|(s, _)| (s, s.enter(loaded)));
            let mut report = self.attempt(loaded, &mut handle, attempt).await;
            report.attempts = attempt;
            if let Some((stack, visit)) = visit {
                let beside = stack.leave(visit);
                if report.outcome == Outcome::Failed {
                    report.neighbours = beside;
                }
            }
            let retrying = report.outcome == Outcome::Failed
                && self.options.retries_after(attempt)
                && !self.stop.is_cancelled();
            if !retrying {
                report.earlier_attempts = std::mem::take(&mut earlier);
            }
            self.reporter.event(&Event::ScenarioFinished {
                report: &report,
                attempt,
                retrying,
            });
            if !retrying {
                return (report, own.then_some(handle));
            }
            earlier.push(Attempt::of(&report));
            if own {
                self.remove(&handle).await;
            }
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::load::parse;
    use crate::scenario::references::Context as References;

    fn loaded(steps: &str) -> Loaded {
        let text = format!("name: s\ntags: [t]\nsteps:\n{steps}");
        parse(Path::new("s.yaml"), &text, &References::default()).expect("valid")
    }

    #[test]
    fn a_scenario_whose_stack_did_not_start_fails_with_the_reason_and_the_logs() {
        let l = loaded("  - sleep: 1ms\n");
        let failure = Failure::environment("create container x: boom")
            .with_logs("postgres", "initdb failed".into());
        let report = stack_not_started(&l, &failure);
        assert_eq!(report.outcome, Outcome::Failed);
        assert_eq!(
            report.error.as_deref(),
            Some("its stack did not start: create container x: boom")
        );
        assert_eq!(report.logs["postgres"], "initdb failed");
        assert_eq!(report.tags, ["t"]);
        assert_eq!(report.attempts, 0);
        let skipped = not_run(&l, None);
        assert_eq!(skipped.outcome, Outcome::Skipped);
    }
}
