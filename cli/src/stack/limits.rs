//! The limits every container of a stack runs with, the checker's sized
//! from its configuration by the checker's own memory formula.

use std::time::Duration;

#[cfg(doc)]
use crate::stack::spec::CHECKER_SHUTDOWN_TIMEOUT;

/// Resource limits every container runs with: a leaking or forking service
/// fails inside its own container instead of taking the machine down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory in bytes, swap included (no swap beyond it).
    pub memory: i64,
    /// Most processes (threads included) at once.
    pub pids: i64,
    /// Time from SIGTERM to SIGKILL on stop.
    pub stop_grace: Duration,
}

pub(crate) const MIB: i64 = 1024 * 1024;

impl Limits {
    /// The services built here: small and single-process, but tokio starts a
    /// worker per core plus blocking threads (DNS lookups) on demand.
    pub const SERVICE: Limits = Limits {
        memory: 512 * MIB,
        pids: 1024,
        stop_grace: Duration::from_secs(10),
    };
    /// PostgreSQL forks a backend per connection.
    pub const POSTGRES: Limits = Limits {
        memory: 1024 * MIB,
        pids: 512,
        stop_grace: Duration::from_secs(10),
    };
    /// The checker flushes its buffer on SIGTERM for up to
    /// [`CHECKER_SHUTDOWN_TIMEOUT`]; its grace must outlast that flush, or a
    /// stop kills it (exit 137) mid-flush and loses buffered samples.
    pub const CHECKER: Limits = Limits {
        stop_grace: Duration::from_secs(30),
        ..Limits::SERVICE
    };
}

impl Limits {
    /// The checker's limits for the configuration `env` gives it: at least
    /// [`Limits::CHECKER`]'s memory, more when the bound that configuration
    /// lets the checker need (README: the checker's memory) plus a quarter
    /// does not fit in it, e.g. with many gometr replicas. The checker
    /// refuses to start in a container smaller than its bound; a
    /// configuration the checker cannot load keeps the default, and the
    /// checker names the problem when it starts.
    pub fn for_checker(env: &[(String, String)]) -> Limits {
        let Ok(settings) = checker::Settings::load(None, env.iter().cloned()) else {
            return Limits::CHECKER;
        };
        let bound = checker::memory::MemoryBudget::of(&settings).total();
        let wanted =
            i64::try_from((bound + bound / 4).div_ceil(MIB as u64)).unwrap_or(i64::MAX / MIB) * MIB;
        Limits {
            memory: Limits::CHECKER.memory.max(wanted),
            ..Limits::CHECKER
        }
    }
}
