//! Starting a stack on a private network, waiting until each service is ready,
//! and removing everything a run created, found by its label.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::engine::endpoint;
use crate::engine::error::{EngineError, Result};
use crate::engine::{Client, labels};
use crate::stack::containers::{create_and_start, volume_name};
use crate::stack::private_network;
use crate::stack::progress::Progress;
use crate::stack::readiness::{published_port, wait_ready};
use crate::stack::spec::{Readiness, ServiceSpec, StackSpec};
pub use crate::stack::teardown::{Removed, teardown, teardown_settled};

/// Runs this process started and has not yet removed: torn down on any exit
/// path, panics included (see `cli::main`).
static ACTIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn register(run: &str) {
    let mut active = ACTIVE.lock().expect("active runs");
    if !active.iter().any(|r| r == run) {
        active.push(run.to_owned());
    }
}

/// Forgets a run: it was removed, or the user asked to keep it.
pub fn release(run: &str) {
    ACTIVE.lock().expect("active runs").retain(|r| r != run);
    crate::stack::reaper::forget(run);
}

pub fn active_runs() -> Vec<String> {
    ACTIVE.lock().expect("active runs").clone()
}

/// A service as it runs: where to reach it from the host.
#[derive(Debug, Clone)]
pub struct RunningService {
    pub name: String,
    pub container: String,
    pub host_port: u16,
    pub url: String,
}

/// A started, ready stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub run_id: String,
    pub network: String,
    pub services: Vec<RunningService>,
    /// Connection string from the host.
    pub postgres_url: String,
    pub ready_in: Duration,
}

impl Stack {
    /// A stack of running `services`, with the database's URL from the host.
    pub fn new(
        run_id: &str,
        network: String,
        services: Vec<RunningService>,
        spec: &StackSpec,
        ready_in: Duration,
    ) -> Stack {
        let pg = services
            .iter()
            .find(|s| s.name == "postgres")
            .map(|s| s.host_port)
            .unwrap_or(0);
        Stack {
            run_id: run_id.to_owned(),
            network,
            postgres_url: spec.host_postgres_url(pg),
            services,
            ready_in,
        }
    }

    pub fn service(&self, name: &str) -> Option<&RunningService> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// Creates the network and every container, wave by wave, each wave after the
/// previous one is ready. On any failure the caller tears the run down.
pub async fn start(
    engine: &Client,
    spec: &StackSpec,
    run_id: &str,
    progress: &Progress,
    interrupt: &CancellationToken,
) -> Result<Stack> {
    let began = Instant::now();
    register(run_id);
    let network = private_network::create(engine, run_id, spec.pinned_subnet).await?;

    let mut running = Vec::new();
    for wave in spec.waves() {
        let starts = wave
            .iter()
            .map(|service| start_service(engine, spec, service, run_id, &network, progress));
        let all = futures::future::join_all(starts);
        let results = tokio::select! {
            results = all => results,
            _ = interrupt.cancelled() => return Err(EngineError::Interrupted),
        };
        for result in results {
            running.extend(result?);
        }
    }
    Ok(Stack::new(run_id, network, running, spec, began.elapsed()))
}

async fn start_service(
    engine: &Client,
    spec: &StackSpec,
    service: &ServiceSpec,
    run_id: &str,
    network: &str,
    progress: &Progress,
) -> Result<Option<RunningService>> {
    let name = labels::container_name(run_id, &service.name);
    let task = progress.task(format!("{:<9}", service.name));
    // Create the run's volumes explicitly, labelled: a volume the engine makes
    // implicitly for a bind carries no label, and teardown finds resources by label.
    for (suffix, _) in &service.volumes {
        let volume = volume_name(run_id, &service.name, suffix);
        let labels = labels::run_labels(run_id, Some(&service.name));
        engine.create_volume(&volume, labels, &service.name).await?;
    }
    create_and_start(engine, service, spec.restart, run_id, network).await?;
    if service.readiness == Readiness::Exit {
        let started = Instant::now();
        task.update("running to completion");
        if let Err(failure) = run_to_completion(engine, spec, service, &name).await {
            task.fail("failed");
            return Err(failure);
        }
        task.done(format!("done in {:.1} s", started.elapsed().as_secs_f64()));
        return Ok(None);
    }
    let host_port = published_port(engine, &name, service.port).await?;
    let host = endpoint::reach_host();
    task.update(format!("waiting for readiness on {host}:{host_port}"));
    let started = Instant::now();
    if let Err(reason) = wait_ready(engine, spec, service, &name, host_port).await {
        task.fail("never became ready");
        return Err(EngineError::NotReady {
            service: service.name.clone(),
            within: spec.readiness_timeout,
            reason,
            logs: engine.tail_logs(&name, LOG_LINES).await,
        });
    }
    task.done(format!("ready in {:.1} s", started.elapsed().as_secs_f64()));
    Ok(Some(RunningService {
        name: service.name.clone(),
        container: name,
        host_port,
        url: service.readiness.url(&host, host_port),
    }))
}

/// Log lines quoted when a service fails to start or become ready.
const LOG_LINES: usize = 30;

/// Waits until a one-shot container exits: 0 removes it (its work is done and
/// `run --stack` expects every container of a stack up), anything else is an
/// environment error quoting its last log lines.
async fn run_to_completion(
    engine: &Client,
    spec: &StackSpec,
    service: &ServiceSpec,
    container: &str,
) -> Result<()> {
    let deadline = Instant::now() + spec.readiness_timeout;
    let code = loop {
        if let Some(code) = exit_code(engine, container).await? {
            break Some(code);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if code == Some(0) {
        return engine.remove_container(container).await.map(|_| ());
    }
    Err(EngineError::OneShotFailed {
        service: service.name.clone(),
        container: container.to_owned(),
        exit_code: code,
        within: spec.readiness_timeout,
        logs: engine.tail_logs(container, LOG_LINES).await,
    })
}

/// A container's exit code once it stopped, `None` while it runs.
async fn exit_code(engine: &Client, container: &str) -> Result<Option<i64>> {
    let state = engine.inspect_container(container).await?.state;
    Ok((!state.running).then_some(state.exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_run_is_active_until_released() {
        register("unit-run-a");
        register("unit-run-a");
        let active = active_runs();
        assert_eq!(active.iter().filter(|r| *r == "unit-run-a").count(), 1);
        release("unit-run-a");
        assert!(!active_runs().iter().any(|r| r == "unit-run-a"));
    }
}
