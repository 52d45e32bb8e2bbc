//! A stack's containers on the engine: the create request of a service's
//! container (hardened, labelled, its port published on a free host port),
//! and creating and starting it.

use crate::engine::endpoint;
use crate::engine::error::{EngineError, Result};
use crate::engine::labels;
use crate::engine::{Attachment, Client, ContainerRequest, Publish};
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
pub fn container_request(
    service: &ServiceSpec,
    run_id: &str,
    network: &str,
    host_port: u16,
    restart: Restart,
) -> ContainerRequest {
    let mut labels = labels::run_labels(run_id, Some(&service.name));
    labels.insert(
        labels::STARTED.into(),
        chrono::Utc::now().timestamp().to_string(),
    );
    // A one-shot step serves nothing: no port to publish.
    let publishes = service.readiness != Readiness::Exit;
    ContainerRequest {
        name: labels::container_name(run_id, &service.name),
        service: service.name.clone(),
        image: service.image.clone(),
        env: service
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        cmd: service.cmd.clone(),
        user: service.user.clone(),
        labels,
        publish: publishes.then(|| Publish {
            port: service.port,
            host_ip: endpoint::bind_ip().into(),
            host_port: Some(host_port),
        }),
        stop_grace: Some(service.limits.stop_grace),
        memory: Some(service.limits.memory),
        pids: Some(service.limits.pids),
        restarts: match restart {
            Restart::OnFailure { max } if publishes => Some(max),
            _ => None,
        },
        auto_remove: false,
        read_only: service.read_only,
        hardened: true,
        tmpfs: service.tmpfs.iter().cloned().collect(),
        binds: service
            .volumes
            .iter()
            .map(|(suffix, path)| format!("{}:{path}", volume_name(run_id, &service.name, suffix)))
            .collect(),
        attach: match &service.joins {
            Some(other) => Attachment::JoinContainer(labels::container_name(run_id, other)),
            None => Attachment::Network {
                name: network.to_owned(),
                aliases: vec![service.name.clone()],
            },
        },
    }
}

/// Host ports tried before giving up on finding a free one.
const PORT_ATTEMPTS: usize = 8;

/// Creates and starts a service's container on a free host port; if another
/// process takes that port in between, tries again with another.
pub(crate) async fn create_and_start(
    engine: &Client,
    service: &ServiceSpec,
    restart: Restart,
    run_id: &str,
    network: &str,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let request = container_request(service, run_id, network, free_port()?, restart);
        engine.create_container(&request).await?;
        match engine.start_container(&request.name, &service.name).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < PORT_ATTEMPTS && port_taken(&e) => {
                // To retry on another port.
                engine.remove_container(&request.name).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

fn port_taken(err: &EngineError) -> bool {
    err.engine_says(&["port is already allocated", "address already in use"])
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
        let request = container_request(&api, "abc", "metrtest-abc", 24_000, Restart::Never);
        assert_eq!(request.name, "metrtest-abc-api");
        assert_eq!(
            request.publish,
            Some(Publish {
                port: api.port,
                host_ip: endpoint::bind_ip().into(),
                host_port: Some(24_000),
            })
        );
        assert!(request.hardened);
        assert_eq!(request.restarts, None);
        assert_eq!(
            request.attach,
            Attachment::Network {
                name: "metrtest-abc".into(),
                aliases: vec!["api".into()],
            }
        );
        assert_eq!(request.labels[labels::RUN], "abc");
        assert_eq!(request.labels[labels::SERVICE], "api");
    }

    #[test]
    fn a_one_shot_step_publishes_nothing() {
        let migrate = service(MIGRATE);
        let request = container_request(&migrate, "abc", "metrtest-abc", 24_001, Restart::Never);
        assert_eq!(request.publish, None);
        assert_eq!(request.cmd, vec!["migrate".to_owned()]);
        assert_eq!(
            request.attach,
            Attachment::JoinContainer("metrtest-abc-postgres".into()),
            "it shares PostgreSQL's network namespace"
        );
    }

    #[test]
    fn an_up_stack_restarts_a_crashed_service_a_few_times_but_never_a_one_shot_step() {
        let up = Restart::OnFailure { max: 5 };
        let restarts = |service: &ServiceSpec| {
            container_request(service, "abc", "metrtest-abc", 24_003, up).restarts
        };
        for name in ["postgres", "gometr", "checker", "api"] {
            assert_eq!(restarts(&service(name)), Some(5), "{name}");
        }
        assert_eq!(restarts(&service(MIGRATE)), None);
    }

    #[test]
    fn the_database_volume_is_named_after_the_run() {
        let postgres = service("postgres");
        let request = container_request(&postgres, "abc", "metrtest-abc", 24_002, Restart::Never);
        assert_eq!(request.binds.len(), 1);
        assert!(
            request.binds[0].starts_with("metrtest-abc-postgres-pgdata:"),
            "{:?}",
            request.binds
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
        let failed = |message: &str| EngineError::StartContainer {
            container: "metrtest-abc-api".into(),
            service: "api".into(),
            source: engine_says(message),
        };
        assert!(port_taken(&failed(
            "Bind for 127.0.0.1:24000 failed: port is already allocated"
        )));
        assert!(!port_taken(&failed("no such image")));
    }
}
