//! The documented exit codes, mapped in one place.

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
}

impl Failure {
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            kind: ExitKind::Invalid,
            message: message.into(),
        }
    }
    pub fn environment(message: impl Into<String>) -> Self {
        Failure {
            kind: ExitKind::Environment,
            message: message.into(),
        }
    }
    pub fn interrupted() -> Self {
        Failure {
            kind: ExitKind::Interrupted,
            message: "interrupted".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub type Result<T> = std::result::Result<T, Failure>;
