//! Removing everything a run created, found by its label.
//!
//! One listing is not enough: a create request the engine received before an
//! interrupt may complete after the listing (a `Created` container left
//! behind). So teardown sweeps until two sweeps in a row find nothing. The
//! run's reaper is removed last, once nothing else of the run is left, so that
//! a teardown cut short (kill -9) still leaves the reaper to finish the job.

use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StopContainerOptions,
};
use tokio_util::sync::CancellationToken;

use crate::engine::error::{EngineError, Result};
use crate::engine::labels;
use crate::stack::{list_containers, release};

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
    docker: &Docker,
    run: Option<&str>,
    grace: Duration,
    force: &CancellationToken,
) -> Result<Removed> {
    sweep_until_quiet(docker, run, grace, force, QUIET_SWEEPS, SWEEP_PAUSE).await
}

/// Removes a run that nothing is being created for any more: its start and
/// every request of its scenario were answered (the normal end of a
/// scenario's own stack). No create can land late, so one sweep that finds
/// nothing is enough and sweeps follow each other without the pause for one
/// (three pauses of 150 ms fewer on every stack's removal).
pub async fn teardown_settled(docker: &Docker, run: &str) -> Result<Removed> {
    let never = CancellationToken::new();
    sweep_until_quiet(docker, Some(run), Duration::ZERO, &never, 1, SETTLED_PAUSE).await
}

/// Pause between the sweeps of a settled run: a removal the engine refused as
/// busy (a network a container is still leaving) is tried again soon.
const SETTLED_PAUSE: Duration = Duration::from_millis(25);

async fn sweep_until_quiet(
    docker: &Docker,
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
        match sweep(docker, run, grace, force, &mut removed).await {
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

fn is_reaper(c: &ContainerSummary) -> bool {
    c.labels
        .as_ref()
        .and_then(|l| l.get(labels::SERVICE))
        .map(String::as_str)
        == Some(labels::REAPER_SERVICE)
}

/// One pass: returns how many resources it found (and tried to remove).
async fn sweep(
    docker: &Docker,
    run: Option<&str>,
    grace: Duration,
    force: &CancellationToken,
    removed: &mut Removed,
) -> Result<usize> {
    let (reapers, services): (Vec<_>, Vec<_>) = list_containers(docker, run)
        .await?
        .into_iter()
        .partition(is_reaper);
    let ids: Vec<String> = services.into_iter().filter_map(|c| c.id).collect();
    if !grace.is_zero() && !ids.is_empty() {
        stop_all(docker, &ids, grace, force).await;
    }
    removed.containers += remove_containers(docker, &ids).await?;
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(labels::run_filter(run)),
        }))
        .await
        .map_err(|source| EngineError::ListNetworks { source })?;
    for network in &networks {
        let Some(id) = &network.id else { continue };
        let removal = docker.remove_network(id).await;
        if gone(removal, |source| EngineError::RemoveNetwork {
            network: network.name.clone().unwrap_or_else(|| id.clone()),
            source,
        })? {
            removed.networks += 1;
        }
    }
    let volumes = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(labels::run_filter(run)),
        }))
        .await
        .map_err(|source| EngineError::ListVolumes { source })?
        .volumes
        .unwrap_or_default();
    for volume in &volumes {
        let removal = docker
            .remove_volume(&volume.name, Some(RemoveVolumeOptions { force: true }))
            .await;
        if gone(removal, |source| EngineError::RemoveVolume {
            volume: volume.name.clone(),
            source,
        })? {
            removed.volumes += 1;
        }
    }
    let mut found = ids.len() + networks.len() + volumes.len();
    if found == 0 && !reapers.is_empty() {
        // Nothing else of the run is left: the reaper's job is done.
        let ids: Vec<String> = reapers.into_iter().filter_map(|c| c.id).collect();
        found += ids.len();
        removed.containers += remove_containers(docker, &ids).await?;
    }
    Ok(found)
}

async fn stop_all(docker: &Docker, ids: &[String], grace: Duration, force: &CancellationToken) {
    let stops = ids.iter().map(|id| {
        let options = StopContainerOptions {
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

async fn remove_containers(docker: &Docker, ids: &[String]) -> Result<usize> {
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
    let mut count = 0;
    for (id, result) in ids.iter().zip(futures::future::join_all(removals).await) {
        if gone(result, |source| EngineError::RemoveContainer {
            container: id.clone(),
            source,
        })? {
            count += 1;
        }
    }
    Ok(count)
}

/// Whether a removal took the resource away: `Ok(true)` removed, `Ok(false)`
/// already gone or busy (the next sweep tries again), `Err` anything else.
fn gone(
    result: std::result::Result<(), bollard::errors::Error>,
    error: impl FnOnce(bollard::errors::Error) -> EngineError,
) -> Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => Ok(false),
        Err(e) => Err(error(e)),
    }
}
