//! What the engine says about a service's container right now: whether it
//! runs, how it last exited, whether the kernel's OOM killer ended it, how
//! often the engine restarted it and when it last started. The runner
//! compares these to notice a service that died or restarted unasked
//! (`runner::watch`).

use std::collections::BTreeMap;

use crate::engine::Client;
pub use crate::engine::ContainerState;

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
pub async fn inspect(engine: &Client, container: &str) -> Inspected {
    match engine.inspect_if_present(container).await {
        Ok(Some(info)) => Inspected::State(info.state),
        Ok(None) => Inspected::Gone,
        Err(e) => Inspected::Unreadable(e.to_string()),
    }
}

/// Inspects each `(service, container)` side by side: one engine call per
/// container, all at once.
pub async fn inspect_all(
    engine: &Client,
    containers: &[(String, String)],
) -> BTreeMap<String, Inspected> {
    let inspects = containers.iter().map(|(service, container)| async move {
        (service.clone(), inspect(engine, container).await)
    });
    futures::future::join_all(inspects)
        .await
        .into_iter()
        .collect()
}
