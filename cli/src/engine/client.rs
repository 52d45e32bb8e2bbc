//! The Docker engine's client: connecting through bollard with version
//! negotiation, and one method per operation on containers the stack needs,
//! each failing with the [`EngineError`] that names what was being done.
//! Networks, volumes and images are in [`crate::engine::resources`].

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, LogsOptions,
    RemoveContainerOptions, StopContainerOptions,
};
use futures::{Stream, StreamExt};

use crate::engine::endpoint;
use crate::engine::error::{EngineError, Result};
use crate::engine::labels;
use crate::engine::model::{Container, ContainerDetails, ContainerRequest};
use crate::engine::ssh;

/// The engine, as every layer above this one holds it: cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) docker: Docker,
}

/// How long connecting, negotiating and pinging may take together.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);
/// The same through ssh, which first logs in to the engine's host.
const SSH_CONNECT_WITHIN: Duration = Duration::from_secs(15);

/// Connects to the engine [`endpoint::current`] names, negotiates the API version (so old engines such as API 1.41 work)
/// and pings, all within two seconds; failure is an environment error (exit 3).
pub async fn connect() -> Result<Client> {
    let endpoint = endpoint::current().map_err(|reason| EngineError::Locate { reason })?;
    let target = || endpoint.source.to_string();
    let over_ssh = endpoint.host.starts_with("ssh://");
    let attempt = async {
        let docker = if over_ssh {
            let socket = ssh::bridge(&endpoint.host).map_err(|reason| EngineError::SshBridge {
                target: target(),
                reason,
            })?;
            Docker::connect_with_unix(&socket.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_host(&endpoint.host)
        }
        .map_err(|source| EngineError::Connect {
            target: target(),
            source,
        })?;
        let docker =
            docker
                .negotiate_version()
                .await
                .map_err(|source| EngineError::NegotiateVersion {
                    target: target(),
                    source,
                })?;
        docker.ping().await.map_err(|source| EngineError::Ping {
            target: target(),
            source,
        })?;
        Ok(Client {
            docker: docker.with_timeout(Duration::from_secs(120)),
        })
    };
    let within = if over_ssh {
        SSH_CONNECT_WITHIN
    } else {
        CONNECT_WITHIN
    };
    match tokio::time::timeout(within, attempt).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::NoAnswer {
            target: target(),
            within,
        }),
    }
}

/// The innermost cause of an error: engine errors wrap the useful part deep down.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut source = err;
    while let Some(next) = source.source() {
        source = next;
    }
    let inner = source.to_string();
    let outer = err.to_string();
    if inner == outer {
        outer
    } else {
        format!("{outer} ({inner})")
    }
}

/// The engine's HTTP status in an error answer.
pub(crate) fn status(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// A removal that found nothing to remove (404) or a resource busy being
/// removed already (409) is `Ok(false)`; the caller's next sweep looks again.
/// The error of `action` on `container` (of `service`, when it is one).
fn acting(
    action: &'static str,
    container: &str,
    service: Option<&str>,
) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    move |source| EngineError::ContainerAction {
        action,
        container: container.to_owned(),
        service: service.map(str::to_owned),
        source: Box::new(source),
    }
}

pub(crate) fn removed(
    result: std::result::Result<(), bollard::errors::Error>,
    error: impl FnOnce(bollard::errors::Error) -> EngineError,
) -> Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if matches!(status(&e), Some(404 | 409)) => Ok(false),
        Err(e) => Err(error(e)),
    }
}

/// Containers.
impl Client {
    /// Creates (without starting) the container `request` describes.
    pub async fn create_container(&self, request: &ContainerRequest) -> Result<()> {
        let options = CreateContainerOptions {
            name: Some(request.name.clone()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(options), request.body())
            .await
            .map(|_| ())
            .map_err(|source| EngineError::CreateContainer {
                container: request.name.clone(),
                service: request.service.clone(),
                source,
            })
    }

    /// Starts `container`, the container of `service`.
    pub async fn start_container(&self, container: &str, service: &str) -> Result<()> {
        self.docker
            .start_container(container, None)
            .await
            .map_err(|source| EngineError::StartContainer {
                container: container.to_owned(),
                service: service.to_owned(),
                source,
            })
    }

    /// Stops `container`, killing it after `grace` (`None`: the grace it was
    /// created with). `service` is `None` at teardown, where every container
    /// of a run is stopped alike.
    pub async fn stop_container(
        &self,
        container: &str,
        service: Option<&str>,
        grace: Option<Duration>,
    ) -> Result<()> {
        let options = StopContainerOptions {
            t: grace.map(|g| g.as_secs() as i32),
            ..Default::default()
        };
        let result = self.docker.stop_container(container, Some(options)).await;
        result.map_err(acting("stop", container, service))
    }

    /// Sends `container` SIGKILL.
    pub async fn kill_container(&self, container: &str, service: &str) -> Result<()> {
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        let result = self.docker.kill_container(container, Some(options)).await;
        result.map_err(acting("kill", container, Some(service)))
    }

    pub async fn pause_container(&self, container: &str, service: &str) -> Result<()> {
        let result = self.docker.pause_container(container).await;
        result.map_err(acting("pause", container, Some(service)))
    }

    pub async fn unpause_container(&self, container: &str, service: &str) -> Result<()> {
        let result = self.docker.unpause_container(container).await;
        result.map_err(acting("unpause", container, Some(service)))
    }

    pub async fn restart_container(&self, container: &str, service: &str) -> Result<()> {
        let result = self.docker.restart_container(container, None).await;
        result.map_err(acting("restart", container, Some(service)))
    }

    /// Removes `container` (running or not) with its anonymous volumes;
    /// `Ok(false)` when it was gone already or is being removed.
    pub async fn remove_container(&self, container: &str) -> Result<bool> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let result = self.docker.remove_container(container, Some(options)).await;
        removed(result, |source| EngineError::RemoveContainer {
            container: container.to_owned(),
            source,
        })
    }

    /// What the engine knows about `container`.
    pub async fn inspect_container(&self, container: &str) -> Result<ContainerDetails> {
        self.inspect_if_present(container)
            .await?
            .ok_or_else(|| EngineError::NoSuchContainer {
                container: container.to_owned(),
            })
    }

    /// What the engine knows about `container`; `None` when there is no such
    /// container (any more).
    pub async fn inspect_if_present(&self, container: &str) -> Result<Option<ContainerDetails>> {
        match self.docker.inspect_container(container, None).await {
            Ok(info) => Ok(Some(ContainerDetails::of(info))),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(source) => Err(EngineError::InspectContainer {
                container: container.to_owned(),
                source,
            }),
        }
    }

    /// Containers of one run (`Some`) or of every run (`None`), stopped ones included.
    pub async fn list_containers(&self, run: Option<&str>) -> Result<Vec<Container>> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(labels::run_filter(run)),
            ..Default::default()
        };
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|source| EngineError::ListContainers { source })?;
        Ok(found.into_iter().map(Container::of).collect())
    }

    /// A container's output (stdout and stderr), its last `tail` lines
    /// (`None`: all), then what it writes next if `follow`.
    pub fn logs(
        &self,
        container: &str,
        tail: Option<usize>,
        follow: bool,
    ) -> impl Stream<Item = Result<bytes::Bytes>> {
        let options = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: tail.map(|n| n.to_string()).unwrap_or_else(|| "all".into()),
            ..Default::default()
        };
        let name = container.to_owned();
        self.docker
            .logs(container, Some(options))
            .map(move |chunk| {
                chunk
                    .map(|c| c.into_bytes())
                    .map_err(|source| EngineError::Logs {
                        container: name.clone(),
                        source,
                    })
            })
    }

    /// The last `lines` lines of a container's output, as far as they can be read.
    pub async fn tail_logs(&self, container: &str, lines: usize) -> String {
        let mut stream = std::pin::pin!(self.logs(container, Some(lines), false));
        let mut out = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&String::from_utf8_lossy(&chunk));
        }
        out
    }
}
