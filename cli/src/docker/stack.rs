//! Starting a stack on a private network, waiting until each service is ready,
//! and removing everything a run created, found by its label.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::docker::engine::root_cause;
use crate::docker::labels;
use crate::docker::spec::{Readiness, ServiceSpec, StackSpec};
use crate::exit::{Failure, Result};
use crate::ui::Ui;

/// Runs this process started and has not yet removed: torn down on any exit
/// path, panics included (see `cli::main`).
static ACTIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn register(run: &str) {
    ACTIVE.lock().expect("active runs").push(run.to_owned());
}

/// Forgets a run: it was removed, or the user asked to keep it.
pub fn release(run: &str) {
    ACTIVE.lock().expect("active runs").retain(|r| r != run);
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
    let network = labels::network_name(run_id);
    let request = NetworkCreateRequest {
        name: network.clone(),
        driver: Some("bridge".into()),
        labels: Some(labels::run_labels(run_id, None)),
        ..Default::default()
    };
    docker.create_network(request).await.map_err(|e| {
        Failure::environment(format!("create network {network}: {}", root_cause(&e)))
    })?;

    let mut running = Vec::new();
    for wave in spec.waves() {
        let starts = wave
            .iter()
            .map(|service| start_service(docker, spec, service, run_id, &network, ui));
        let all = futures::future::join_all(starts);
        let results = tokio::select! {
            results = all => results,
            _ = interrupt.cancelled() => return Err(Failure::interrupted()),
        };
        for result in results {
            running.push(result?);
        }
    }
    let pg = running
        .iter()
        .find(|s| s.name == "postgres")
        .map(|s| s.host_port)
        .unwrap_or(0);
    Ok(Stack {
        run_id: run_id.to_owned(),
        network,
        services: running,
        postgres_url: format!(
            "postgres://{}:{}@127.0.0.1:{pg}/{}",
            spec.db_user, spec.db_password, spec.db_name
        ),
        ready_in: began.elapsed(),
    })
}

/// Name of a run's volume.
pub fn volume_name(run_id: &str, service: &str, suffix: &str) -> String {
    format!("metrtest-{run_id}-{service}-{suffix}")
}

fn container_body(service: &ServiceSpec, run_id: &str, network: &str) -> ContainerCreateBody {
    let port = format!("{}/tcp", service.port);
    let mut labels = labels::run_labels(run_id, Some(&service.name));
    labels.insert(
        labels::STARTED.into(),
        chrono::Utc::now().timestamp().to_string(),
    );
    let binding = PortBinding {
        host_ip: Some("127.0.0.1".into()),
        host_port: Some(String::new()),
    };
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
        exposed_ports: Some(vec![port.clone()]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([(port, Some(vec![binding]))])),
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
            network_mode: Some(network.to_owned()),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
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

async fn start_service(
    docker: &Docker,
    spec: &StackSpec,
    service: &ServiceSpec,
    run_id: &str,
    network: &str,
    ui: &Ui,
) -> Result<RunningService> {
    let name = labels::container_name(run_id, &service.name);
    let task = ui.task(format!("{:<9}", service.name));
    let fail = |what: &str, e: &bollard::errors::Error| {
        Failure::environment(format!("{what} {}: {}", service.name, root_cause(e)))
    };
    // Create the run's volumes explicitly, labelled: a volume the engine makes
    // implicitly for a bind carries no label, and teardown finds resources by label.
    for (suffix, _) in &service.volumes {
        let request = bollard::models::VolumeCreateRequest {
            name: Some(volume_name(run_id, &service.name, suffix)),
            labels: Some(labels::run_labels(run_id, Some(&service.name))),
            ..Default::default()
        };
        docker
            .create_volume(request)
            .await
            .map_err(|e| fail("create a volume for", &e))?;
    }
    let options = CreateContainerOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    docker
        .create_container(Some(options), container_body(service, run_id, network))
        .await
        .map_err(|e| fail("create container for", &e))?;
    docker
        .start_container(&name, None)
        .await
        .map_err(|e| fail("start", &e))?;
    let host_port = published_port(docker, &name, service.port).await?;
    task.update(format!("waiting for readiness on 127.0.0.1:{host_port}"));
    let started = Instant::now();
    if let Err(why) = wait_ready(docker, spec, service, &name, host_port).await {
        task.fail("never became ready");
        let logs = tail_logs(docker, &name, 30).await;
        return Err(Failure::environment(format!(
            "service {} did not become ready within {}: {why}\nits last log lines:\n{}",
            service.name,
            humantime::format_duration(spec.readiness_timeout),
            indent(&logs)
        )));
    }
    task.done(format!("ready in {:.1} s", started.elapsed().as_secs_f64()));
    let url = match service.readiness {
        Readiness::Postgres => format!("postgres://127.0.0.1:{host_port}"),
        Readiness::Http { .. } => format!("http://127.0.0.1:{host_port}"),
    };
    Ok(RunningService {
        name: service.name.clone(),
        container: name,
        host_port,
        url,
    })
}

fn indent(text: &str) -> String {
    if text.trim().is_empty() {
        return "    (no output)".into();
    }
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The host port the engine chose for `port`, read back by inspect.
pub async fn published_port(docker: &Docker, container: &str, port: u16) -> Result<u16> {
    let info = docker
        .inspect_container(container, None)
        .await
        .map_err(|e| Failure::environment(format!("inspect {container}: {}", root_cause(&e))))?;
    info.network_settings
        .and_then(|n| n.ports)
        .and_then(|ports| ports.get(&format!("{port}/tcp")).cloned().flatten())
        .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port?.parse().ok()))
        .ok_or_else(|| {
            Failure::environment(format!("{container} has no published port for {port}"))
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
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{port}/{}",
        spec.db_user, spec.db_password, spec.db_name
    );
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
        .get(format!("http://127.0.0.1:{port}/health"))
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
        .map_err(|e| Failure::environment(format!("list containers: {}", root_cause(&e))))
}

/// What a teardown removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

/// Removes every container, network and volume labelled with the run (or with
/// any run for `None`). Resources without metrtest's label are never touched.
/// Containers first get `grace` to stop unless `force` is cancelled meanwhile.
pub async fn teardown(
    docker: &Docker,
    run: Option<&str>,
    grace: Duration,
    force: &CancellationToken,
) -> Result<Removed> {
    let mut removed = Removed::default();
    let containers = list_containers(docker, run).await?;
    let ids: Vec<String> = containers.into_iter().filter_map(|c| c.id).collect();
    if !grace.is_zero() {
        let stops = ids.iter().map(|id| {
            let options = bollard::query_parameters::StopContainerOptions {
                t: Some(grace.as_secs() as i32),
                ..Default::default()
            };
            docker.stop_container(id, Some(options))
        });
        tokio::select! {
            _ = futures::future::join_all(stops) => {}
            _ = force.cancelled() => {}
        }
    }
    let removals = ids.iter().map(|id| {
        docker.remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
    });
    for result in futures::future::join_all(removals).await {
        match result {
            Ok(()) => removed.containers += 1,
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Failure::environment(format!(
                    "remove a container: {}",
                    root_cause(&e)
                )));
            }
        }
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(labels::run_filter(run)),
        }))
        .await
        .map_err(|e| Failure::environment(format!("list networks: {}", root_cause(&e))))?;
    for network in networks {
        let Some(id) = network.id else { continue };
        match docker.remove_network(&id).await {
            Ok(()) => removed.networks += 1,
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Failure::environment(format!(
                    "remove network {id}: {}",
                    root_cause(&e)
                )));
            }
        }
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(labels::run_filter(run)),
        }))
        .await
        .map_err(|e| Failure::environment(format!("list volumes: {}", root_cause(&e))))?;
    for volume in volumes.volumes.unwrap_or_default() {
        match docker
            .remove_volume(&volume.name, Some(RemoveVolumeOptions { force: true }))
            .await
        {
            Ok(()) => removed.volumes += 1,
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Failure::environment(format!(
                    "remove volume {}: {}",
                    volume.name,
                    root_cause(&e)
                )));
            }
        }
    }
    if let Some(run) = run {
        release(run);
    }
    Ok(removed)
}

fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
