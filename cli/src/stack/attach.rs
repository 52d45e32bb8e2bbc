//! Attaching to a stack that is already running (`run --stack ID`): its
//! services, ports and database login are read back from the engine.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::engine::endpoint;
use crate::engine::error::{EngineError, Result};
use crate::engine::{Client, Container, labels};
use crate::stack::spec::{Limits, Readiness, Restart, ServiceSpec, StackSpec};
use crate::stack::{self, RunningService, Stack};

/// How a service of an existing stack proves it is ready, by its name.
fn readiness_of(service: &str) -> Readiness {
    match service {
        "postgres" => Readiness::Postgres,
        s if s == "gometr" || s.starts_with("gometr-") => Readiness::Http { success: false },
        _ => Readiness::Http { success: true },
    }
}

/// Running or paused: a paused service is up but not ready (exit 3, not 2).
fn is_up(state: &str) -> bool {
    state == "running" || state == "paused"
}

/// Runs whose every service container is up, for error messages.
pub async fn running_runs(engine: &Client) -> Result<Vec<String>> {
    let containers = engine.list_containers(None).await?;
    let mut all = BTreeSet::new();
    let mut broken = BTreeSet::new();
    for c in containers.iter().filter(|c| !c.is_reaper()) {
        let Some(run) = c.run() else {
            continue;
        };
        all.insert(run.to_owned());
        if !is_up(&c.state) {
            broken.insert(run.to_owned());
        }
    }
    Ok(all.difference(&broken).cloned().collect())
}

fn unknown(run_id: &str, reason: String, running: Vec<String>) -> EngineError {
    EngineError::UnknownStack {
        id: run_id.to_owned(),
        reason,
        running,
    }
}

/// The running stack of `run_id` and a spec describing it; exit 2 if there is
/// no such running stack, exit 3 if one of its services is not ready.
pub async fn attach(engine: &Client, run_id: &str) -> Result<(Stack, StackSpec)> {
    let started = Instant::now();
    let containers: Vec<_> = engine
        .list_containers(Some(run_id))
        .await?
        .into_iter()
        .filter(|c| !c.is_reaper())
        .collect();
    if containers.is_empty() {
        return Err(unknown(
            run_id,
            "no such stack".into(),
            running_runs(engine).await?,
        ));
    }
    let mut spec = StackSpec {
        services: vec![],
        db_user: String::new(),
        db_name: String::new(),
        db_password: String::new(),
        readiness_timeout: Duration::from_secs(2),
        pinned_subnet: false,
        // Not used: an attached stack's containers exist already.
        restart: Restart::Never,
    };
    let mut services = Vec::new();
    for c in &containers {
        let (service, running) = read_service(engine, run_id, c, &mut spec).await?;
        spec.services.push(service);
        services.push(running);
    }
    services.sort_by(|a, b| a.name.cmp(&b.name));
    check_ready(engine, run_id, &spec, &services).await?;
    let stack = Stack::new(
        run_id,
        labels::network_name(run_id),
        services,
        &spec,
        started.elapsed(),
    );
    Ok((stack, spec))
}

/// One container of an attached stack: its service as a spec, and where it
/// answers; PostgreSQL's login goes into `spec`.
async fn read_service(
    engine: &Client,
    run_id: &str,
    c: &Container,
    spec: &mut StackSpec,
) -> Result<(ServiceSpec, RunningService)> {
    let name = c.service().unwrap_or_default().to_owned();
    if !is_up(&c.state) {
        let why = format!("its service {name} is {}", c.state);
        return Err(unknown(run_id, why, running_runs(engine).await?));
    }
    let container = labels::container_name(run_id, &name);
    let (port, host_port) = c
        .ports
        .first()
        .map(|p| (p.container, p.host))
        .ok_or_else(|| EngineError::NoPublishedPort {
            container: container.clone(),
            port: None,
        })?;
    let readiness = readiness_of(&name);
    if readiness == Readiness::Postgres {
        read_login(engine, &container, spec).await?;
    }
    let running = RunningService {
        name: name.clone(),
        container,
        host_port,
        url: readiness.url(&endpoint::reach_host(), host_port),
    };
    let service = ServiceSpec {
        name,
        image: c.image.clone(),
        env: vec![],
        cmd: vec![],
        port,
        user: None,
        read_only: true,
        tmpfs: vec![],
        volumes: vec![],
        after: vec![],
        joins: None,
        readiness,
        limits: Limits::SERVICE,
    };
    Ok((service, running))
}

/// The database login, from the PostgreSQL container's environment.
async fn read_login(engine: &Client, container: &str, spec: &mut StackSpec) -> Result<()> {
    let info = engine.inspect_container(container).await?;
    for pair in info.env {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        match key {
            "POSTGRES_USER" => spec.db_user = value.to_owned(),
            "POSTGRES_PASSWORD" => spec.db_password = value.to_owned(),
            "POSTGRES_DB" => spec.db_name = value.to_owned(),
            _ => {}
        }
    }
    Ok(())
}

/// One readiness probe per service, all at once; exit 3 naming the first
/// service that is not ready.
async fn check_ready(
    engine: &Client,
    run_id: &str,
    spec: &StackSpec,
    services: &[RunningService],
) -> Result<()> {
    let probes = spec.services.iter().map(|s| {
        let running = services.iter().find(|r| r.name == s.name).expect("listed");
        async move {
            let result =
                stack::wait_ready(engine, spec, s, &running.container, running.host_port).await;
            (s.name.clone(), result)
        }
    });
    for (name, result) in futures::future::join_all(probes).await {
        if let Err(reason) = result {
            return Err(EngineError::StackNotReady {
                service: name,
                run: run_id.to_owned(),
                reason,
            });
        }
    }
    Ok(())
}
