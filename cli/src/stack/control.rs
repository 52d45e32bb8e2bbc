//! The docker steps of a scenario on a running service's container: stop,
//! start, restart, kill, pause and unpause.

use bollard::Docker;
use bollard::query_parameters::{KillContainerOptions, StopContainerOptions};

use crate::engine::error::{EngineError, Result};
use crate::scenario::model::DockerVerb;

/// Applies `verb` to `container`, the container of `service`.
pub async fn apply(
    docker: &Docker,
    verb: DockerVerb,
    service: &str,
    container: &str,
) -> Result<()> {
    let (container, service) = (container.to_owned(), service.to_owned());
    match verb {
        DockerVerb::Stop => {
            // No `t`: the container's own stop grace applies (the
            // checker's outlasts its shutdown flush).
            let options = StopContainerOptions::default();
            docker
                .stop_container(&container, Some(options))
                .await
                .map_err(|source| EngineError::StopContainer {
                    container,
                    service,
                    source,
                })
        }
        DockerVerb::Kill => {
            let options = KillContainerOptions {
                signal: "SIGKILL".into(),
            };
            docker
                .kill_container(&container, Some(options))
                .await
                .map_err(|source| EngineError::KillContainer {
                    container,
                    service,
                    source,
                })
        }
        DockerVerb::Pause => {
            docker
                .pause_container(&container)
                .await
                .map_err(|source| EngineError::PauseContainer {
                    container,
                    service,
                    source,
                })
        }
        DockerVerb::Start => docker
            .start_container(&container, None)
            .await
            .map_err(|source| EngineError::StartContainer {
                container,
                service,
                source,
            }),
        DockerVerb::Restart => docker
            .restart_container(&container, None)
            .await
            .map_err(|source| EngineError::RestartContainer {
                container,
                service,
                source,
            }),
        DockerVerb::Unpause => docker
            .unpause_container(&container)
            .await
            .map_err(|source| EngineError::UnpauseContainer {
                container,
                service,
                source,
            }),
    }
}
