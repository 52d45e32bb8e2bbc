//! The reaper of one metrtest run, Ryuk-style but built locally.
//!
//! It runs in a `FROM scratch` container of the run, with the engine's socket
//! mounted read-only, and holds TCP connections from its owner (the metrtest
//! process). When the owner is gone (any exit, SIGKILL included: the kernel
//! closes its sockets) or the run's time to live is over, it removes every
//! container, network and volume labelled with its run, and exits; the engine
//! then removes the reaper itself (auto-remove).

pub mod engine;
pub mod protocol;
pub mod sweep;
pub mod watch;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::watch::{Decision, Watch};

/// Environment variable naming the run to guard.
pub const RUN_ENV: &str = "METRTEST_REAPER_RUN";
/// Environment variable with the engine socket's path inside the container.
pub const SOCKET_ENV: &str = "METRTEST_REAPER_SOCKET";
/// Port the reaper listens on inside its container.
pub const PORT: u16 = 8080;

/// Shared state of the owner connections, with a condition variable to wake
/// the main loop when it changes.
pub type Shared = Arc<(Mutex<Watch>, Condvar)>;

/// Whether `run` is a metrtest run id (so it is safe inside an engine filter).
pub fn valid_run_id(run: &str) -> bool {
    !run.is_empty()
        && run.len() <= 32
        && run
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Runs the reaper; returns the process exit code. Logs go to stdout, where
/// `docker logs` finds them.
pub fn main() -> i32 {
    let log = |line: &str| println!("{line}");
    let run = std::env::var(RUN_ENV).unwrap_or_default();
    if !valid_run_id(&run) {
        log(&format!("{RUN_ENV} must be a metrtest run id, got {run:?}"));
        return 2;
    }
    let socket = std::env::var(SOCKET_ENV).unwrap_or_else(|_| "/var/run/docker.sock".into());
    let listener = match std::net::TcpListener::bind(("0.0.0.0", PORT)) {
        Ok(l) => l,
        Err(e) => {
            log(&format!("listen on port {PORT}: {e}"));
            return 3;
        }
    };
    let shared: Shared = Arc::new((Mutex::new(Watch::new(Instant::now())), Condvar::new()));
    protocol::serve(listener, run.clone(), shared.clone());
    log(&format!("guarding run {run}"));
    let why = wait_for_reap(&shared);
    log(&format!("owner gone ({why}): removing run {run}"));
    let engine = Engine::new(socket);
    match sweep::reap(&engine, &run, &log) {
        Ok(removed) => {
            log(&format!("removed {removed} resources of run {run}"));
            0
        }
        Err(e) => {
            log(&format!("gave up removing run {run}: {e}"));
            1
        }
    }
}

/// Blocks until the watch says to reap; returns why.
fn wait_for_reap(shared: &Shared) -> &'static str {
    let (lock, changed) = &**shared;
    let mut watch = lock.lock().expect("watch");
    loop {
        match watch.decide(Instant::now(), std::time::SystemTime::now()) {
            Decision::Reap(why) => return why,
            Decision::Wait(limit) => {
                let limit = limit.min(Duration::from_secs(60));
                watch = changed.wait_timeout(watch, limit).expect("watch").0;
            }
        }
    }
}
