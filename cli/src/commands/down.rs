//! `metrtest down`: remove the resources of one run or of all runs.

use std::time::Duration;

use crate::engine;
use crate::exit::{Failure, Result};
use crate::interrupt::Interrupt;
use crate::stack;
use crate::ui::Ui;

pub async fn run(run: Option<&str>, all: bool, ui: &Ui, interrupt: &Interrupt) -> Result<()> {
    if run.is_none() && !all {
        return Err(Failure::invalid(
            "say which run to remove: --run ID (see `metrtest ps`) or --all",
        ));
    }
    let engine = engine::connect().await?;
    let removed = stack::teardown(&engine, run, Duration::from_secs(1), &interrupt.force).await?;
    let what = run
        .map(|r| format!("run {r}"))
        .unwrap_or_else(|| "all runs".into());
    ui.info(format!(
        "{what}: removed {} containers, {} networks, {} volumes",
        removed.containers, removed.networks, removed.volumes
    ));
    Ok(())
}
