//! A whole run: one shared stack for read-only scenarios (run in parallel), a
//! fresh stack for each isolated one, retries of failed scenarios, then
//! teardown. What happens is told to a [`Reporter`] as events; the suite
//! itself prints nothing (the engine layer below still reports image builds
//! and service start-up through [`Ui`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::docker::reaper::{self, Owner};
use crate::docker::spec::{EnvFile, StackSpec};
use crate::docker::{attach, engine, faults, images, labels, stack};
use crate::exit::{ExitKind, Failure, Result};
use crate::interrupt::Interrupt;
use crate::runner::event::{Event, Level, Reporter};
use crate::runner::report::{Attempt, Outcome, ScenarioReport};
use crate::runner::scenario::{self, ScenarioSettings};
use crate::runner::target::StackHandle;
use crate::scenario::load::Loaded;
use crate::scenario::network::{Link, NetworkAction};
use crate::ui::Ui;

/// How long a stack kept by `--keep` or `--keep-failed` outlives the run.
pub const KEPT_TTL: Duration = Duration::from_secs(8 * 3600);

/// How the run behaves.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    pub jobs: usize,
    pub fail_fast: bool,
    /// Leave stacks running for debugging.
    pub keep: bool,
    /// Leave only the stacks of failed scenarios running.
    pub keep_failed: bool,
    /// Run on this existing stack (`run --stack ID`) and leave it up.
    pub stack: Option<String>,
    /// Attempts after the first for a failed scenario (`--retries`).
    pub retries: u32,
    pub scenario: ScenarioSettings,
}

impl SuiteOptions {
    /// Whether a stack whose scenarios failed (or not) stays up.
    fn keeps(&self, failed: bool) -> bool {
        self.keep || (self.keep_failed && failed)
    }

    /// Whether a scenario that failed on `attempt` (from 1) is run again.
    fn retries_after(&self, attempt: u32) -> bool {
        attempt <= self.retries
    }
}

/// A stack left running after the run (`--keep`, `--keep-failed`).
pub struct Kept {
    pub handle: StackHandle,
    /// The scenarios it is kept for.
    pub scenarios: Vec<String>,
}

/// Result of a run: every scenario's report, and whether the environment failed.
pub struct SuiteResult {
    pub reports: Vec<ScenarioReport>,
    pub environment_error: Option<String>,
    /// Stacks left running by --keep or --keep-failed.
    pub kept: Vec<Kept>,
}

fn not_run(loaded: &Loaded, error: Option<String>) -> ScenarioReport {
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

/// The run when the shared stack did not start: every scenario failed with
/// the reason, so that reports (JUnit, JSON) still say why.
fn stack_failed(scenarios: &[Loaded], failure: Failure) -> SuiteResult {
    SuiteResult {
        reports: scenarios
            .iter()
            .map(|l| stack_not_started(l, &failure))
            .collect(),
        environment_error: Some(failure.message),
        kept: vec![],
    }
}

/// What every scenario task of a run shares.
struct Context {
    docker: bollard::Docker,
    /// The images fresh stacks need; none when every scenario runs on an
    /// attached stack.
    built: Option<Built>,
    file: EnvFile,
    options: SuiteOptions,
    /// Only for the engine layer, which reports builds and start-up itself.
    ui: Ui,
    interrupt: Interrupt,
    reporter: Arc<dyn Reporter>,
    /// Cancelled by fail-fast and by Ctrl-C.
    stop: CancellationToken,
    environment_error: Mutex<Option<String>>,
    any_failed: AtomicBool,
}

impl Context {
    fn notice(&self, level: Level, text: impl Into<String>) {
        self.reporter.event(&Event::Notice {
            level,
            text: text.into(),
        });
    }

    /// Starts a stack of its own run, guarded by the run's reaper from the
    /// start, with the fault proxy on `links` if there are any and a pinned
    /// subnet if `partitions` (a scenario cuts services off and heals them).
    async fn new_stack(&self, links: &[Link], partitions: bool) -> Result<StackHandle> {
        let built = self
            .built
            .as_ref()
            .ok_or_else(|| Failure::environment("no images were built for a fresh stack"))?;
        let reaper_image = &built.reaper;
        let mut spec = StackSpec::build(&built.set, &self.file);
        spec.pinned_subnet = partitions;
        if let Some(image) = &built.faultproxy {
            faults::place(&mut spec, image, links);
        }
        let run_id = labels::new_run_id();
        stack::register(&run_id);
        self.reporter
            .event(&Event::StackStarting { run_id: &run_id });
        let started = async {
            if !reaper::start(&self.docker, reaper_image.as_deref(), &run_id, Owner::Run).await? {
                self.notice(Level::Warn, reaper::NO_REAPER);
            }
            stack::start(&self.docker, &spec, &run_id, &self.ui, &self.interrupt.stop).await
        };
        match started.await {
            Ok(s) => {
                self.reporter.event(&Event::StackReady {
                    run_id: &run_id,
                    ready_in: s.ready_in,
                });
                Ok(StackHandle {
                    docker: self.docker.clone(),
                    stack: s,
                    spec,
                    partitioned: Default::default(),
                })
            }
            Err(e) => {
                let force = &self.interrupt.force;
                let _ = stack::teardown(&self.docker, Some(&run_id), Duration::ZERO, force).await;
                Err(e.into())
            }
        }
    }

    async fn remove(&self, handle: &StackHandle) {
        let run_id = &handle.stack.run_id;
        let force = &self.interrupt.force;
        if let Err(e) = stack::teardown(&handle.docker, Some(run_id), Duration::ZERO, force).await {
            self.notice(Level::Error, format!("teardown of {run_id} failed: {e}"));
        }
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
        shared: Option<StackHandle>,
    ) -> (ScenarioReport, Option<StackHandle>) {
        let own = shared.is_none() || loaded.scenario.needs_own_stack();
        let mut earlier: Vec<Attempt> = Vec::new();
        let mut attempt = 1;
        loop {
            let mut handle = match (own, &shared) {
                (false, Some(h)) => h.clone(),
                _ => match self
                    .new_stack(&fault_links(loaded), has_partitions(loaded))
                    .await
                {
                    Ok(h) => h,
                    Err(e) => {
                        *self.environment_error.lock().expect("environment error") =
                            Some(e.message.clone());
                        let mut report = stack_not_started(loaded, &e);
                        report.attempts = attempt;
                        report.earlier_attempts = std::mem::take(&mut earlier);
                        return (report, None);
                    }
                },
            };
            let mut report = self.attempt(loaded, &mut handle, attempt).await;
            report.attempts = attempt;
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

/// Images a run needs besides the stack's.
struct Built {
    reaper: Option<String>,
    set: images::ImageSet,
    /// The fault proxy's, when a scenario has link faults.
    faultproxy: Option<String>,
}

/// The links a scenario's network steps put faults on.
fn fault_links(loaded: &Loaded) -> Vec<Link> {
    loaded
        .scenario
        .network_actions()
        .filter_map(|n| match n {
            NetworkAction::Link { link, .. } => Some(link.clone()),
            _ => None,
        })
        .collect()
}

/// Whether a scenario's network steps cut a service off (and heal it).
fn has_partitions(loaded: &Loaded) -> bool {
    loaded
        .scenario
        .network_actions()
        .any(|n| matches!(n, NetworkAction::Partition(_)))
}

/// The reaper's image (if it can be built), the stack's images, and the
/// fault proxy's if `faults` (some scenario has link faults).
async fn build_images(
    docker: &bollard::Docker,
    file: &EnvFile,
    faults: bool,
    ui: &Ui,
) -> Result<Built> {
    let reaper = reaper::image_or_warn(docker, ui).await;
    let set = images::ensure(docker, &file.images, ui).await?;
    let faultproxy = match faults {
        true => Some(faults::image(docker, ui).await?),
        false => None,
    };
    Ok(Built {
        reaper,
        set,
        faultproxy,
    })
}

/// Failed scenarios that ran on the shared stack, and all that did.
#[derive(Default)]
struct OnShared {
    failed: Vec<String>,
    all: Vec<String>,
}

/// Runs the scenarios; environment failures before any scenario ran are errors.
pub async fn run(
    scenarios: Vec<Loaded>,
    file: &EnvFile,
    options: &SuiteOptions,
    reporter: Arc<dyn Reporter>,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<SuiteResult> {
    reporter.event(&Event::RunStarted {
        scenarios: scenarios.len(),
        jobs: options.jobs,
    });
    let docker = engine::connect().await?;
    let (isolated, shared): (Vec<_>, Vec<_>) = scenarios
        .iter()
        .enumerate()
        .partition(|(_, l)| l.scenario.needs_own_stack());
    let attached = match &options.stack {
        Some(id) => {
            let (stack, spec) = attach::attach(&docker, id).await?;
            for (_, l) in &isolated {
                reporter.event(&Event::Notice {
                    level: Level::Info,
                    text: format!(
                        "scenario {:?} needs a stack of its own (a docker or network step, or isolated: true): starting a fresh one, not using {id}",
                        l.scenario.name
                    ),
                });
            }
            Some(StackHandle {
                docker: docker.clone(),
                stack,
                spec,
                partitioned: Default::default(),
            })
        }
        None => None,
    };
    let any_faults = isolated.iter().any(|(_, l)| !fault_links(l).is_empty());
    // On an existing stack, images are built only if a fresh stack is needed.
    let built = if attached.is_none() || !isolated.is_empty() {
        tokio::select! {
            built = build_images(&docker, file, any_faults, ui) => Some(built?),
            _ = interrupt.stop.cancelled() => return Err(Failure::interrupted()),
        }
    } else {
        None
    };
    let is_attached = attached.is_some();
    let context = Arc::new(Context {
        docker,
        built,
        file: file.clone(),
        options: options.clone(),
        ui: ui.clone(),
        interrupt: interrupt.clone(),
        reporter,
        stop: interrupt.stop.child_token(),
        environment_error: Mutex::default(),
        any_failed: AtomicBool::new(false),
    });
    let shared_handle = match attached {
        Some(handle) => Some(handle),
        None if shared.is_empty() => None,
        None => match context.new_stack(&[], false).await {
            Ok(handle) => Some(handle),
            // Every scenario fails with the reason, and the reports still say why.
            Err(e) if e.kind == ExitKind::Environment => return Ok(stack_failed(&scenarios, e)),
            Err(e) => return Err(e),
        },
    };

    let limit = Arc::new(Semaphore::new(options.jobs.max(1)));
    let kept: Arc<Mutex<Vec<Kept>>> = Arc::default();
    let on_shared: Arc<Mutex<OnShared>> = Arc::default();
    let mut tasks = Vec::new();
    for (index, loaded) in shared.into_iter().chain(isolated) {
        let loaded = loaded.clone();
        let (context, limit, kept, on_shared) = (
            context.clone(),
            limit.clone(),
            kept.clone(),
            on_shared.clone(),
        );
        let shared_handle = shared_handle.clone();
        tasks.push(tokio::spawn(async move {
            let permit = limit.acquire_owned().await;
            if context.stop.is_cancelled() {
                return (index, not_run(&loaded, None));
            }
            let (report, own) = context.scenario(&loaded, shared_handle).await;
            // Removing a stack only waits on the engine: the next scenario
            // starts meanwhile.
            drop(permit);
            let failed = report.outcome == Outcome::Failed;
            if failed {
                context.any_failed.store(true, Ordering::SeqCst);
                if context.options.fail_fast {
                    context.stop.cancel();
                }
            }
            match own {
                None if report.stack.is_some() => {
                    let mut names = on_shared.lock().expect("shared scenarios");
                    names.all.push(report.name.clone());
                    if failed {
                        names.failed.push(report.name.clone());
                    }
                }
                None => {}
                Some(handle) if context.options.keeps(failed) => {
                    kept.lock().expect("kept").push(Kept {
                        handle,
                        scenarios: vec![report.name.clone()],
                    })
                }
                Some(handle) => context.remove(&handle).await,
            }
            (index, report)
        }));
    }
    let mut reports: Vec<(usize, ScenarioReport)> = Vec::new();
    for task in tasks {
        match task.await {
            Ok(r) => reports.push(r),
            Err(e) => {
                return Err(Failure::environment(format!(
                    "a scenario task crashed: {e}"
                )));
            }
        }
    }
    reports.sort_by_key(|(i, _)| *i);
    let mut kept = std::mem::take(&mut *kept.lock().expect("kept"));
    // An attached stack is not ours: it stays as it was.
    if let Some(h) = shared_handle.filter(|_| !is_attached) {
        let OnShared { failed, all } = std::mem::take(&mut *on_shared.lock().expect("shared"));
        if options.keeps(!failed.is_empty()) {
            let scenarios = if failed.is_empty() { all } else { failed };
            kept.push(Kept {
                handle: h,
                scenarios,
            });
        } else {
            context.remove(&h).await;
        }
    }
    for k in &kept {
        // A kept stack outlives this process until the default time to live.
        let run_id = &k.handle.stack.run_id;
        let note = k.scenarios.join("; ");
        if let Err(e) = reaper::release_to_ttl(run_id, Some(KEPT_TTL), Some(&note)) {
            context.notice(Level::Error, e.to_string());
        }
        stack::release(run_id);
    }
    context.reporter.event(&Event::RunFinished);
    if interrupt.stop.is_cancelled() {
        return Err(Failure::interrupted());
    }
    let environment_error = context
        .environment_error
        .lock()
        .expect("environment error")
        .clone();
    Ok(SuiteResult {
        reports: reports.into_iter().map(|(_, r)| r).collect(),
        environment_error,
        kept,
    })
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

    fn options(keep: bool, keep_failed: bool, retries: u32) -> SuiteOptions {
        SuiteOptions {
            jobs: 2,
            fail_fast: false,
            keep,
            keep_failed,
            stack: None,
            retries,
            scenario: ScenarioSettings {
                request_timeout: Duration::from_secs(1),
                default_timeout: Duration::from_secs(1),
                vars: vec![],
                log_lines: 10,
            },
        }
    }

    #[test]
    fn keep_keeps_every_stack_and_keep_failed_only_the_failed_ones() {
        assert!(!options(false, false, 0).keeps(true));
        assert!(options(true, false, 0).keeps(false));
        assert!(options(false, true, 0).keeps(true));
        assert!(!options(false, true, 0).keeps(false));
    }

    #[test]
    fn a_failed_attempt_is_retried_only_while_retries_are_left() {
        let twice = options(false, false, 2);
        assert!(twice.retries_after(1));
        assert!(twice.retries_after(2));
        assert!(!twice.retries_after(3));
        assert!(!options(false, false, 0).retries_after(1));
    }

    #[test]
    fn links_and_partitions_are_read_from_the_network_steps() {
        let faults = loaded(
            "  - network: { link: checker->postgres, latency: 1s }\n  - network: { link: api->postgres, down: true }\n",
        );
        let links: Vec<String> = fault_links(&faults).iter().map(|l| l.to_string()).collect();
        assert_eq!(links, ["checker->postgres", "api->postgres"]);
        assert!(!has_partitions(&faults));
        let cut = loaded("  - network: { partition: gometr }\n  - network: { heal: gometr }\n");
        assert!(fault_links(&cut).is_empty());
        assert!(has_partitions(&cut));
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
