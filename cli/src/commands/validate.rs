//! `metrtest validate`: check scenario files without an engine.

use std::path::PathBuf;

use crate::cli::EnvArgs;
use crate::exit::Result;
use crate::scenarios;
use crate::ui::{self, Ui};

#[derive(clap::Args, Debug, Clone)]
pub struct ValidateArgs {
    /// Scenario files and folders (searched recursively).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Environment file, read as `run` reads it: the services it describes
    /// are the ones scenarios may name (default: metrtest.yaml in a folder
    /// among PATH, if any; a subfolder's own metrtest.yaml is laid over it
    /// for the scenarios under that subfolder).
    #[arg(long = "env", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// A template variable `run` will be given (repeatable); only its name matters here.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = crate::commands::run::parse_var)]
    pub vars: Vec<(String, String)>,
}

pub fn run(args: &ValidateArgs, ui: &Ui) -> Result<()> {
    let env = EnvArgs {
        env_file: args.env_file.clone(),
        postgres_image: None,
    };
    let (_, loaded) = scenarios::load_all(&args.paths, &env, &args.vars, |f| f, ui)?;
    crate::commands::run::warn_isolation(&loaded, ui);
    let steps: usize = loaded.iter().map(|l| l.scenario.steps.len()).sum();
    ui::print(format!(
        "{} scenario(s), {steps} step(s): valid",
        loaded.len()
    ));
    Ok(())
}
