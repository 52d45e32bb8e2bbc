//! `metrtest logs SERVICE`: a service's output, optionally followed.

use std::collections::BTreeSet;
use std::io::Write;

use futures::StreamExt;

use crate::engine;
use crate::engine::labels;
use crate::exit::{Failure, Result};

pub async fn run(
    service: &str,
    run: Option<&str>,
    follow: bool,
    tail: Option<usize>,
) -> Result<()> {
    let engine = engine::connect().await?;
    let containers = engine.list_containers(run).await?;
    let runs: BTreeSet<String> = containers
        .iter()
        .filter_map(|c| c.run().map(str::to_owned))
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
        .filter(|c| c.run() == Some(run.as_str()))
        .filter_map(|c| c.service().map(str::to_owned))
        .collect();
    if !known.contains(&service.to_owned()) {
        return Err(Failure::invalid(format!(
            "run {run} has no service {service:?} (it has: {})",
            known.join(", ")
        )));
    }
    let mut stream = std::pin::pin!(engine.logs(&container, tail, follow));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(&chunk).and_then(|()| out.flush()) {
            // A reader that went away (`| head`) ends a follow, as it ends `tail -f`.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
        }
    }
    Ok(())
}
