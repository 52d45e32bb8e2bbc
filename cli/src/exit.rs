//! The documented exit codes, mapped in one place: the commands' own
//! failures pick theirs, and the lower layers' typed errors get theirs from
//! [`exit_kind`] when they become a [`Failure`].

use std::collections::BTreeMap;
use std::fmt;

use crate::engine::error::EngineError;

/// Outcome classes of a metrtest invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// 1: some scenario failed.
    ScenarioFailed,
    /// 2: invalid scenarios or arguments; nothing was started.
    Invalid,
    /// 3: environment error: no engine, an image would not build, a service never became ready.
    Environment,
    /// 130: interrupted by the user.
    Interrupted,
}

impl ExitKind {
    pub fn code(self) -> i32 {
        match self {
            ExitKind::ScenarioFailed => 1,
            ExitKind::Invalid => 2,
            ExitKind::Environment => 3,
            ExitKind::Interrupted => 130,
        }
    }
}

/// An error that ends the command with a specific exit code and a message for a person.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: ExitKind,
    pub message: String,
    /// Last log lines of the services that failed to start or become ready,
    /// by service name, for the reports (the message quotes them too).
    pub logs: BTreeMap<String, String>,
}

impl Failure {
    pub fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            logs: BTreeMap::new(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure::new(ExitKind::Invalid, message)
    }
    pub fn environment(message: impl Into<String>) -> Self {
        Failure::new(ExitKind::Environment, message)
    }
    pub fn interrupted() -> Self {
        Failure::new(ExitKind::Interrupted, "interrupted")
    }
    /// Attaches a service's last log lines.
    pub fn with_logs(mut self, service: &str, lines: String) -> Self {
        self.logs.insert(service.to_owned(), lines);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub type Result<T> = std::result::Result<T, Failure>;

/// The exit code of each engine error: the one place that decides it.
pub fn exit_kind(error: &EngineError) -> ExitKind {
    use EngineError as E;
    match error {
        E::Interrupted => ExitKind::Interrupted,
        // `run --stack ID` naming no running stack: nothing was started.
        E::UnknownStack { .. } => ExitKind::Invalid,
        E::Locate { .. }
        | E::SshBridge { .. }
        | E::Connect { .. }
        | E::NegotiateVersion { .. }
        | E::Ping { .. }
        | E::NoAnswer { .. }
        | E::NoWorkspace
        | E::Compile { .. }
        | E::InspectImage { .. }
        | E::BuildImage { .. }
        | E::BuildStep { .. }
        | E::NoPostgres { .. }
        | E::SaveImages { .. }
        | E::LoadImages { .. }
        | E::LoadRefused { .. }
        | E::Archive { .. }
        | E::CreateNetwork { .. }
        | E::CreateVolume { .. }
        | E::CreateContainer { .. }
        | E::StartContainer { .. }
        | E::InspectContainer { .. }
        | E::NoSuchContainer { .. }
        | E::NoFreePort
        | E::NoPublishedPort { .. }
        | E::NotReady { .. }
        | E::OneShotFailed { .. }
        | E::StackNotReady { .. }
        | E::ContainerAction { .. }
        | E::NotOnNetwork { .. }
        | E::DisconnectNetwork { .. }
        | E::ConnectNetwork { .. }
        | E::AddressChanged { .. }
        | E::Logs { .. }
        | E::ListContainers { .. }
        | E::ListNetworks { .. }
        | E::ListVolumes { .. }
        | E::RemoveContainer { .. }
        | E::RemoveNetwork { .. }
        | E::RemoveVolume { .. }
        | E::TeardownUnfinished
        | E::ConnectReaper { .. }
        | E::NoReaperConnection { .. }
        | E::SetTtl { .. }
        | E::Io { .. } => ExitKind::Environment,
    }
}

/// An engine error ends the command with its exit code and message, and with
/// the last log lines of the service it is about, for the reports.
impl From<EngineError> for Failure {
    fn from(error: EngineError) -> Failure {
        let failure = Failure::new(exit_kind(&error), error.to_string());
        match error.service_logs() {
            Some((service, lines)) => failure.with_logs(service, lines.to_owned()),
            None => failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn conflict() -> crate::engine::error::EngineAnswer {
        crate::engine::error::engine_says_with(
            409,
            "Conflict. The container name is already in use",
        )
    }

    #[test]
    fn engine_errors_map_to_their_exit_codes() {
        let interrupted = Failure::from(EngineError::Interrupted);
        assert_eq!(interrupted.kind, ExitKind::Interrupted);
        assert_eq!(interrupted.kind.code(), 130);
        assert_eq!(interrupted.message, "interrupted");

        let unknown = Failure::from(EngineError::UnknownStack {
            id: "nosuchrun".into(),
            reason: "no such stack".into(),
            running: vec![],
        });
        assert_eq!(unknown.kind.code(), 2);
        assert_eq!(
            unknown.message,
            "--stack nosuchrun: no such stack; running stacks: none (start one with `metrtest up --detach`)"
        );

        let environment = [
            EngineError::CreateContainer {
                container: "metrtest-r1-checker".into(),
                service: "checker".into(),
                source: conflict(),
            },
            EngineError::NoAnswer {
                target: "DOCKER_HOST=unix:///nowhere".into(),
                within: Duration::from_secs(2),
            },
            EngineError::StackNotReady {
                service: "api".into(),
                run: "r1".into(),
                reason: "GET /health answered 503".into(),
            },
            EngineError::Compile {
                packages: vec!["checker".into()],
                output: "error[E0308]".into(),
            },
            EngineError::TeardownUnfinished,
        ];
        for error in environment {
            let shown = error.to_string();
            assert_eq!(Failure::from(error).kind.code(), 3, "{shown}");
        }
    }

    #[test]
    fn a_wrapped_engine_error_names_the_operation_and_the_root_cause() {
        let failure = Failure::from(EngineError::CreateContainer {
            container: "metrtest-r1-checker".into(),
            service: "checker".into(),
            source: conflict(),
        });
        assert_eq!(
            failure.message,
            "create container metrtest-r1-checker for service checker: \
             Docker responded with status code 409: Conflict. The container name is already in use"
        );
        assert!(failure.logs.is_empty());

        // A cause deep down the chain is quoted beside the outer one.
        #[derive(Debug, thiserror::Error)]
        #[error("error trying to connect")]
        struct Outer(#[source] std::io::Error);
        let deep = std::io::Error::other(Outer(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        )));
        let failure = Failure::from(EngineError::Ping {
            target: "DOCKER_HOST=unix:///nonexistent/docker.sock".into(),
            source: crate::engine::error::EngineAnswer::from(deep),
        });
        assert!(
            failure.message.starts_with(
                "ping the Docker engine at DOCKER_HOST=unix:///nonexistent/docker.sock: \
                 error trying to connect (No such file or directory (os error 2))\nhint: "
            ),
            "{}",
            failure.message
        );
    }

    #[test]
    fn the_logs_an_error_carries_go_to_the_reports() {
        let failure = Failure::from(EngineError::OneShotFailed {
            service: "migrate".into(),
            container: "metrtest-r1-migrate".into(),
            exit_code: Some(1),
            within: Duration::from_secs(60),
            logs: "password authentication failed\n".into(),
        });
        assert_eq!(failure.kind.code(), 3);
        assert_eq!(
            failure.logs.get("migrate").map(String::as_str),
            Some("password authentication failed\n")
        );
        assert!(
            failure.message.starts_with(
                "one-shot step migrate (container metrtest-r1-migrate) exited with code 1; \
                 the services after it were not started\nits last log lines:\n    password authentication failed"
            ),
            "{}",
            failure.message
        );

        let failure = Failure::from(EngineError::NotReady {
            service: "api".into(),
            within: Duration::from_secs(30),
            reason: "GET /health: connection refused".into(),
            logs: String::new(),
        });
        assert_eq!(failure.kind.code(), 3);
        assert_eq!(failure.logs.get("api").map(String::as_str), Some(""));
        assert_eq!(
            failure.message,
            "service api did not become ready within 30s: GET /health: connection refused\n\
             its last log lines:\n    (no output)"
        );
    }
}
