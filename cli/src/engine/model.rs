//! What the engine client takes and gives, in metrtest's words: a container
//! to create, and what the engine reports about containers and networks.
//! The bollard types they stand for stay in this module and the client.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, EndpointSettings, HostConfig,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use serde::{Deserialize, Serialize};

use crate::engine::labels;

/// A container to create: what runs, how it is confined, where it is attached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRequest {
    /// The container's name.
    pub name: String,
    /// The service it plays, for error messages.
    pub service: String,
    pub image: String,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// Replaces the image's command when not empty.
    pub cmd: Vec<String>,
    pub user: Option<String>,
    pub labels: HashMap<String, String>,
    /// The port published, if any.
    pub publish: Option<Publish>,
    /// How long a stop waits before it kills; the engine's default when `None`.
    pub stop_grace: Option<Duration>,
    /// Memory and swap together, in bytes.
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    /// Restarts the engine makes after a failure; `None`: never restarted.
    pub restarts: Option<u32>,
    /// The engine removes the container once it exits.
    pub auto_remove: bool,
    pub read_only: bool,
    /// No new privileges and no capabilities.
    pub hardened: bool,
    /// Mount points of tmpfs file systems, with their options.
    pub tmpfs: HashMap<String, String>,
    /// `SOURCE:TARGET[:OPTIONS]` binds (volumes and host paths).
    pub binds: Vec<String>,
    pub attach: Attachment,
}

/// A container port published on the engine's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub port: u16,
    pub host_ip: String,
    /// `None`: the engine picks one.
    pub host_port: Option<u16>,
}

/// Where a container's network traffic goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Attachment {
    /// The engine's default network.
    #[default]
    Default,
    /// A network, where peers find the container by its aliases.
    Network { name: String, aliases: Vec<String> },
    /// The network namespace of another container.
    JoinContainer(String),
}

impl ContainerRequest {
    /// The engine's create request.
    pub(crate) fn body(&self) -> ContainerCreateBody {
        let port = self.publish.as_ref().map(|p| format!("{}/tcp", p.port));
        let bindings = self.publish.as_ref().zip(port.clone()).map(|(p, port)| {
            let binding = PortBinding {
                host_ip: Some(p.host_ip.clone()),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            };
            HashMap::from([(port, Some(vec![binding]))])
        });
        let (network_mode, networking_config) = match &self.attach {
            Attachment::Default => (None, None),
            Attachment::JoinContainer(other) => (Some(format!("container:{other}")), None),
            Attachment::Network { name, aliases } => (
                Some(name.clone()),
                Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        name.clone(),
                        EndpointSettings {
                            aliases: Some(aliases.clone()),
                            ..Default::default()
                        },
                    )])),
                }),
            ),
        };
        let restart_policy = match self.restarts {
            Some(max) => RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(i64::from(max)),
            },
            None => RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            },
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            env: Some(self.env.clone()),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            user: self.user.clone(),
            labels: Some(self.labels.clone()),
            exposed_ports: port.map(|p| vec![p]),
            stop_timeout: self.stop_grace.map(|g| g.as_secs() as i64),
            host_config: Some(HostConfig {
                memory: self.memory,
                memory_swap: self.memory,
                pids_limit: self.pids,
                restart_policy: (!self.auto_remove).then_some(restart_policy),
                auto_remove: self.auto_remove.then_some(true),
                port_bindings: bindings,
                readonly_rootfs: Some(self.read_only),
                security_opt: self.hardened.then(|| vec!["no-new-privileges".into()]),
                cap_drop: self.hardened.then(|| vec!["ALL".into()]),
                tmpfs: (!self.tmpfs.is_empty()).then(|| self.tmpfs.clone()),
                binds: (!self.binds.is_empty()).then(|| self.binds.clone()),
                network_mode,
                ..Default::default()
            }),
            networking_config,
            ..Default::default()
        }
    }
}

/// A container as a listing shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    /// The engine's word: running, exited, paused, created, ….
    pub state: String,
    /// Unix time of its creation.
    pub created: Option<i64>,
    /// Its published ports.
    pub ports: Vec<PublishedPort>,
}

/// A container port published on a host port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedPort {
    pub container: u16,
    pub host: u16,
    /// The host address it is bound to, if the engine says.
    pub host_ip: Option<String>,
}

impl Container {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// The run it belongs to.
    pub fn run(&self) -> Option<&str> {
        self.label(labels::RUN)
    }

    /// The service it plays in its run.
    pub fn service(&self) -> Option<&str> {
        self.label(labels::SERVICE)
    }

    /// Whether it is a run's reaper.
    pub fn is_reaper(&self) -> bool {
        self.service() == Some(labels::REAPER_SERVICE)
    }

    pub(crate) fn of(summary: ContainerSummary) -> Container {
        Container {
            id: summary.id.unwrap_or_default(),
            image: summary.image.unwrap_or_default(),
            labels: summary.labels.unwrap_or_default(),
            state: summary.state.map(|s| s.to_string()).unwrap_or_default(),
            created: summary.created,
            ports: summary
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| {
                    Some(PublishedPort {
                        container: p.private_port,
                        host: p.public_port?,
                        host_ip: p.ip,
                    })
                })
                .collect(),
        }
    }
}

/// The parts of a container's state that tell a death or a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// A container as an inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDetails {
    pub id: String,
    pub state: ContainerState,
    /// Its environment, `KEY=value`.
    pub env: Vec<String>,
    /// Host ports by container port (`8080/tcp`).
    pub published: HashMap<String, Vec<u16>>,
    /// How it is attached, by network name.
    pub networks: HashMap<String, NetworkEndpoint>,
}

/// How a container is attached to one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkEndpoint {
    pub aliases: Vec<String>,
    /// Its IPv4 address there, if it has one.
    pub ipv4: Option<String>,
}

impl ContainerDetails {
    /// The host port published for the container's TCP `port`.
    pub fn host_port(&self, port: u16) -> Option<u16> {
        self.published.get(&format!("{port}/tcp"))?.first().copied()
    }

    pub(crate) fn of(info: ContainerInspectResponse) -> ContainerDetails {
        let state = info.state.clone().unwrap_or_default();
        let settings = info.network_settings.unwrap_or_default();
        ContainerDetails {
            id: info.id.unwrap_or_default(),
            state: ContainerState {
                running: state.running.unwrap_or(false),
                status: state.status.map(|s| s.to_string()).unwrap_or_default(),
                exit_code: state.exit_code.unwrap_or(0),
                oom_killed: state.oom_killed.unwrap_or(false),
                restart_count: info.restart_count.unwrap_or(0),
                started_at: state.started_at.unwrap_or_default(),
            },
            env: info.config.and_then(|c| c.env).unwrap_or_default(),
            published: settings
                .ports
                .unwrap_or_default()
                .into_iter()
                .map(|(port, bindings)| {
                    let hosts = bindings
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|b| b.host_port?.parse().ok())
                        .collect();
                    (port, hosts)
                })
                .collect(),
            networks: settings
                .networks
                .unwrap_or_default()
                .into_iter()
                .map(|(name, e)| {
                    let endpoint = NetworkEndpoint {
                        aliases: e.aliases.unwrap_or_default(),
                        ipv4: e.ip_address.filter(|ip| !ip.is_empty()),
                    };
                    (name, endpoint)
                })
                .collect(),
        }
    }
}

/// A network's IPv4 subnet and gateway, as the engine assigned or is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subnet {
    pub subnet: String,
    pub gateway: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ContainerRequest {
        ContainerRequest {
            name: "metrtest-abc-api".into(),
            service: "api".into(),
            image: "metrtest/api:x".into(),
            publish: Some(Publish {
                port: 8080,
                host_ip: "127.0.0.1".into(),
                host_port: Some(24_000),
            }),
            hardened: true,
            read_only: true,
            restarts: Some(5),
            attach: Attachment::Network {
                name: "metrtest-abc".into(),
                aliases: vec!["api".into()],
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_request_becomes_the_engines_create_body() {
        let body = request().body();
        let host = body.host_config.expect("host config");
        assert_eq!(
            host.port_bindings.expect("published")["8080/tcp"],
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some("24000".into()),
            }])
        );
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_owned()])
        );
        let policy = host.restart_policy.expect("a restart policy");
        assert_eq!(policy.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(policy.maximum_retry_count, Some(5));
        assert_eq!(host.network_mode.as_deref(), Some("metrtest-abc"));
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["metrtest-abc"].aliases, Some(vec!["api".into()]));
        assert_eq!(body.cmd, None, "the image's command");
    }

    #[test]
    fn an_engine_chosen_port_and_a_joined_namespace() {
        let mut request = request();
        request.publish.as_mut().unwrap().host_port = None;
        request.attach = Attachment::JoinContainer("metrtest-abc-postgres".into());
        request.auto_remove = true;
        let body = request.body();
        let host = body.host_config.unwrap();
        assert_eq!(
            host.port_bindings.unwrap()["8080/tcp"].as_ref().unwrap()[0].host_port,
            Some(String::new())
        );
        assert_eq!(
            host.network_mode.as_deref(),
            Some("container:metrtest-abc-postgres")
        );
        assert_eq!(host.auto_remove, Some(true));
        assert_eq!(host.restart_policy, None, "the engine removes it instead");
        assert_eq!(body.networking_config, None);
    }
}
