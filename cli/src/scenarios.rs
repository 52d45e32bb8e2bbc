//! The scenario files a command names: where their default environment file
//! is, what they may refer to, and loading all of them with every problem told.

use std::path::PathBuf;

use crate::docker::spec::{self, EnvFile};
use crate::exit::{Failure, Result};
use crate::scenario::load::{self, Loaded};
use crate::scenario::references::Context;
use crate::ui::Ui;

/// The folders among `paths`: where the default environment file is looked for.
pub fn folders(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths.iter().filter(|p| p.is_dir()).cloned().collect()
}

/// What scenarios may name: the services of the stack the environment file
/// describes, and the `--var` names.
pub fn context(file: &EnvFile, vars: &[(String, String)]) -> Context {
    let mut services = vec!["postgres".to_owned()];
    services.extend(spec::gometr_names(file.gometr.replicas));
    services.extend(["checker".to_owned(), "api".to_owned()]);
    Context {
        services: Some(services),
        vars: vars.iter().map(|(k, _)| k.clone()).collect(),
    }
}

/// Loads every scenario under `paths`, or fails with every problem found
/// (each told as an error, exit 2).
pub fn load_all(paths: &[PathBuf], context: &Context, ui: &Ui) -> Result<Vec<Loaded>> {
    let files = load::discover(paths).map_err(|problems| {
        for p in &problems {
            ui.error(p);
        }
        Failure::invalid(format!(
            "{} path(s) cannot be scenario files; nothing was started",
            problems.len()
        ))
    })?;
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
        match load::load(&file, context) {
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
