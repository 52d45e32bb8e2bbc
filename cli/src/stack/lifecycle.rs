//! Starting a stack on a private network, waiting until each service is ready,
//! and removing everything a run created, found by its label.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, LogsOptions, RemoveContainerOptions,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::engine::endpoint;
use crate::engine::error::{EngineError, Result};
use crate::engine::labels;
use crate::stack::private_network;
use crate::stack::spec::{Readiness, Restart, ServiceSpec, StackSpec};
pub use crate::stack::teardown::{Removed, teardown, teardown_settled};
use crate::ui::Ui;

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
    docker: &Docker,
    spec: &StackSpec,
    run_id: &str,
    ui: &Ui,
    interrupt: &CancellationToken,
) -> Result<Stack> {
    let began = Instant::now();
    register(run_id);
    let network = private_network::create(docker, run_id, spec.pinned_subnet).await?;

    let mut running = Vec::new();
    for wave in spec.waves() {
        let starts = wave
            .iter()
            .map(|service| start_service(docker, spec, service, run_id, &network, ui));
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

async fn start_service(
    docker: &Docker,
    spec: &StackSpec,
    service: &ServiceSpec,
    run_id: &str,
    network: &str,
    ui: &Ui,
) -> Result<Option<RunningService>> {
    let name = labels::container_name(run_id, &service.name);
    let task = ui.task(format!("{:<9}", service.name));
    // Create the run's volumes explicitly, labelled: a volume the engine makes
    // implicitly for a bind carries no label, and teardown finds resources by label.
    for (suffix, _) in &service.volumes {
        let volume = volume_name(run_id, &service.name, suffix);
        let request = bollard::models::VolumeCreateRequest {
            name: Some(volume.clone()),
            labels: Some(labels::run_labels(run_id, Some(&service.name))),
            ..Default::default()
        };
        docker
            .create_volume(request)
            .await
            .map_err(|source| EngineError::CreateVolume {
                volume,
                service: service.name.clone(),
                source,
            })?;
    }
    create_and_start(docker, service, spec.restart, run_id, network, &name).await?;
    if service.readiness == Readiness::Exit {
        let started = Instant::now();
        task.update("running to completion");
        if let Err(failure) = run_to_completion(docker, spec, service, &name).await {
            task.fail("failed");
            return Err(failure);
        }
        task.done(format!("done in {:.1} s", started.elapsed().as_secs_f64()));
        return Ok(None);
    }
    let host_port = published_port(docker, &name, service.port).await?;
    let host = endpoint::reach_host();
    task.update(format!("waiting for readiness on {host}:{host_port}"));
    let started = Instant::now();
    if let Err(reason) = wait_ready(docker, spec, service, &name, host_port).await {
        task.fail("never became ready");
        return Err(EngineError::NotReady {
            service: service.name.clone(),
            within: spec.readiness_timeout,
            reason,
            logs: tail_logs(docker, &name, LOG_LINES).await,
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
    docker: &Docker,
    spec: &StackSpec,
    service: &ServiceSpec,
    container: &str,
) -> Result<()> {
    let deadline = Instant::now() + spec.readiness_timeout;
    let code = loop {
        if let Some(code) = exit_code(docker, container).await? {
            break Some(code);
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if code == Some(0) {
        let options = RemoveContainerOptions {
            force: true,
            ..Default::default()
        };
        return docker
            .remove_container(container, Some(options))
            .await
            .map_err(|source| EngineError::RemoveContainer {
                container: container.to_owned(),
                source,
            });
    }
    Err(EngineError::OneShotFailed {
        service: service.name.clone(),
        container: container.to_owned(),
        exit_code: code,
        within: spec.readiness_timeout,
        logs: tail_logs(docker, container, LOG_LINES).await,
    })
}

/// A container's exit code once it stopped, `None` while it runs.
async fn exit_code(docker: &Docker, container: &str) -> Result<Option<i64>> {
    let info = inspect_container(docker, container).await?;
    let state = info.state.unwrap_or_default();
    Ok(match state.running {
        Some(true) => None,
        _ => state.exit_code,
    })
}

/// Host ports tried before giving up on finding a free one.
const PORT_ATTEMPTS: usize = 8;

/// Creates and starts a service's container on a free host port; if another
/// process takes that port in between, tries again with another.
async fn create_and_start(
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

/// The host port the engine chose for `port`, read back by inspect.
pub async fn published_port(docker: &Docker, container: &str, port: u16) -> Result<u16> {
    let info = inspect_container(docker, container).await?;
    info.network_settings
        .and_then(|n| n.ports)
        .and_then(|ports| ports.get(&format!("{port}/tcp")).cloned().flatten())
        .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port?.parse().ok()))
        .ok_or_else(|| EngineError::NoPublishedPort {
            container: container.to_owned(),
            port: Some(port),
        })
}

pub async fn wait_ready(
    docker: &Docker,
    spec: &StackSpec,
    service: &ServiceSpec,
    container: &str,
    port: u16,
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + spec.readiness_timeout;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let mut last = String::from("no attempt yet");
    while Instant::now() < deadline {
        let attempt = match service.readiness {
            Readiness::Postgres => postgres_ready(spec, port).await,
            Readiness::Http { success } => http_ready(&client, port, success).await,
            // One-shot steps are awaited by `run_to_completion`, not probed.
            Readiness::Exit => return Ok(()),
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(why) => last = why,
        }
        if !container_running(docker, container).await {
            return Err(format!("the container exited ({last})"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

async fn postgres_ready(spec: &StackSpec, port: u16) -> std::result::Result<(), String> {
    let url = spec.host_postgres_url(port);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("login: {e}"))?;
    let task = tokio::spawn(connection);
    let result = client
        .simple_query("SELECT 1")
        .await
        .map(|_| ())
        .map_err(|e| format!("SELECT 1: {e}"));
    drop(client);
    let _ = task.await;
    result
}

async fn http_ready(
    client: &reqwest::Client,
    port: u16,
    success: bool,
) -> std::result::Result<(), String> {
    let response = client
        .get(format!("http://{}:{port}/health", endpoint::reach_host()))
        .send()
        .await
        .map_err(|e| format!("GET /health: {e}"))?;
    if !success || response.status().is_success() {
        Ok(())
    } else {
        Err(format!("GET /health answered {}", response.status()))
    }
}

async fn container_running(docker: &Docker, container: &str) -> bool {
    docker
        .inspect_container(container, None)
        .await
        .ok()
        .and_then(|i| i.state)
        .and_then(|s| s.running)
        .unwrap_or(false)
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
    use crate::stack::spec::MIGRATE;

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
