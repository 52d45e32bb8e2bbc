//! The docker steps of a scenario on a running service's container: stop,
//! start, restart, kill, pause and unpause.

use crate::engine::Client;
use crate::engine::error::Result;
use crate::scenario::model::DockerVerb;

/// Applies `verb` to `container`, the container of `service`.
pub async fn apply(
    engine: &Client,
    verb: DockerVerb,
    service: &str,
    container: &str,
) -> Result<()> {
    match verb {
        // The container's own stop grace applies (the checker's outlasts
        // its shutdown flush).
        DockerVerb::Stop => engine.stop_container(container, Some(service), None).await,
        DockerVerb::Kill => engine.kill_container(container, service).await,
        DockerVerb::Pause => engine.pause_container(container, service).await,
        DockerVerb::Start => engine.start_container(container, service).await,
        DockerVerb::Restart => engine.restart_container(container, service).await,
        DockerVerb::Unpause => engine.unpause_container(container, service).await,
    }
}
