//! `metrtest validate`: check scenario files without an engine.

use std::path::PathBuf;

use crate::cli::EnvArgs;
use crate::docker::spec::{self, EnvFile};
use crate::exit::{Failure, Result};
use crate::scenario::load::{self, Loaded};
use crate::scenario::references::Context;
use crate::ui::Ui;

#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Scenario files and folders (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Environment file (default: metrtest.yaml in the scenarios folder, if any).
    #[arg(long = "env", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// A template variable `run` will be given (repeatable); only its name matters here.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = crate::commands::run::parse_var)]
    pub vars: Vec<(String, String)>,
}

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

/// Loads every scenario under `paths`, or fails with every problem found (exit 2).
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

pub fn run(args: &ValidateArgs, ui: &Ui) -> Result<()> {
    let env = EnvArgs {
        env_file: args.env_file.clone(),
        postgres_image: None,
    };
    let file = env.load(&folders(&args.paths))?;
    let loaded = load_all(&args.paths, &context(&file, &args.vars), ui)?;
    let steps: usize = loaded.iter().map(|l| l.scenario.steps.len()).sum();
    println!("{} scenario(s), {steps} step(s): valid", loaded.len());
    Ok(())
}
