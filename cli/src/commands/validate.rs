//! `metrtest validate`: check scenario files without an engine.

use std::path::PathBuf;

use crate::exit::{Failure, Result};
use crate::scenario::load::{self, Loaded};
use crate::ui::Ui;

/// Loads every scenario under `paths`, or fails with every problem found (exit 2).
pub fn load_all(paths: &[PathBuf], ui: &Ui) -> Result<Vec<Loaded>> {
    let files = load::discover(paths).map_err(Failure::invalid)?;
    if files.is_empty() {
        return Err(Failure::invalid(format!(
            "no scenario files (*.yaml) under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut loaded = Vec::new();
    let mut problems = 0;
    for file in files {
        match load::load(&file) {
            Ok(l) => loaded.push(l),
            Err(diagnostics) => {
                for d in diagnostics {
                    problems += 1;
                    ui.error(d.to_string());
                }
            }
        }
    }
    if problems > 0 {
        return Err(Failure::invalid(format!(
            "{problems} problem(s) in scenario files; nothing was started"
        )));
    }
    Ok(loaded)
}

pub fn run(paths: &[PathBuf], ui: &Ui) -> Result<()> {
    let loaded = load_all(paths, ui)?;
    let steps: usize = loaded.iter().map(|l| l.scenario.steps.len()).sum();
    println!("{} scenario(s), {steps} step(s): valid", loaded.len());
    Ok(())
}
