//! `metrtest up`: a throwaway environment, in the foreground or detached.

use std::time::Duration;

use comfy_table::Table;

use crate::docker::spec::{EnvFile, StackSpec};
use crate::docker::stack::{self, Stack};
use crate::docker::{engine, images, labels};
use crate::exit::{Failure, Result};
use crate::interrupt::Interrupt;
use crate::ui::Ui;

/// Builds what is missing and starts a stack; on failure the run is torn down.
pub async fn start_stack(
    file: &EnvFile,
    ui: &Ui,
    interrupt: &Interrupt,
) -> Result<(bollard::Docker, Stack)> {
    let docker = engine::connect().await?;
    let set = tokio::select! {
        set = images::ensure(&docker, &file.images, ui) => set?,
        _ = interrupt.stop.cancelled() => return Err(Failure::interrupted()),
    };
    let spec = StackSpec::build(&set, file);
    let run_id = labels::new_run_id();
    ui.info(format!("starting stack {}", ui.bold(&run_id)));
    match stack::start(&docker, &spec, &run_id, ui, &interrupt.stop).await {
        Ok(stack) => Ok((docker, stack)),
        Err(e) => {
            let grace = Duration::ZERO;
            if let Err(t) = stack::teardown(&docker, Some(&run_id), grace, &interrupt.force).await {
                ui.error(format!("teardown of {run_id} failed: {t}"));
            }
            Err(e)
        }
    }
}

/// The services of a stack and how to reach them from the host.
pub fn service_table(stack: &Stack) -> Table {
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["service", "container", "url"]);
    for s in &stack.services {
        let url = if s.name == "postgres" {
            stack.postgres_url.clone()
        } else {
            s.url.clone()
        };
        table.add_row([s.name.as_str(), s.container.as_str(), url.as_str()]);
    }
    table
}

pub async fn run(file: &EnvFile, detach: bool, ui: &Ui, interrupt: &Interrupt) -> Result<()> {
    let (docker, stack) = start_stack(file, ui, interrupt).await?;
    ui.info(format!(
        "stack {} ready in {:.1} s",
        stack.run_id,
        stack.ready_in.as_secs_f64()
    ));
    println!("{}", service_table(&stack));
    if detach {
        stack::release(&stack.run_id);
        println!("run id: {}", stack.run_id);
        println!("remove it with: metrtest down --run {}", stack.run_id);
        return Ok(());
    }
    ui.info("press Ctrl-C to stop and remove the stack");
    interrupt.stop.cancelled().await;
    let removed = stack::teardown(
        &docker,
        Some(&stack.run_id),
        Duration::from_secs(2),
        &interrupt.force,
    )
    .await?;
    ui.info(format!(
        "removed {} containers and {} network",
        removed.containers, removed.networks
    ));
    Ok(())
}
