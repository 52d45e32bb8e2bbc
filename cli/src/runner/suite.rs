//! A whole run: one shared stack for read-only scenarios (run in parallel), a
//! fresh stack for each isolated one, retries of failed scenarios, then
//! teardown. What happens is told to a [`Reporter`] as events; the suite
//! itself prints nothing (the engine layer below still reports image builds
//! and service start-up through [`Ui`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::engine;
use crate::engine::labels;
use crate::exit::{ExitKind, Failure, Result};
use crate::interrupt::Interrupt;
use crate::runner::event::{Event, Level, Reporter};
use crate::runner::report::{Attempt, Outcome, ScenarioReport};
use crate::runner::scenario::{self, ScenarioSettings};
use crate::runner::target::StackHandle;
use crate::scenario::load::Loaded;
use crate::scenario::model::{Action, DockerVerb};
use crate::scenario::network::{Link, NetworkAction};
use crate::scenarios::Environments;
use crate::stack;
use crate::stack::attach;
use crate::stack::faults;
use crate::stack::images;
use crate::stack::images::ImageChoice;
use crate::stack::reaper::{self, Owner};
use crate::stack::spec::{DataStore, StackSpec};
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
struct Context {
    docker: bollard::Docker,
    /// The images fresh stacks need; none when every scenario runs on an
    /// attached stack.
    built: Option<Built>,
    /// The run's own environment and those of folders with their own file.
    environments: Environments,
    options: SuiteOptions,
    /// Only for the engine layer, which reports builds and start-up itself.
    ui: Ui,
    interrupt: Interrupt,
    reporter: Arc<dyn Reporter>,
    /// Cancelled by fail-fast and by Ctrl-C.
    stop: CancellationToken,
    environment_error: Mutex<Option<String>>,
    any_failed: AtomicBool,
    /// More than one stack starts: each one's progress lines carry its run
    /// id and scenario.
    labelled: bool,
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
    fn environment_failed(&self, failure: &Failure) {
        *self.environment_error.lock().expect("environment error") = Some(failure.message.clone());
    }

    fn notice(&self, level: Level, text: impl Into<String>) {
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
    async fn new_stack(&self, needs: &Needs, env: usize, whom: &str) -> Result<StackHandle> {
        let built = self
            .built
            .as_ref()
            .ok_or_else(|| Failure::environment("no images were built for a fresh stack"))?;
        let reaper_image = &built.reaper;
        let mut file = self.environments.list[env].file.clone();
        file.postgres.data = file.postgres.data.or(Some(needs.data(&self.options)));
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
            if !reaper::start(&self.docker, reaper_image.as_deref(), &run_id, Owner::Run).await? {
                self.notice(Level::Warn, reaper::NO_REAPER);
            }
            let ui = match self.labelled {
                true => self.ui.labelled(lane_label(&run_id, whom)),
                false => self.ui.clone(),
            };
            stack::start(&self.docker, &spec, &run_id, &ui, &self.interrupt.stop).await
        };
        match started.await {
            Ok(s) => {
                self.reporter.event(&Event::StackReady {
                    run_id: &run_id,
                    ready_in: s.ready_in,
                });
                Ok(StackHandle::new(self.docker.clone(), s, spec).await)
            }
            Err(e) => {
                let force = &self.interrupt.force;
                let _ = stack::teardown(&self.docker, Some(&run_id), Duration::ZERO, force).await;
                Err(e.into())
            }
        }
    }

    async fn remove(&self, handle: &StackHandle) {
        // Its start and its scenario are over: nothing of it is still being created.
        let run_id = &handle.stack.run_id;
        if let Err(e) = stack::teardown_settled(&handle.docker, run_id).await {
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

/// Images a run needs besides the stack's.
struct Built {
    reaper: Option<String>,
    /// The stack's images in each environment (same index).
    sets: Vec<images::ImageSet>,
    /// The fault proxy's, when a scenario has link faults.
    faultproxy: Option<String>,
}

/// What a scenario asks of a stack of its own.
#[derive(Debug, Default)]
struct Needs {
    /// Links to put the fault proxy on.
    links: Vec<Link>,
    /// A service is cut off and healed: the subnet is pinned.
    partitions: bool,
    /// PostgreSQL is stopped, killed or restarted, and its data must outlive that.
    durable_postgres: bool,
}

impl Needs {
    fn of(loaded: &Loaded) -> Needs {
        Needs {
            links: fault_links(loaded),
            partitions: has_partitions(loaded),
            durable_postgres: restarts_postgres(loaded),
        }
    }

    /// Where PostgreSQL keeps its data when the environment file does not
    /// say: in memory, unless it must outlive a stop of its container, or
    /// the stack may be kept for someone to work on by hand (`--keep`,
    /// `--keep-failed`). Its files on the engine's disk were a quarter of a
    /// stack's cost (on ext4: 1.0 of the 4.3 CPU-s of a one-scenario run).
    fn data(&self, options: &SuiteOptions) -> DataStore {
        if self.durable_postgres || options.keep || options.keep_failed {
            DataStore::Volume
        } else {
            DataStore::Tmpfs
        }
    }
}

/// Whether a docker step stops, kills or restarts PostgreSQL's container (or
/// starts it again), which a database in memory would not survive.
fn restarts_postgres(loaded: &Loaded) -> bool {
    loaded.scenario.steps.iter().any(|step| match &step.action {
        Action::Docker(docker) => {
            docker.service == "postgres"
                && !matches!(docker.verb, DockerVerb::Pause | DockerVerb::Unpause)
        }
        _ => false,
    })
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

/// The reaper's image (if it can be built), the stack's images in each
/// environment, and the fault proxy's if `faults` (some scenario has link
/// faults). Environments that choose the same images share one set.
async fn build_images(
    docker: &bollard::Docker,
    environments: &Environments,
    faults: bool,
    ui: &Ui,
) -> Result<Built> {
    let choices: Vec<&ImageChoice> = environments.list.iter().map(|e| &e.file.images).collect();
    // Side by side: the engine's builds and the PostgreSQL image's assembly
    // overlap; cargo runs once (`images::compile`).
    let faultproxy = async {
        match faults {
            true => faults::image(docker, ui).await.map(Some),
            false => Ok(None),
        }
    };
    let (reaper, set, faultproxy) = tokio::join!(
        reaper::image_or_warn(docker, ui),
        images::ensure(docker, choices[0], ui),
        faultproxy
    );
    let (set, faultproxy) = (set?, faultproxy?);
    let mut sets = vec![set];
    for (index, choice) in choices.iter().enumerate().skip(1) {
        let same = choices[..index].iter().position(|c| c == choice);
        let set = match same {
            Some(earlier) => sets[earlier].clone(),
            None => images::ensure(docker, choice, ui).await?,
        };
        sets.push(set);
    }
    Ok(Built {
        reaper,
        sets,
        faultproxy,
    })
}

/// Failed scenarios that ran on the shared stack, and all that did.
#[derive(Default)]
struct OnShared {
    failed: Vec<String>,
    all: Vec<String>,
}

/// The stack of the scenarios that need none of their own: started once, as
/// the run begins, and removed (or kept) as soon as the last of them is done.
struct SharedStack {
    started: OnceCell<Result<StackHandle>>,
    /// The environment it is built from (an index into the run's).
    env: usize,
    /// `run --stack ID`: not ours, it stays as it was.
    attached: bool,
    /// How many scenarios it was started for.
    scenarios: usize,
    /// Its scenarios not done yet, and what became of those that are.
    left: Mutex<(usize, OnShared)>,
    /// Every attempt run on it so far, to name a failed one's neighbours.
    visits: Mutex<Vec<Visit>>,
}

/// One attempt of a scenario on a shared stack: who, and when.
struct Visit {
    /// `NAME (FILE)`.
    label: String,
    start: Instant,
    end: Option<Instant>,
}

impl SharedStack {
    fn attached(handle: StackHandle, scenarios: usize) -> Arc<SharedStack> {
        Arc::new(SharedStack {
            started: OnceCell::new_with(Some(Ok(handle))),
            env: 0,
            attached: true,
            scenarios,
            left: Mutex::new((scenarios, OnShared::default())),
            visits: Mutex::default(),
        })
    }

    fn start(context: &Arc<Context>, env: usize, scenarios: usize) -> Arc<SharedStack> {
        let shared = Arc::new(SharedStack {
            started: OnceCell::new(),
            env,
            attached: false,
            scenarios,
            left: Mutex::new((scenarios, OnShared::default())),
            visits: Mutex::default(),
        });
        let (starting, context) = (shared.clone(), context.clone());
        tokio::spawn(async move {
            let _ = starting.handle(&context).await;
        });
        shared
    }

    /// An attempt of `loaded` starts on the stack; returns its visit number.
    fn enter(&self, loaded: &Loaded) -> usize {
        let mut visits = self.visits.lock().expect("visits");
        visits.push(Visit {
            label: format!("{:?} ({})", loaded.scenario.name, loaded.file.display()),
            start: Instant::now(),
            end: None,
        });
        visits.len() - 1
    }

    /// The attempt is over: the scenarios that were on the stack meanwhile.
    fn leave(&self, visit: usize) -> Vec<String> {
        let mut visits = self.visits.lock().expect("visits");
        let end = Instant::now();
        visits[visit].end = Some(end);
        let (start, label) = (visits[visit].start, visits[visit].label.clone());
        let mut beside: Vec<String> = visits
            .iter()
            .enumerate()
            .filter(|&(i, v)| i != visit && v.start < end && v.end.is_none_or(|e| e > start))
            .map(|(_, v)| v.label.clone())
            .filter(|l| *l != label)
            .collect();
        beside.sort();
        beside.dedup();
        beside
    }

    /// The stack, once it has started (or why it did not).
    async fn handle(&self, context: &Context) -> Result<StackHandle> {
        self.started
            .get_or_init(|| async {
                let whom = format!("{} scenario(s) sharing it", self.scenarios);
                context.new_stack(&Needs::default(), self.env, &whom).await
            })
            .await
            .clone()
    }

    /// One of its scenarios is done (`None`: it did not run); after the
    /// last, the stack is removed, or kept by --keep or --keep-failed.
    async fn done(
        &self,
        context: &Context,
        report: Option<&ScenarioReport>,
        kept: &Mutex<Vec<Kept>>,
    ) {
        let finished = {
            let mut left = self.left.lock().expect("shared scenarios");
            let (count, on_shared) = &mut *left;
            if let Some(report) = report.filter(|r| r.stack.is_some()) {
                on_shared.all.push(report.name.clone());
                if report.outcome == Outcome::Failed {
                    on_shared.failed.push(report.name.clone());
                }
            }
            *count -= 1;
            (*count == 0).then(|| std::mem::take(on_shared))
        };
        let Some(OnShared { failed, all }) = finished else {
            return;
        };
        if self.attached {
            return;
        }
        let Ok(handle) = self.handle(context).await else {
            return;
        };
        if context.options.keeps(!failed.is_empty()) {
            let scenarios = if failed.is_empty() { all } else { failed };
            kept.lock().expect("kept").push(Kept { handle, scenarios });
        } else {
            context.remove(&handle).await;
        }
    }
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
    // Each environment's scenarios that share a stack.
    let mut on_shared = vec![0; environments.list.len()];
    for (_, l) in &shared {
        on_shared[environments.index_of(&l.file)] += 1;
    }
    let attached = match &options.stack {
        Some(id) => {
            let (stack, spec) = attach::attach(&docker, id).await?;
            for (_, l) in &isolated {
                let why = l.scenario.isolation().reason().unwrap_or_default();
                reporter.event(&Event::Notice {
                    level: Level::Info,
                    text: format!(
                        "scenario {:?} needs a stack of its own ({why}): starting a fresh one, not using {id}",
                        l.scenario.name
                    ),
                });
            }
            for environment in environments.list.iter().skip(1) {
                reporter.event(&Event::Notice {
                    level: Level::Info,
                    text: format!(
                        "the scenarios under {} have an environment of their own: starting a stack from it, not using {id}",
                        environment.folders.last().map(|f| f.display().to_string()).unwrap_or_default()
                    ),
                });
            }
            Some(StackHandle::new(docker.clone(), stack, spec).await)
        }
        None => None,
    };
    let any_faults = isolated.iter().any(|(_, l)| !fault_links(l).is_empty());
    // On an existing stack, images are built only if a fresh stack is needed.
    let fresh = !isolated.is_empty() || on_shared.iter().skip(1).any(|n| *n > 0);
    let built = if attached.is_none() || fresh {
        tokio::select! {
            built = build_images(&docker, environments, any_faults, ui) => Some(built?),
            _ = interrupt.stop.cancelled() => return Err(Failure::interrupted()),
        }
    } else {
        None
    };
    let context = Arc::new(Context {
        docker,
        built,
        environments: environments.clone(),
        options: options.clone(),
        ui: ui.clone(),
        interrupt: interrupt.clone(),
        reporter,
        stop: interrupt.stop.child_token(),
        environment_error: Mutex::default(),
        any_failed: AtomicBool::new(false),
        labelled: isolated.len() + on_shared.iter().filter(|&&n| n > 0).count() > 1,
    });
    // Each environment's shared stack starts beside the first stacks of
    // their own, not before them; its scenarios wait for it.
    let mut attached = attached;
    let shared_stacks: Vec<Option<Arc<SharedStack>>> = on_shared
        .iter()
        .enumerate()
        .map(|(env, &count)| {
            // `run --stack ID` stands for the run's own environment only.
            if env == 0
                && let Some(handle) = attached.take()
            {
                return Some(SharedStack::attached(handle, count));
            }
            (count > 0).then(|| SharedStack::start(&context, env, count))
        })
        .collect();

    let limit = Arc::new(Semaphore::new(options.jobs.max(1)));
    let kept: Arc<Mutex<Vec<Kept>>> = Arc::default();
    let mut tasks = Vec::new();
    // Permits are taken here, in the order of `schedule`, so that the longest
    // scenarios start first and a short one fills each slot that frees.
    for index in schedule(&scenarios) {
        let loaded = scenarios[index].clone();
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => permit.ok(),
            _ = context.stop.cancelled() => None,
        };
        let (context, kept) = (context.clone(), kept.clone());
        let shared_stack = shared_stacks[environments.index_of(&loaded.file)]
            .clone()
            .filter(|_| !loaded.scenario.needs_own_stack());
        tasks.push(tokio::spawn(async move {
            if permit.is_none() || context.stop.is_cancelled() {
                if let Some(shared) = &shared_stack {
                    shared.done(&context, None, &kept).await;
                }
                return (index, not_run(&loaded, None));
            }
            let (report, own) = match &shared_stack {
                Some(shared) => match shared.handle(&context).await {
                    Ok(handle) => context.scenario(&loaded, Some((shared, handle))).await,
                    Err(e) => {
                        if e.kind == ExitKind::Environment {
                            context.environment_failed(&e);
                        }
                        (stack_not_started(&loaded, &e), None)
                    }
                },
                None => context.scenario(&loaded, None).await,
            };
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
            match (&shared_stack, own) {
                (Some(shared), _) => shared.done(&context, Some(&report), &kept).await,
                (None, Some(handle)) if context.options.keeps(failed) => {
                    kept.lock().expect("kept").push(Kept {
                        handle,
                        scenarios: vec![report.name.clone()],
                    })
                }
                (None, Some(handle)) => context.remove(&handle).await,
                (None, None) => {}
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
    for shared in shared_stacks.iter().flatten() {
        if let Some(Err(e)) = shared.started.get() {
            // Cut short by anything but the environment (Ctrl-C): the run ends with it.
            if e.kind != ExitKind::Environment {
                return Err(e.clone());
            }
        }
    }
    let kept = std::mem::take(&mut *kept.lock().expect("kept"));
    for k in &kept {
        // A kept stack outlives this process until the default time to live.
        let run_id = &k.handle.stack.run_id;
        let note = k.scenarios.join("; ");
        if let Err(e) = reaper::release_to_ttl(run_id, Some(KEPT_TTL), Some(&note)) {
            context.notice(Level::Error, e.to_string());
        }
        stack::release(run_id);
    }
    if interrupt.stop.is_cancelled() {
        return Err(Failure::interrupted());
    }
    let reports: Vec<ScenarioReport> = reports.into_iter().map(|(_, r)| r).collect();
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
    fn postgres_keeps_its_data_on_disk_only_when_a_step_stops_it_or_the_stack_may_be_kept() {
        let paused = loaded("  - docker: { pause: postgres }\n  - docker: { unpause: postgres }\n");
        let restarted = loaded("  - docker: { restart: postgres }\n");
        let stopped = loaded("  - docker: { stop: postgres }\n  - docker: { start: postgres }\n");
        let other = loaded("  - docker: { restart: gometr }\n");
        let plain = options(false, false, 0);
        assert_eq!(Needs::of(&paused).data(&plain), DataStore::Tmpfs);
        assert_eq!(Needs::of(&other).data(&plain), DataStore::Tmpfs);
        assert_eq!(Needs::default().data(&plain), DataStore::Tmpfs);
        assert_eq!(Needs::of(&restarted).data(&plain), DataStore::Volume);
        assert_eq!(Needs::of(&stopped).data(&plain), DataStore::Volume);
        assert_eq!(
            Needs::of(&paused).data(&options(true, false, 0)),
            DataStore::Volume
        );
        assert_eq!(
            Needs::of(&paused).data(&options(false, true, 0)),
            DataStore::Volume
        );
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
