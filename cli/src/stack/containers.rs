//! A stack's containers on the engine: the create request of a service's
//! container (hardened, labelled, its port published on a free host port),
//! creating and starting it, and reading containers and their logs back.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
};
use futures::StreamExt;

use crate::engine::endpoint;
use crate::engine::error::{EngineError, Result};
use crate::engine::labels;
use crate::stack::spec::{Readiness, Restart, ServiceSpec};

/// Name of a run's volume.
pub fn volume_name(run_id: &str, service: &str, suffix: &str) -> String {
    format!("metrtest-{run_id}-{service}-{suffix}")
}

/// The create request of a service's container, publishing its port on
/// `host_port` of the engine's loopback (every address of a remote engine's
/// host, see [`endpoint::bind_ip`]): an explicit port, so that the container keeps it
/// across a stop and start (an engine-chosen port changes on every start).
/// `restart` applies to long-running services; a one-shot step never restarts.
pub fn container_body(
    service: &ServiceSpec,
    run_id: &str,
    network: &str,
    host_port: u16,
    restart: Restart,
) -> ContainerCreateBody {
    let port = format!("{}/tcp", service.port);
    let mut labels = labels::run_labels(run_id, Some(&service.name));
    labels.insert(
        labels::STARTED.into(),
        chrono::Utc::now().timestamp().to_string(),
    );
    let binding = PortBinding {
        host_ip: Some(endpoint::bind_ip().into()),
        host_port: Some(host_port.to_string()),
    };
    // A one-shot step serves nothing: no port to publish.
    let publishes = service.readiness != Readiness::Exit;
    ContainerCreateBody {
        image: Some(service.image.clone()),
        env: Some(
            service
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        cmd: (!service.cmd.is_empty()).then(|| service.cmd.clone()),
        user: service.user.clone(),
        labels: Some(labels),
        exposed_ports: publishes.then(|| vec![port.clone()]),
        stop_timeout: Some(service.limits.stop_grace.as_secs() as i64),
        host_config: Some(HostConfig {
            memory: Some(service.limits.memory),
            memory_swap: Some(service.limits.memory),
            pids_limit: Some(service.limits.pids),
            restart_policy: Some(restart_policy(restart, publishes)),
            port_bindings: publishes.then(|| HashMap::from([(port, Some(vec![binding]))])),
            readonly_rootfs: Some(service.read_only),
            security_opt: Some(vec!["no-new-privileges".into()]),
            cap_drop: Some(vec!["ALL".into()]),
            tmpfs: (!service.tmpfs.is_empty()).then(|| service.tmpfs.iter().cloned().collect()),
            binds: (!service.volumes.is_empty()).then(|| {
                service
                    .volumes
                    .iter()
                    .map(|(suffix, path)| {
                        format!("{}:{path}", volume_name(run_id, &service.name, suffix))
                    })
                    .collect()
            }),
            network_mode: Some(match &service.joins {
                Some(other) => format!("container:{}", labels::container_name(run_id, other)),
                None => network.to_owned(),
            }),
            ..Default::default()
        }),
        networking_config: service.joins.is_none().then(|| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_owned(),
                EndpointSettings {
                    aliases: Some(vec![service.name.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

/// The engine's restart policy for `restart`; never for a one-shot step.
fn restart_policy(restart: Restart, long_running: bool) -> RestartPolicy {
    match restart {
        Restart::OnFailure { max } if long_running => RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(i64::from(max)),
        },
        _ => RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
    }
}

/// Host ports tried before giving up on finding a free one.
const PORT_ATTEMPTS: usize = 8;

/// Creates and starts a service's container on a free host port; if another
/// process takes that port in between, tries again with another.
pub(crate) async fn create_and_start(
    docker: &Docker,
    service: &ServiceSpec,
    restart: Restart,
    run_id: &str,
    network: &str,
    name: &str,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let host_port = free_port()?;
        let options = CreateContainerOptions {
            name: Some(name.to_owned()),
            ..Default::default()
        };
        let body = container_body(service, run_id, network, host_port, restart);
        docker
            .create_container(Some(options), body)
            .await
            .map_err(|source| EngineError::CreateContainer {
                container: name.to_owned(),
                service: service.name.clone(),
                source,
            })?;
        match docker.start_container(name, None).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < PORT_ATTEMPTS && port_taken(&e) => {
                // To retry on another port.
                let options = RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                docker
                    .remove_container(name, Some(options))
                    .await
                    .map_err(|source| EngineError::RemoveContainer {
                        container: name.to_owned(),
                        source,
                    })?;
            }
            Err(source) => {
                return Err(EngineError::StartContainer {
                    container: name.to_owned(),
                    service: service.name.clone(),
                    source,
                });
            }
        }
    }
}

fn port_taken(err: &bollard::errors::Error) -> bool {
    let text = err.to_string();
    text.contains("port is already allocated") || text.contains("address already in use")
}

/// A port on 127.0.0.1 free right now, below the usual ephemeral range (so
/// outgoing connections are unlikely to take it while a container is stopped).
/// A remote engine's ports cannot be probed from here: a random one, retried
/// on "port is already allocated".
fn free_port() -> Result<u16> {
    if endpoint::bind_ip() != "127.0.0.1" {
        return Ok(rand::random_range(20_000..32_000));
    }
    for _ in 0..200 {
        let port = rand::random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(EngineError::NoFreePort)
}

/// What the engine knows about a container.
pub async fn inspect_container(
    docker: &Docker,
    container: &str,
) -> Result<bollard::models::ContainerInspectResponse> {
    docker
        .inspect_container(container, None)
        .await
        .map_err(|source| EngineError::InspectContainer {
            container: container.to_owned(),
            source,
        })
}

/// The last `lines` lines of a container's output (stdout and stderr).
pub async fn tail_logs(docker: &Docker, container: &str, lines: usize) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut stream = docker.logs(container, Some(options));
    let mut out = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    out
}

/// Containers of one run (`Some`) or of every run (`None`), stopped ones included.
pub async fn list_containers(
    docker: &Docker,
    run: Option<&str>,
) -> Result<Vec<bollard::models::ContainerSummary>> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(labels::run_filter(run)),
        ..Default::default()
    };
    docker
        .list_containers(Some(options))
        .await
        .map_err(|source| EngineError::ListContainers { source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::envfile::EnvFile;
    use crate::stack::images::ImageSet;
    use crate::stack::spec::{MIGRATE, StackSpec};

    fn service(name: &str) -> ServiceSpec {
        let spec = StackSpec::build(&ImageSet::default(), &EnvFile::default());
        spec.services
            .into_iter()
            .find(|s| s.name == name)
            .expect(name)
    }

    #[test]
    fn a_service_is_published_on_its_host_port_under_its_own_name_and_hardened() {
        let api = service("api");
        let body = container_body(&api, "abc", "metrtest-abc", 24_000, Restart::Never);
        let host = body.host_config.expect("host config");
        let port = format!("{}/tcp", api.port);
        let bindings = host.port_bindings.expect("published")[&port].clone();
        assert_eq!(
            bindings,
            Some(vec![PortBinding {
                host_ip: Some(endpoint::bind_ip().into()),
                host_port: Some("24000".into()),
            }])
        );
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        assert_eq!(
            host.restart_policy.and_then(|p| p.name),
            Some(RestartPolicyNameEnum::NO)
        );
        assert_eq!(host.network_mode.as_deref(), Some("metrtest-abc"));
        let endpoint = &body.networking_config.unwrap().endpoints_config.unwrap()["metrtest-abc"];
        assert_eq!(endpoint.aliases, Some(vec!["api".to_owned()]));
        let labels = body.labels.unwrap();
        assert_eq!(labels[labels::RUN], "abc");
        assert_eq!(labels[labels::SERVICE], "api");
    }

    #[test]
    fn a_one_shot_step_publishes_nothing() {
        let migrate = service(MIGRATE);
        let body = container_body(&migrate, "abc", "metrtest-abc", 24_001, Restart::Never);
        assert_eq!(body.exposed_ports, None);
        assert_eq!(body.host_config.as_ref().unwrap().port_bindings, None);
        assert_eq!(body.cmd, Some(vec!["migrate".to_owned()]));
        assert_eq!(
            body.networking_config, None,
            "no place on the stack's network"
        );
        assert_eq!(
            body.host_config.unwrap().network_mode.as_deref(),
            Some("container:metrtest-abc-postgres"),
            "it shares PostgreSQL's network namespace"
        );
    }

    #[test]
    fn an_up_stack_restarts_a_crashed_service_a_few_times_but_never_a_one_shot_step() {
        let up = Restart::OnFailure { max: 5 };
        let policy = |service: &ServiceSpec| {
            container_body(service, "abc", "metrtest-abc", 24_003, up)
                .host_config
                .and_then(|h| h.restart_policy)
                .expect("a restart policy")
        };
        for name in ["postgres", "gometr", "checker", "api"] {
            let p = policy(&service(name));
            assert_eq!(p.name, Some(RestartPolicyNameEnum::ON_FAILURE), "{name}");
            assert_eq!(p.maximum_retry_count, Some(5), "{name}");
        }
        assert_eq!(
            policy(&service(MIGRATE)).name,
            Some(RestartPolicyNameEnum::NO)
        );
    }

    #[test]
    fn the_database_volume_is_named_after_the_run() {
        let postgres = service("postgres");
        let body = container_body(&postgres, "abc", "metrtest-abc", 24_002, Restart::Never);
        let binds = body.host_config.unwrap().binds.expect("a volume");
        assert_eq!(binds.len(), 1);
        assert!(
            binds[0].starts_with("metrtest-abc-postgres-pgdata:"),
            "{binds:?}"
        );
    }

    #[test]
    fn a_free_port_can_be_bound_and_lies_below_the_ephemeral_range() {
        let port = free_port().expect("a free port");
        assert!((20_000..32_000).contains(&port));
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }

    #[test]
    fn a_taken_port_is_recognised_from_the_engines_words() {
        use crate::engine::error::engine_says;
        assert!(port_taken(&engine_says(
            "Bind for 127.0.0.1:24000 failed: port is already allocated"
        )));
        assert!(!port_taken(&engine_says("no such image")));
    }
}
