//! `metrtest logs SERVICE`: a service's output, optionally followed.

use std::collections::BTreeSet;
use std::io::Write;

use bollard::query_parameters::LogsOptions;
use futures::StreamExt;

use crate::engine;
use crate::engine::EngineError;
use crate::engine::labels;
use crate::exit::{Failure, Result};
use crate::stack;

pub async fn run(
    service: &str,
    run: Option<&str>,
    follow: bool,
    tail: Option<usize>,
) -> Result<()> {
    let docker = engine::connect().await?;
    let containers = stack::list_containers(&docker, run).await?;
    let runs: BTreeSet<String> = containers
        .iter()
        .filter_map(|c| c.labels.as_ref()?.get(labels::RUN).cloned())
        .collect();
    let run = match (run, runs.len()) {
        (Some(r), _) => r.to_owned(),
        (None, 1) => runs.into_iter().next().expect("one run"),
        (None, 0) => {
            return Err(Failure::invalid(
                "no metrtest run is active (see `metrtest ps`)",
            ));
        }
        (None, _) => {
            return Err(Failure::invalid(format!(
                "several runs are active ({}): choose one with --run ID",
                runs.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
    };
    let container = labels::container_name(&run, service);
    let known: Vec<String> = containers
        .iter()
        .filter(|c| c.labels.as_ref().and_then(|l| l.get(labels::RUN)) == Some(&run))
        .filter_map(|c| c.labels.as_ref()?.get(labels::SERVICE).cloned())
        .collect();
    if !known.contains(&service.to_owned()) {
        return Err(Failure::invalid(format!(
            "run {run} has no service {service:?} (it has: {})",
            known.join(", ")
        )));
    }
    let options = LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        tail: tail.map(|n| n.to_string()).unwrap_or_else(|| "all".into()),
        ..Default::default()
    };
    let mut stream = docker.logs(&container, Some(options));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| EngineError::Logs {
            container: container.clone(),
            source,
        })?;
        let mut out = std::io::stdout().lock();
        if let Err(e) = out
            .write_all(&chunk.into_bytes())
            .and_then(|()| out.flush())
        {
            // A reader that went away (`| head`) ends a follow, as it ends `tail -f`.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
        }
    }
    Ok(())
}
