//! The documented exit codes, mapped in one place.

use std::collections::BTreeMap;
use std::fmt;

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
#[derive(Debug)]
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
