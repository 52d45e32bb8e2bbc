//! Runs one scenario's steps in order on a stack.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::runner::report::{FailureDetail, Outcome, ScenarioReport, StepReport};
use crate::runner::step::{self, StepContext};
use crate::runner::target::StackHandle;
use crate::runner::watch::Death;
use crate::scenario::load::Loaded;
use crate::scenario::model::Step;
use crate::scenario::template::Vars;

/// Settings that apply to every scenario of a run.
#[derive(Debug, Clone)]
pub struct ScenarioSettings {
    pub request_timeout: Duration,
    /// Used when a scenario sets no `timeout`.
    pub default_timeout: Duration,
    /// `--var NAME=VALUE`.
    pub vars: Vec<(String, String)>,
    /// Log lines per service kept in a failure report.
    pub log_lines: usize,
}

/// Log lines of a service that died unasked, quoted in the failure itself
/// (the report's logs keep [`ScenarioSettings::log_lines`] of every service).
const DEATH_LOG_LINES: usize = 10;

fn skipped(step: &Step) -> StepReport {
    step::report(step, Outcome::Skipped, Instant::now(), None)
}

/// Runs the steps; a failed step skips the rest. `stop` (fail-fast, Ctrl-C)
/// skips the steps not yet started. `on_step` hears of each step as it ends.
pub async fn run(
    loaded: &Loaded,
    handle: &mut StackHandle,
    settings: &ScenarioSettings,
    stop: &CancellationToken,
    on_step: &(dyn Fn(&StepReport) + Sync),
) -> ScenarioReport {
    let scenario = &loaded.scenario;
    let started = Instant::now();
    let timeout = scenario
        .timeout
        .map(|t| t.0)
        .unwrap_or(settings.default_timeout);
    let mut vars = Vars::default();
    for (k, v) in &settings.vars {
        vars.set(k.clone(), serde_json::Value::String(v.clone()));
    }
    handle.export_vars(&mut vars);
    let http = metr_service::http_client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client without TLS roots");
    let mut steps = Vec::new();
    let mut failed = false;
    let mut deaths = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        if failed || stop.is_cancelled() {
            steps.push(skipped(step));
            continue;
        }
        let mut ctx = StepContext {
            stack: handle,
            vars: &mut vars,
            http: &http,
            loaded,
            request_timeout: settings.request_timeout,
        };
        let Some(report) = run_step(step, &mut ctx, started + timeout, timeout, stop).await else {
            steps.push(skipped(step));
            continue;
        };
        failed = report.outcome == Outcome::Failed;
        on_step(&report);
        steps.push(report);
        // After every step, the last included: a service that died or
        // restarted unasked fails the scenario, even if the step passed.
        deaths = handle.deaths(index + 1, &step.name, DEATH_LOG_LINES).await;
        failed |= !deaths.is_empty();
    }
    let logs = if failed {
        handle.logs(settings.log_lines).await
    } else {
        Default::default()
    };
    finished(loaded, handle, steps, failed, deaths, logs, started)
}

/// One step within what is left of the scenario's `timeout`; `None` when
/// `stop` cut it short.
async fn run_step(
    step: &Step,
    ctx: &mut StepContext<'_>,
    deadline: Instant,
    timeout: Duration,
    stop: &CancellationToken,
) -> Option<StepReport> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let step_started = Instant::now();
    tokio::select! {
        r = tokio::time::timeout(remaining, step::run(step, ctx)) => Some(match r {
            Ok(report) => report,
            Err(_) => step::report(step, Outcome::Failed, step_started, Some(FailureDetail {
                error: Some(format!("the scenario timeout ({}) ran out during this step", humantime::format_duration(timeout))),
                ..Default::default()
            })),
        }),
        _ = stop.cancelled() => None,
    }
}

/// The scenario's report from its steps and the services that died.
fn finished(
    loaded: &Loaded,
    handle: &StackHandle,
    steps: Vec<StepReport>,
    failed: bool,
    deaths: Vec<Death>,
    logs: BTreeMap<String, String>,
    started: Instant,
) -> ScenarioReport {
    let scenario = &loaded.scenario;
    let outcome = if failed {
        Outcome::Failed
    } else if steps.iter().all(|s| s.outcome == Outcome::Passed) {
        Outcome::Passed
    } else {
        Outcome::Skipped
    };
    ScenarioReport {
        file: loaded.file.clone(),
        name: scenario.name.clone(),
        tags: scenario.tags.clone(),
        line: None,
        outcome,
        duration: started.elapsed(),
        steps,
        stack: Some(handle.stack.run_id.clone()),
        isolated: scenario.isolation().reason(),
        neighbours: vec![],
        error: (!deaths.is_empty()).then(|| {
            deaths
                .iter()
                .map(Death::render)
                .collect::<Vec<_>>()
                .join("\n")
        }),
        service_deaths: deaths,
        logs,
        attempts: 1,
        earlier_attempts: vec![],
    }
}
