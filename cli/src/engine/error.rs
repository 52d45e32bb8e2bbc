//! What can go wrong in the docker layer: one variant per engine operation it
//! performs (each wrapping the engine's error, so that the message says what
//! was being done), and the layer's own failures (a service that never became
//! ready, a one-shot step that failed, a build that broke).
//!
//! Messages are lowercase and read well after "failed to"; the engine's error
//! is quoted by its root cause (see [`root_cause`]) and kept as the source.
//! Which exit code each variant means is decided in one place:
//! [`crate::exit::exit_kind`].

use std::time::Duration;

use bollard::errors::Error as Bollard;

use crate::engine::root_cause;

/// The engine's own error, as tests outside this module name it.
#[cfg(test)]
pub(crate) type EngineAnswer = Bollard;

/// An error answer of the engine with `message`, as tests of the code that
/// reads the engine's words build it.
#[cfg(test)]
pub(crate) fn engine_says(message: &str) -> Bollard {
    engine_says_with(500, message)
}

/// An error answer of the engine with HTTP `status_code` and `message`.
#[cfg(test)]
pub(crate) fn engine_says_with(status_code: u16, message: &str) -> Bollard {
    Bollard::DockerResponseServerError {
        status_code,
        message: message.to_owned(),
    }
}

/// The docker layer's result.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The hint under every failure to reach the engine.
pub const ENGINE_HINT: &str = "hint: start the engine (e.g. `sudo systemctl start docker`), check that you may use its socket, \
     or point DOCKER_HOST (or a Docker context) at a running engine";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    // Reaching the engine.
    #[error("tell where the Docker engine is: {reason}")]
    Locate { reason: String },
    #[error("reach the Docker engine at {target} through ssh: {reason}")]
    SshBridge { target: String, reason: String },
    #[error("connect to the Docker engine at {target}: {}\n{ENGINE_HINT}", root_cause(.source))]
    Connect {
        target: String,
        #[source]
        source: Bollard,
    },
    #[error("negotiate the API version with the Docker engine at {target}: {}\n{ENGINE_HINT}", root_cause(.source))]
    NegotiateVersion {
        target: String,
        #[source]
        source: Bollard,
    },
    #[error("ping the Docker engine at {target}: {}\n{ENGINE_HINT}", root_cause(.source))]
    Ping {
        target: String,
        #[source]
        source: Bollard,
    },
    #[error("reach the Docker engine at {target}: no answer within {}\n{ENGINE_HINT}", seconds(.within))]
    NoAnswer { target: String, within: Duration },

    // Images.
    #[error(
        "find the metr workspace (no Dockerfile.checker here or above); run from the repository or set METRTEST_WORKSPACE"
    )]
    NoWorkspace,
    #[error("compile the static binaries ({}) with cargo:\n{output}", .packages.join(", "))]
    Compile {
        packages: Vec<String>,
        /// The last lines cargo printed.
        output: String,
    },
    #[error("find image {image} on the engine (it cannot be pulled here): {}", root_cause(.source))]
    InspectImage {
        image: String,
        #[source]
        source: Bollard,
    },
    #[error("build image {image}: {}", root_cause(.source))]
    BuildImage {
        image: String,
        #[source]
        source: Bollard,
    },
    /// The engine ran the build and a step of it failed.
    #[error("build image {image}: {detail}\n{output}")]
    BuildStep {
        image: String,
        detail: String,
        /// What the build printed before it failed.
        output: String,
    },
    #[error(
        "find a PostgreSQL image: {image} is not on the engine and cannot be pulled, and no PostgreSQL is installed on this host \
         to assemble one from; install postgresql (scripts/bootstrap does) or load the image"
    )]
    NoPostgres { image: String },

    #[error("save images {images}: {}", root_cause(.source))]
    SaveImages {
        images: String,
        #[source]
        source: Bollard,
    },
    #[error("load images: {}", root_cause(.source))]
    LoadImages {
        #[source]
        source: Bollard,
    },
    #[error("load images: the engine refused them: {detail}")]
    LoadRefused { detail: String },
    /// An image archive that is not one, or not whole.
    #[error("image archive {path}: {reason}")]
    Archive { path: String, reason: String },

    // Starting a stack.
    #[error("create network {network}: {}", root_cause(.source))]
    CreateNetwork {
        network: String,
        #[source]
        source: Bollard,
    },
    #[error("create volume {volume} for service {service}: {}", root_cause(.source))]
    CreateVolume {
        volume: String,
        service: String,
        #[source]
        source: Bollard,
    },
    #[error("create container {container} for service {service}: {}", root_cause(.source))]
    CreateContainer {
        container: String,
        service: String,
        #[source]
        source: Bollard,
    },
    #[error("start container {container} of service {service}: {}", root_cause(.source))]
    StartContainer {
        container: String,
        service: String,
        #[source]
        source: Bollard,
    },
    #[error("inspect container {container}: {}", root_cause(.source))]
    InspectContainer {
        container: String,
        #[source]
        source: Bollard,
    },
    #[error("inspect container {container}: no such container")]
    NoSuchContainer { container: String },
    #[error("find a free port on 127.0.0.1 between 20000 and 32000")]
    NoFreePort,
    #[error("find the host port of container {container}: it publishes {}", published(.port))]
    NoPublishedPort {
        container: String,
        /// The container's port that should be published; `None`: any.
        port: Option<u16>,
    },
    #[error(
        "service {service} did not become ready within {}: {reason}\nits last log lines:\n{}",
        duration(.within),
        indent(.logs)
    )]
    NotReady {
        service: String,
        within: Duration,
        reason: String,
        /// Its last log lines.
        logs: String,
    },
    #[error(
        "one-shot step {service} (container {container}) {}; the services after it were not started\nits last log lines:\n{}",
        one_shot_outcome(.exit_code, .within),
        indent(.logs)
    )]
    OneShotFailed {
        service: String,
        container: String,
        /// `None`: it did not finish within `within`.
        exit_code: Option<i64>,
        within: Duration,
        /// Its last log lines.
        logs: String,
    },
    /// Ctrl-C while the stack was starting.
    #[error("interrupted")]
    Interrupted,

    // Attaching to a running stack (`run --stack ID`).
    #[error("--stack {id}: {reason}; running stacks: {}", running_list(.running))]
    UnknownStack {
        id: String,
        reason: String,
        running: Vec<String>,
    },
    #[error("service {service} of stack {run} is not ready: {reason}")]
    StackNotReady {
        service: String,
        run: String,
        reason: String,
    },

    // Acting on a running service (docker, partition and heal steps).
    /// Stop, kill, pause, unpause or restart; `service` is `None` where the
    /// container is acted on as part of a run, not as one service (teardown).
    #[error("{action} container {container}{}: {}", of_service(.service), root_cause(.source))]
    ContainerAction {
        action: &'static str,
        container: String,
        service: Option<String>,
        /// Boxed: the engine's error is large, and this variant would
        /// otherwise make every `EngineError` larger still.
        #[source]
        source: Box<Bollard>,
    },
    #[error("container {container} is not on network {network} (already partitioned?)")]
    NotOnNetwork { container: String, network: String },
    #[error("disconnect {container} from network {network}: {}", root_cause(.source))]
    DisconnectNetwork {
        container: String,
        network: String,
        #[source]
        source: Bollard,
    },
    #[error("connect {container} to network {network}: {}", root_cause(.source))]
    ConnectNetwork {
        container: String,
        network: String,
        #[source]
        source: Bollard,
    },
    #[error(
        "reconnect {container} to network {network} at its former address {former}: the engine gave it {now}"
    )]
    AddressChanged {
        container: String,
        network: String,
        former: String,
        now: String,
    },
    #[error("read the logs of container {container}: {}", root_cause(.source))]
    Logs {
        container: String,
        #[source]
        source: Bollard,
    },

    // Listing and removing a run's resources.
    #[error("list containers: {}", root_cause(.source))]
    ListContainers {
        #[source]
        source: Bollard,
    },
    #[error("list networks: {}", root_cause(.source))]
    ListNetworks {
        #[source]
        source: Bollard,
    },
    #[error("list volumes: {}", root_cause(.source))]
    ListVolumes {
        #[source]
        source: Bollard,
    },
    #[error("remove container {container}: {}", root_cause(.source))]
    RemoveContainer {
        container: String,
        #[source]
        source: Bollard,
    },
    #[error("remove network {network}: {}", root_cause(.source))]
    RemoveNetwork {
        network: String,
        #[source]
        source: Bollard,
    },
    #[error("remove volume {volume}: {}", root_cause(.source))]
    RemoveVolume {
        volume: String,
        #[source]
        source: Bollard,
    },
    #[error("remove the run's resources: they kept reappearing during teardown")]
    TeardownUnfinished,

    // The run's reaper.
    #[error("connect to the reaper of run {run}: {reason}")]
    ConnectReaper { run: String, reason: String },
    #[error("set the time to live of run {run}: it has no reaper connection")]
    NoReaperConnection { run: String },
    #[error("set the time to live of run {run}: {reason}")]
    SetTtl { run: String, reason: String },

    /// Local files and processes the layer needs (build contexts, cargo).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// An I/O error, saying what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
        let what = what.into();
        move |source| EngineError::Io { what, source }
    }

    /// Whether the engine's answer (its root cause) holds any of `words`,
    /// lowercase: how the engine tells conditions it has no code for.
    pub fn engine_says(&self, words: &[&str]) -> bool {
        let Some(source) = std::error::Error::source(self) else {
            return false;
        };
        let cause = root_cause(source).to_ascii_lowercase();
        words.iter().any(|w| cause.contains(w))
    }

    /// The service whose last log lines the error carries, and those lines.
    pub fn service_logs(&self) -> Option<(&str, &str)> {
        match self {
            EngineError::NotReady { service, logs, .. }
            | EngineError::OneShotFailed { service, logs, .. } => Some((service, logs)),
            _ => None,
        }
    }
}

fn duration(duration: &Duration) -> humantime::FormattedDuration {
    humantime::format_duration(*duration)
}

fn seconds(duration: &Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

fn published(port: &Option<u16>) -> String {
    match port {
        Some(port) => format!("no host port for {port}"),
        None => "no port".to_owned(),
    }
}

fn one_shot_outcome(exit_code: &Option<i64>, within: &Duration) -> String {
    match exit_code {
        Some(code) => format!("exited with code {code}"),
        None => format!(
            "did not finish within {}",
            humantime::format_duration(*within)
        ),
    }
}

fn of_service(service: &Option<String>) -> String {
    service
        .as_ref()
        .map(|s| format!(" of service {s}"))
        .unwrap_or_default()
}

fn running_list(running: &[String]) -> String {
    if running.is_empty() {
        "none (start one with `metrtest up --detach`)".to_owned()
    } else {
        running.join(", ")
    }
}

/// Log lines quoted under a message, indented; `(no output)` for none.
pub(crate) fn indent(text: &str) -> String {
    if text.trim().is_empty() {
        return "    (no output)".into();
    }
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_step_that_fails_names_the_verb_the_service_and_the_cause() {
        let error = EngineError::ContainerAction {
            action: "pause",
            container: "metrtest-r1-postgres".into(),
            service: Some("postgres".into()),
            source: Box::new(Bollard::DockerResponseServerError {
                status_code: 409,
                message: "Container metrtest-r1-postgres is already paused".into(),
            }),
        };
        assert_eq!(
            error.to_string(),
            "pause container metrtest-r1-postgres of service postgres: \
             Docker responded with status code 409: Container metrtest-r1-postgres is already paused"
        );
        assert!(std::error::Error::source(&error).is_some());
    }
}
