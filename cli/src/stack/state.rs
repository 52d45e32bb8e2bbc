//! What the engine says about a service's container right now: whether it
//! runs, how it last exited, whether the kernel's OOM killer ended it, how
//! often the engine restarted it and when it last started. The runner
//! compares these to notice a service that died or restarted unasked
//! (`runner::watch`).

use std::collections::BTreeMap;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use serde::Serialize;

/// The parts of a container's state that tell a death or a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerState {
    /// Running or paused (the engine counts a paused container as running).
    pub running: bool,
    /// The engine's word for it: running, exited, restarting, paused, dead, ….
    pub status: String,
    /// The last exit's code (0 while it never exited).
    pub exit_code: i64,
    /// The kernel's OOM killer ended its last run.
    pub oom_killed: bool,
    /// Restarts the engine made under the container's restart policy.
    pub restart_count: i64,
    /// When its current (or last) run started, RFC 3339.
    pub started_at: String,
}

impl ContainerState {
    /// The state an inspect reports.
    pub fn of(info: &ContainerInspectResponse) -> ContainerState {
        let state = info.state.clone().unwrap_or_default();
        ContainerState {
            running: state.running.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            exit_code: state.exit_code.unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
            restart_count: info.restart_count.unwrap_or(0),
            started_at: state.started_at.unwrap_or_default(),
        }
    }
}

/// One container as an inspect found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inspected {
    State(ContainerState),
    /// The engine has no such container any more (removed).
    Gone,
    /// The inspect failed otherwise: the engine's words.
    Unreadable(String),
}

/// Inspects one container.
pub async fn inspect(docker: &Docker, container: &str) -> Inspected {
    match docker.inspect_container(container, None).await {
        Ok(info) => Inspected::State(ContainerState::of(&info)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Inspected::Gone,
        Err(e) => Inspected::Unreadable(e.to_string()),
    }
}

/// Inspects each `(service, container)` side by side: one engine call per
/// container, all at once.
pub async fn inspect_all(
    docker: &Docker,
    containers: &[(String, String)],
) -> BTreeMap<String, Inspected> {
    let inspects = containers.iter().map(|(service, container)| async move {
        (service.clone(), inspect(docker, container).await)
    });
    futures::future::join_all(inspects)
        .await
        .into_iter()
        .collect()
}
