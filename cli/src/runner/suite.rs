//! A whole run: one shared stack for read-only scenarios (run in parallel), a
//! fresh stack for each isolated one, retries of failed scenarios, then
//! teardown. What happens is told to a [`Reporter`] as events, the stack
//! layer's image builds and service start-ups among them; the suite itself
//! prints nothing.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::engine;
use crate::exit::{ExitKind, Failure, Result};
use crate::interrupt::Interrupt;
use crate::runner::event::{Event, Level, Reporter, stack_progress};
use crate::runner::needs::fault_links;
use crate::runner::report::ScenarioReport;
use crate::runner::scenario::ScenarioSettings;
use crate::runner::shared::SharedStack;
use crate::runner::target::StackHandle;
use crate::runner::task::Context;
use crate::scenario::load::Loaded;
use crate::scenario::model::Action;
use crate::scenarios::Environments;
use crate::stack;
use crate::stack::attach;
use crate::stack::provision;
use crate::stack::reaper;

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
    pub(crate) fn keeps(&self, failed: bool) -> bool {
        self.keep || (self.keep_failed && failed)
    }

    /// Whether a scenario that failed on `attempt` (from 1) is run again.
    pub(crate) fn retries_after(&self, attempt: u32) -> bool {
        attempt <= self.retries
    }
}

/// A stack left running after the run (`--keep`, `--keep-failed`).
pub struct Kept {
    pub handle: StackHandle,
    /// The scenarios it is kept for.
    pub scenarios: Vec<String>,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("run_id", &self.handle.stack.run_id)
            .field("scenarios", &self.scenarios)
            .finish()
    }
}

/// Result of a run: every scenario's report, and whether the environment failed.
pub struct SuiteResult {
    pub reports: Vec<ScenarioReport>,
    pub environment_error: Option<String>,
    /// Stacks left running by --keep or --keep-failed.
    pub kept: Vec<Kept>,
}

/// The order scenarios start in: the longest expected first, so that the run
/// does not end waiting on one that started last. Those with a stack of their
/// own come before those on the shared stack (a stack's start and removal are
/// most of a short scenario's time); then a longer declared `timeout`, longer
/// sleeps, more steps. Otherwise the file order holds.
fn schedule(scenarios: &[Loaded]) -> Vec<usize> {
    let expected = |loaded: &Loaded| {
        let s = &loaded.scenario;
        let sleeps: Duration = s
            .steps
            .iter()
            .filter_map(|step| match step.action {
                Action::Sleep(d) => Some(d),
                _ => None,
            })
            .sum();
        let timeout = s.timeout.map(|t| t.0).unwrap_or_default();
        (s.needs_own_stack(), timeout, sleeps, s.steps.len())
    };
    let mut order: Vec<usize> = (0..scenarios.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(expected(&scenarios[i])));
    order
}

/// Runs the scenarios; environment failures before any scenario ran are errors.
pub async fn run(
    scenarios: Vec<Loaded>,
    environments: &Environments,
    options: &SuiteOptions,
    reporter: Arc<dyn Reporter>,
    interrupt: &Interrupt,
) -> Result<SuiteResult> {
    reporter.event(&Event::RunStarted {
        scenarios: scenarios.len(),
        jobs: options.jobs,
    });
    let engine = engine::connect().await?;
    let isolated: Vec<&Loaded> = scenarios
        .iter()
        .filter(|l| l.scenario.needs_own_stack())
        .collect();
    // Each environment's scenarios that share a stack.
    let mut on_shared = vec![0; environments.list.len()];
    for l in scenarios.iter().filter(|l| !l.scenario.needs_own_stack()) {
        on_shared[environments.index_of(&l.file)] += 1;
    }
    let attached = match &options.stack {
        Some(id) => Some(attach(&engine, id, &isolated, environments, &*reporter).await?),
        None => None,
    };
    let any_faults = isolated.iter().any(|l| !fault_links(l).is_empty());
    // On an existing stack, images are built only if a fresh stack is needed.
    let fresh = !isolated.is_empty() || on_shared.iter().skip(1).any(|n| *n > 0);
    let choices = environments.image_choices();
    let built = if attached.is_none() || fresh {
        let progress = stack_progress(&reporter, None);
        tokio::select! {
            built = provision::build_images(&engine, &choices, any_faults, &progress) => Some(built?),
            _ = interrupt.stop.cancelled() => return Err(Failure::interrupted()),
        }
    } else {
        None
    };
    let context = Arc::new(Context {
        engine,
        built,
        environments: environments.clone(),
        options: options.clone(),
        interrupt: interrupt.clone(),
        reporter,
        stop: interrupt.stop.child_token(),
        environment_error: Mutex::default(),
        any_failed: AtomicBool::new(false),
        kept: Mutex::default(),
        labelled: isolated.len() + on_shared.iter().filter(|&&n| n > 0).count() > 1,
    });
    let shared_stacks = shared_stacks(&context, &on_shared, attached);
    let reports = run_all(&context, &scenarios, &shared_stacks).await?;
    finish(&context, reports, &shared_stacks).await
}

/// `run --stack ID`: the stack to run on, and a notice for each scenario
/// (or environment) that gets a fresh stack instead.
async fn attach(
    engine: &engine::Client,
    id: &str,
    isolated: &[&Loaded],
    environments: &Environments,
    reporter: &dyn Reporter,
) -> Result<StackHandle> {
    let (stack, spec) = attach::attach(engine, id).await?;
    let mut notices = Vec::new();
    for l in isolated {
        let why = l.scenario.isolation().reason().unwrap_or_default();
        notices.push(format!(
            "scenario {:?} needs a stack of its own ({why}): starting a fresh one, not using {id}",
            l.scenario.name
        ));
    }
    for environment in environments.list.iter().skip(1) {
        let folder = environment.folders.last();
        notices.push(format!(
            "the scenarios under {} have an environment of their own: starting a stack from it, not using {id}",
            folder.map(|f| f.display().to_string()).unwrap_or_default()
        ));
    }
    for text in notices {
        reporter.event(&Event::Notice {
            level: Level::Info,
            text,
        });
    }
    Ok(StackHandle::new(engine.clone(), stack, spec).await)
}

/// Each environment's shared stack, started now, beside the first stacks of
/// their own rather than before them; its scenarios wait for it. The
/// attached stack (`run --stack ID`) stands for the run's own environment.
fn shared_stacks(
    context: &Arc<Context>,
    on_shared: &[usize],
    mut attached: Option<StackHandle>,
) -> Vec<Option<Arc<SharedStack>>> {
    on_shared
        .iter()
        .enumerate()
        .map(|(env, &count)| {
            if env == 0
                && let Some(handle) = attached.take()
            {
                return Some(SharedStack::attached(handle, count));
            }
            (count > 0).then(|| SharedStack::start(context, env, count))
        })
        .collect()
}

/// Every scenario, `jobs` at a time, in the order of [`schedule`]; their
/// reports in the order given.
async fn run_all(
    context: &Arc<Context>,
    scenarios: &[Loaded],
    shared_stacks: &[Option<Arc<SharedStack>>],
) -> Result<Vec<ScenarioReport>> {
    let limit = Arc::new(Semaphore::new(context.options.jobs.max(1)));
    let mut tasks = Vec::new();
    // Permits are taken here, in the order of `schedule`, so that the longest
    // scenarios start first and a short one fills each slot that frees.
    for index in schedule(scenarios) {
        let loaded = scenarios[index].clone();
        let slots = loaded.scenario.slots.of(context.options.jobs) as u32;
        let permit = tokio::select! {
            permit = limit.clone().acquire_many_owned(slots) => permit.ok(),
            _ = context.stop.cancelled() => None,
        };
        let shared = shared_stacks[context.environments.index_of(&loaded.file)]
            .clone()
            .filter(|_| !loaded.scenario.needs_own_stack());
        let context = context.clone();
        tasks.push(tokio::spawn(async move {
            let report = context.run_one(&loaded, shared, permit).await;
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
    Ok(reports.into_iter().map(|(_, r)| r).collect())
}

/// After the last scenario: a shared stack that did not start ends the run;
/// kept stacks are handed to their time to live; the reporters hear that the
/// run finished.
async fn finish(
    context: &Context,
    reports: Vec<ScenarioReport>,
    shared_stacks: &[Option<Arc<SharedStack>>],
) -> Result<SuiteResult> {
    for shared in shared_stacks.iter().flatten() {
        if let Some(Err(e)) = shared.started.get() {
            // Cut short by anything but the environment (Ctrl-C): the run ends with it.
            if e.kind != ExitKind::Environment {
                return Err(e.clone());
            }
        }
    }
    let kept = std::mem::take(&mut *context.kept.lock().expect("kept"));
    for k in &kept {
        // A kept stack outlives this process until the default time to live.
        let run_id = &k.handle.stack.run_id;
        let note = k.scenarios.join("; ");
        if let Err(e) = reaper::release_to_ttl(run_id, Some(KEPT_TTL), Some(&note)) {
            context.notice(Level::Error, e.to_string());
        }
        stack::release(run_id);
    }
    if context.interrupt.stop.is_cancelled() {
        return Err(Failure::interrupted());
    }
    context.reporter.event(&Event::RunFinished {
        reports: &reports,
        kept: &kept,
    });
    let environment_error = context
        .environment_error
        .lock()
        .expect("environment error")
        .clone();
    Ok(SuiteResult {
        reports,
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
        loaded_with("", steps)
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

    fn loaded_with(head: &str, steps: &str) -> Loaded {
        let text = format!("name: s\ntags: [t]\n{head}steps:\n{steps}");
        parse(Path::new("s.yaml"), &text, &References::default()).expect("valid")
    }

    #[test]
    fn the_longest_expected_scenarios_start_first_and_ties_keep_the_file_order() {
        let http = "  - http: { path: /health }\n";
        let stop = "  - docker: { stop: gometr }\n";
        let scenarios = vec![
            loaded(http),                                                       // 0: shared, 1 step
            loaded(&format!("{stop}{http}")), // 1: own, no timeout
            loaded_with("timeout: 120s\n", &format!("{stop}{http}")), // 2: own, 120 s
            loaded(&format!("{http}{http}")), // 3: shared, 2 steps
            loaded_with("isolated: true\n", &format!("  - sleep: 5s\n{http}")), // 4: own, sleeps 5 s
            loaded(&format!("{stop}{http}")),                                   // 5: as 1
        ];
        assert_eq!(schedule(&scenarios), vec![2, 4, 1, 5, 3, 0]);
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
}
