//! Removing everything a run created, found by its label.
//!
//! One listing is not enough: a create request the engine received before an
//! interrupt may complete after the listing (a `Created` container left
//! behind). So teardown sweeps until two sweeps in a row find nothing. The
//! run's reaper is removed last, once nothing else of the run is left, so that
//! a teardown cut short (kill -9) still leaves the reaper to finish the job.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::Client;
use crate::engine::error::{EngineError, Result};
use crate::stack::release;

/// Sweeps in a row that must find nothing before the run counts as gone.
const QUIET_SWEEPS: u32 = 2;
/// Pause between sweeps: time for an in-flight create to land.
const SWEEP_PAUSE: Duration = Duration::from_millis(150);
/// Sweeps before giving up on resources that keep reappearing or resisting.
const MAX_SWEEPS: u32 = 60;

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
    engine: &Client,
    run: Option<&str>,
    grace: Duration,
    force: &CancellationToken,
) -> Result<Removed> {
    sweep_until_quiet(engine, run, grace, force, QUIET_SWEEPS, SWEEP_PAUSE).await
}

/// Removes a run that nothing is being created for any more: its start and
/// every request of its scenario were answered (the normal end of a
/// scenario's own stack). No create can land late, so one sweep that finds
/// nothing is enough and sweeps follow each other without the pause for one
/// (three pauses of 150 ms fewer on every stack's removal).
pub async fn teardown_settled(engine: &Client, run: &str) -> Result<Removed> {
    let never = CancellationToken::new();
    sweep_until_quiet(engine, Some(run), Duration::ZERO, &never, 1, SETTLED_PAUSE).await
}

/// Pause between the sweeps of a settled run: a removal the engine refused as
/// busy (a network a container is still leaving) is tried again soon.
const SETTLED_PAUSE: Duration = Duration::from_millis(25);

async fn sweep_until_quiet(
    engine: &Client,
    run: Option<&str>,
    grace: Duration,
    force: &CancellationToken,
    quiet_sweeps: u32,
    pause: Duration,
) -> Result<Removed> {
    let mut removed = Removed::default();
    let mut quiet = 0;
    let mut last_error = None;
    for round in 0..MAX_SWEEPS {
        let grace = if round == 0 { grace } else { Duration::ZERO };
        match sweep(engine, run, grace, force, &mut removed).await {
            Ok(0) => quiet += 1,
            Ok(_) => quiet = 0,
            Err(e) => {
                quiet = 0;
                last_error = Some(e);
            }
        }
        if quiet >= quiet_sweeps {
            if let Some(run) = run {
                release(run);
            }
            return Ok(removed);
        }
        tokio::time::sleep(pause).await;
    }
    Err(last_error.unwrap_or(EngineError::TeardownUnfinished))
}

/// One pass: returns how many resources it found (and tried to remove).
async fn sweep(
    engine: &Client,
    run: Option<&str>,
    grace: Duration,
    force: &CancellationToken,
    removed: &mut Removed,
) -> Result<usize> {
    let (reapers, services): (Vec<_>, Vec<_>) = engine
        .list_containers(run)
        .await?
        .into_iter()
        .partition(|c| c.is_reaper());
    let ids: Vec<String> = services.into_iter().map(|c| c.id).collect();
    if !grace.is_zero() && !ids.is_empty() {
        stop_all(engine, &ids, grace, force).await;
    }
    removed.containers += remove_containers(engine, &ids).await?;
    let networks = engine.list_networks(run).await?;
    for network in &networks {
        if engine.remove_network(network).await? {
            removed.networks += 1;
        }
    }
    let volumes = engine.list_volumes(run).await?;
    for volume in &volumes {
        if engine.remove_volume(volume).await? {
            removed.volumes += 1;
        }
    }
    let mut found = ids.len() + networks.len() + volumes.len();
    if found == 0 && !reapers.is_empty() {
        // Nothing else of the run is left: the reaper's job is done.
        let ids: Vec<String> = reapers.into_iter().map(|c| c.id).collect();
        found += ids.len();
        removed.containers += remove_containers(engine, &ids).await?;
    }
    Ok(found)
}

async fn stop_all(engine: &Client, ids: &[String], grace: Duration, force: &CancellationToken) {
    let stops = ids
        .iter()
        .map(|id| engine.stop_container(id, None, Some(grace)));
    tokio::select! {
        _ = futures::future::join_all(stops) => {}
        _ = force.cancelled() => {}
    }
}

async fn remove_containers(engine: &Client, ids: &[String]) -> Result<usize> {
    let removals = ids.iter().map(|id| engine.remove_container(id));
    let mut count = 0;
    for result in futures::future::join_all(removals).await {
        if result? {
            count += 1;
        }
    }
    Ok(count)
}
