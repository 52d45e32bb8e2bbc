//! Removing a run's containers (the reaper's own last, by the engine),
//! networks and volumes, found by the run's label only.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::{Engine, encode};

/// The label every resource of a run carries (as in metrtest's labels.rs).
pub const RUN_LABEL: &str = "io.metrtest.run";
/// The label naming a container's service; the reaper's is `reaper`.
pub const SERVICE_LABEL: &str = "io.metrtest.service";
/// Sweeps in a row that must find nothing: a create still in flight when the
/// owner died lands between them.
const QUIET_SWEEPS: u32 = 2;
const PAUSE: Duration = Duration::from_millis(500);
/// How long to keep trying when the engine fails or resources resist.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Sweeps until two sweeps in a row find nothing; returns how many
/// resources were removed.
pub fn reap(engine: &Engine, run: &str, log: &dyn Fn(&str)) -> Result<usize, String> {
    let started = Instant::now();
    let mut removed = 0;
    let mut quiet = 0;
    loop {
        match sweep(engine, run) {
            Ok((0, _)) => quiet += 1,
            Ok((_, n)) => {
                quiet = 0;
                removed += n;
            }
            Err(e) => {
                quiet = 0;
                if started.elapsed() > GIVE_UP_AFTER {
                    return Err(e);
                }
                log(&format!("sweep failed, trying again: {e}"));
            }
        }
        if quiet >= QUIET_SWEEPS {
            return Ok(removed);
        }
        std::thread::sleep(PAUSE);
    }
}

/// One pass; returns (resources found, resources removed).
pub fn sweep(engine: &Engine, run: &str) -> Result<(usize, usize), String> {
    let filter = encode(&format!(r#"{{"label":["{RUN_LABEL}={run}"]}}"#));
    let mut found = 0;
    let mut removed = 0;
    let containers = list(engine, &format!("/containers/json?all=1&filters={filter}"))?;
    for c in containers.as_array().into_iter().flatten() {
        if c["Labels"][SERVICE_LABEL] == "reaper" {
            continue;
        }
        let Some(id) = c["Id"].as_str() else { continue };
        found += 1;
        removed += remove(engine, &format!("/containers/{id}?force=1&v=1"))?;
    }
    let networks = list(engine, &format!("/networks?filters={filter}"))?;
    for n in networks.as_array().into_iter().flatten() {
        let Some(id) = n["Id"].as_str() else { continue };
        found += 1;
        removed += remove(engine, &format!("/networks/{id}"))?;
    }
    let volumes = list(engine, &format!("/volumes?filters={filter}"))?;
    for v in volumes["Volumes"].as_array().into_iter().flatten() {
        let Some(name) = v["Name"].as_str() else {
            continue;
        };
        found += 1;
        removed += remove(engine, &format!("/volumes/{}?force=1", encode(name)))?;
    }
    Ok((found, removed))
}

fn list(engine: &Engine, path: &str) -> Result<Value, String> {
    let response = engine.request("GET", path)?;
    if response.status != 200 {
        return Err(format!(
            "GET {path}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body).trim()
        ));
    }
    serde_json::from_slice(&response.body).map_err(|e| format!("GET {path}: {e}"))
}

/// 1 if removed; 0 if already gone or busy (the next sweep tries again).
fn remove(engine: &Engine, path: &str) -> Result<usize, String> {
    let response = engine.request("DELETE", path)?;
    match response.status {
        200..=299 => Ok(1),
        404 | 409 => Ok(0),
        status => Err(format!(
            "DELETE {path}: {status} {}",
            String::from_utf8_lossy(&response.body).trim()
        )),
    }
}
