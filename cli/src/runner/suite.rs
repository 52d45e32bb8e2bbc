//! A whole run: one shared stack for read-only scenarios (run in parallel), a
//! fresh stack for each isolated one, then teardown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::commands::up;
use crate::docker::reaper::{self, Owner};
use crate::docker::spec::{EnvFile, StackSpec};
use crate::docker::{attach, engine, faults, images, labels, stack};
use crate::exit::{Failure, Result};
use crate::interrupt::Interrupt;
use crate::runner::report::{Outcome, ScenarioReport};
use crate::runner::scenario::{self, ScenarioSettings};
use crate::runner::target::StackHandle;
use crate::scenario::load::Loaded;
use crate::scenario::network::{Link, NetworkAction};
use crate::ui::Ui;

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
    pub scenario: ScenarioSettings,
}

impl SuiteOptions {
    /// Whether a stack whose scenarios failed (or not) stays up.
    fn keeps(&self, failed: bool) -> bool {
        self.keep || (self.keep_failed && failed)
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

/// Starts a stack of its own run, guarded by the run's reaper from the start,
/// with the fault proxy on `links` if there are any.
async fn new_stack(
    docker: &bollard::Docker,
    built: &Built,
    links: &[Link],
    file: &EnvFile,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<StackHandle> {
    let reaper_image = built.reaper.as_deref();
    let mut spec = StackSpec::build(&built.set, file);
    if let Some(image) = &built.faultproxy {
        faults::place(&mut spec, image, links);
    }
    let run_id = labels::new_run_id();
    stack::register(&run_id);
    ui.info(format!("starting stack {run_id}"));
    let started = async {
        if !reaper::start(docker, reaper_image, &run_id, Owner::Run).await? {
            ui.warn(reaper::NO_REAPER);
        }
        stack::start(docker, &spec, &run_id, ui, &interrupt.stop).await
    };
    match started.await {
        Ok(s) => {
            ui.info(format!(
                "stack {run_id} ready in {:.1} s",
                s.ready_in.as_secs_f64()
            ));
            Ok(StackHandle {
                docker: docker.clone(),
                stack: s,
                spec,
                partitioned: Default::default(),
            })
        }
        Err(e) => {
            let _ = stack::teardown(docker, Some(&run_id), Duration::ZERO, &interrupt.force).await;
            Err(e)
        }
    }
}

async fn remove(handle: &StackHandle, ui: &Ui, interrupt: &Interrupt) {
    if let Err(e) = stack::teardown(
        &handle.docker,
        Some(&handle.stack.run_id),
        Duration::ZERO,
        &interrupt.force,
    )
    .await
    {
        ui.error(format!("teardown of {} failed: {e}", handle.stack.run_id));
    }
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

async fn fresh_stack(
    docker: &bollard::Docker,
    built: Option<&Built>,
    links: &[Link],
    file: &EnvFile,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<StackHandle> {
    let built =
        built.ok_or_else(|| Failure::environment("no images were built for a fresh stack"))?;
    new_stack(docker, built, links, file, ui, interrupt).await
}

/// Runs the scenarios; environment failures before any scenario ran are errors.
pub async fn run(
    scenarios: Vec<Loaded>,
    file: &EnvFile,
    options: &SuiteOptions,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<SuiteResult> {
    let docker = engine::connect().await?;
    let (isolated, shared): (Vec<_>, Vec<_>) = scenarios
        .iter()
        .enumerate()
        .partition(|(_, l)| l.scenario.needs_own_stack());
    let attached = match &options.stack {
        Some(id) => {
            let (stack, spec) = attach::attach(&docker, id).await?;
            for (_, l) in &isolated {
                ui.info(format!(
                    "scenario {:?} needs a stack of its own (a docker or network step, or isolated: true): starting a fresh one, not using {id}",
                    l.scenario.name
                ));
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
            built = build_images(&docker, file, any_faults, ui) => Some(Arc::new(built?)),
            _ = interrupt.stop.cancelled() => return Err(Failure::interrupted()),
        }
    } else {
        None
    };
    let stop = interrupt.stop.child_token();
    let is_attached = attached.is_some();
    let shared_handle = match (attached, &built) {
        (Some(handle), _) => Some(handle),
        (None, _) if shared.is_empty() => None,
        (None, Some(built)) => Some(new_stack(&docker, built, &[], file, ui, interrupt).await?),
        (None, None) => unreachable!("images are built whenever no stack is attached"),
    };

    let limit = Arc::new(Semaphore::new(options.jobs.max(1)));
    let env_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let any_failed = Arc::new(AtomicBool::new(false));
    let kept: Arc<std::sync::Mutex<Vec<Kept>>> = Arc::default();
    // Failed scenarios that ran on the shared stack, and all that did.
    let on_shared: Arc<std::sync::Mutex<(Vec<String>, Vec<String>)>> = Arc::default();
    let mut tasks = Vec::new();
    for (index, loaded) in shared.into_iter().chain(isolated) {
        let loaded = loaded.clone();
        let on_shared = on_shared.clone();
        let (limit, stop, env_error, any_failed, kept) = (
            limit.clone(),
            stop.clone(),
            env_error.clone(),
            any_failed.clone(),
            kept.clone(),
        );
        let (options, ui, interrupt, docker, built, file) = (
            options.clone(),
            ui.clone(),
            interrupt.clone(),
            docker.clone(),
            built.clone(),
            file.clone(),
        );
        let shared_handle = shared_handle.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            if stop.is_cancelled() {
                return (index, not_run(&loaded, None));
            }
            let own = shared_handle.is_none() || loaded.scenario.needs_own_stack();
            let mut handle = match (own, shared_handle) {
                (false, Some(h)) => h,
                _ => match fresh_stack(
                    &docker,
                    built.as_deref(),
                    &fault_links(&loaded),
                    &file,
                    &ui,
                    &interrupt,
                )
                .await
                {
                    Ok(h) => h,
                    Err(e) => {
                        *env_error.lock().expect("env error") = Some(e.message.clone());
                        return (
                            index,
                            not_run(
                                &loaded,
                                Some(format!("its stack did not start: {}", e.message)),
                            ),
                        );
                    }
                },
            };
            let task = ui.task(format!("scenario {}", loaded.scenario.name));
            let report = scenario::run(&loaded, &mut handle, &options.scenario, &stop).await;
            match report.outcome {
                Outcome::Passed => {
                    task.done(format!("passed in {:.1} s", report.duration.as_secs_f64()))
                }
                Outcome::Failed => {
                    task.fail("FAILED");
                    any_failed.store(true, Ordering::SeqCst);
                    if options.fail_fast {
                        stop.cancel();
                    }
                    ui.error(format!(
                        "scenario {:?} ({}) failed\n{}\n{}",
                        report.name,
                        report.file.display(),
                        report.failure_text(),
                        report.logs_text()
                    ));
                }
                Outcome::Skipped => task.fail("skipped"),
            }
            let failed = report.outcome == Outcome::Failed;
            if !own {
                let mut names = on_shared.lock().expect("shared scenarios");
                names.1.push(report.name.clone());
                if failed {
                    names.0.push(report.name.clone());
                }
            } else if options.keeps(failed) {
                kept.lock().expect("kept").push(Kept {
                    handle,
                    scenarios: vec![report.name.clone()],
                });
            } else {
                remove(&handle, &ui, &interrupt).await;
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
        let (failed, all) = std::mem::take(&mut *on_shared.lock().expect("shared scenarios"));
        if options.keeps(!failed.is_empty()) {
            let scenarios = if failed.is_empty() { all } else { failed };
            kept.push(Kept {
                handle: h,
                scenarios,
            });
        } else {
            remove(&h, &ui.clone(), interrupt).await;
        }
    }
    for k in &kept {
        // A kept stack outlives this process until the default time to live.
        let run_id = &k.handle.stack.run_id;
        let note = k.scenarios.join("; ");
        if let Err(e) = reaper::release_to_ttl(run_id, Some(up::DEFAULT_TTL), Some(&note)) {
            ui.error(e.message);
        }
        stack::release(run_id);
    }
    if interrupt.stop.is_cancelled() {
        return Err(Failure::interrupted());
    }
    let environment_error = env_error.lock().expect("env error").clone();
    Ok(SuiteResult {
        reports: reports.into_iter().map(|(_, r)| r).collect(),
        environment_error,
        kept,
    })
}
