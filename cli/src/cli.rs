//! Arguments and dispatch; the one place outcomes become exit codes.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::commands;
use crate::config::envfile::EnvFile;
use crate::engine;
use crate::exit::{ExitKind, Failure, Result};
use crate::interrupt::Interrupt;
use crate::scenario::network::Link;
use crate::stack;
use crate::ui::{Ui, Verbosity};

/// Integration tests for the metr system on Docker: build, start, run YAML
/// scenarios, report, tear down.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Exit codes: 0 passed, 1 a scenario failed, 2 invalid scenarios or arguments, 3 environment error, 130 interrupted."
)]
pub struct Args {
    /// More detail (debug lines).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// Options that pick the environment file and images.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EnvArgs {
    /// Environment file (metrtest.yaml format). `run` defaults to the
    /// metrtest.yaml in a scenarios folder it is given; `up` and `images`
    /// read one only when given.
    #[arg(long = "env", value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// PostgreSQL image to run instead of the default.
    #[arg(long, value_name = "IMAGE")]
    pub postgres_image: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Bring the stack up, run scenarios, report, tear down.
    Run(Box<commands::run::RunArgs>),
    /// Check scenario files without an engine.
    Validate(commands::validate::ValidateArgs),
    /// Work on the reports of runs: merge the JSON reports of `--partition`
    /// shards into one.
    Report(commands::report::ReportArgs),
    /// Start the stack and keep it until Ctrl-C (or detach).
    Up {
        #[command(flatten)]
        env: EnvArgs,
        /// Leave the stack running and print its run id.
        #[arg(long)]
        detach: bool,
        /// With --detach: remove the stack after this long (e.g. 2h, 30m; 0: never).
        #[arg(long, value_name = "DURATION", default_value = "8h", allow_hyphen_values = true,
              value_parser = commands::up::parse_ttl, requires = "detach")]
        ttl: Duration,
        /// Put the fault proxy on these links, quoted so that the shell does not read `>`
        /// as a redirect (e.g. 'checker->postgres,api->postgres'),
        /// to inject faults by hand through its Toxiproxy-shaped control API.
        #[arg(long, value_name = "LINK,...", value_delimiter = ',',
              value_parser = commands::up::parse_link)]
        faults: Vec<Link>,
        /// Start nothing: build the images and write the stack as a file of
        /// this format (compose: a Compose Specification file) to FILE, or stdout.
        #[arg(long, value_name = "FORMAT", value_enum, conflicts_with_all = ["detach", "faults"])]
        export: Option<Export>,
        /// Where --export writes (default, or -: stdout).
        #[arg(value_name = "FILE", requires = "export")]
        output: Option<PathBuf>,
    },
    /// Remove the containers, network and volumes of a run.
    Down {
        /// The run to remove.
        #[arg(long = "run", value_name = "ID", conflicts_with = "all")]
        run: Option<String>,
        /// Remove every metrtest run on this engine.
        #[arg(long)]
        all: bool,
    },
    /// List runs and their services.
    Ps,
    /// Show a service's logs.
    Logs {
        /// The service: postgres, gometr (gometr-1, … with replicas), checker, api.
        service: String,
        /// The run whose service it is (needed when several runs are active).
        #[arg(long = "run", value_name = "ID")]
        run: Option<String>,
        /// Keep printing new output until Ctrl-C.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Build (when needed) and list the images the stack runs; or carry them
    /// to other engines in one archive (build once, run on many CI runners).
    Images {
        #[command(flatten)]
        env: EnvArgs,
        /// Write every image a run needs (services, PostgreSQL, reaper, fault
        /// proxy), the metrtest binary and a manifest into FILE (a tar).
        #[arg(long, value_name = "FILE", conflicts_with = "load")]
        save: Option<PathBuf>,
        /// Check and load an archive written by --save: runs of the same
        /// commit on a clean tree then build nothing.
        #[arg(long, value_name = "FILE")]
        load: Option<PathBuf>,
    },
    /// Print the shell's completion registration: it asks metrtest at each TAB,
    /// so run ids, services and scenario paths complete too.
    ///
    /// The same as `COMPLETE=bash metrtest` (or zsh, fish). Load it in each new
    /// shell, e.g. `source <(metrtest completions bash)` in ~/.bashrc, so that
    /// it always matches the binary; it registers `metrtest`, which covers
    /// `scripts/metrtest` too. `--static` prints the former fixed script.
    Completions(commands::completions::CompletionsArgs),
    /// Print the man page (roff), or write one per command into a folder.
    Man(commands::completions::ManArgs),
}

impl EnvArgs {
    /// The run's own environment file: `--env`, else the `metrtest.yaml` of
    /// the first folder among `scenario_dirs` that has one.
    pub fn path(&self, scenario_dirs: &[PathBuf]) -> Result<Option<PathBuf>> {
        let path = self.env_file.clone().or_else(|| {
            scenario_dirs
                .iter()
                .map(|d| d.join(ENV_FILE))
                .find(|p| p.is_file())
        });
        match path {
            Some(path) if !path.is_file() => Err(Failure::invalid(format!(
                "{}: no such environment file",
                path.display()
            ))),
            path => Ok(path),
        }
    }

    /// Loads the environment file: `--env`, else `metrtest.yaml` beside the scenarios.
    pub fn load(&self, scenario_dirs: &[PathBuf]) -> Result<EnvFile> {
        let file = match self.path(scenario_dirs)? {
            Some(path) => EnvFile::load(&path).map_err(|e| Failure::invalid(e.to_string()))?,
            None => EnvFile::default(),
        };
        Ok(self.overrides(file))
    }

    /// The flags' choices over a file's (`--postgres-image`).
    pub fn overrides(&self, mut file: EnvFile) -> EnvFile {
        if let Some(image) = &self.postgres_image {
            file.images.postgres = Some(image.clone());
        }
        file
    }
}

/// What `up --export` writes instead of starting the stack.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// A compose file (Compose Specification) of the same stack.
    Compose,
}

/// The environment file's name in a folder of scenarios.
pub const ENV_FILE: &str = "metrtest.yaml";

async fn dispatch(args: Args, ui: Ui, interrupt: Interrupt) -> Result<()> {
    match args.command {
        Command::Run(run) => commands::run::run(&run, &ui, &interrupt).await,
        Command::Validate(validate) => commands::validate::run(&validate, &ui),
        Command::Report(report) => commands::report::run(&report, &ui),
        Command::Up {
            env,
            detach,
            ttl,
            faults,
            export,
            output,
        } => {
            let file = env.load(&[])?;
            if let Some(Export::Compose) = export {
                return commands::up::export_compose(&file, output.as_deref(), &ui, &interrupt)
                    .await;
            }
            commands::up::run(&file, detach, ttl, &faults, &ui, &interrupt).await
        }
        Command::Down { run, all } => {
            commands::down::run(run.as_deref(), all, &ui, &interrupt).await
        }
        Command::Ps => commands::ps::run().await,
        Command::Logs {
            service,
            run,
            follow,
            tail,
        } => commands::logs::run(&service, run.as_deref(), follow, tail).await,
        Command::Images { env, save, load } => match (save, load) {
            (Some(path), _) => commands::images::save(&path, &ui).await,
            (_, Some(path)) => commands::images::load(&path, &ui).await,
            (None, None) => {
                let file = env.load(&[])?;
                commands::images::run(&file.images, &ui).await
            }
        },
        Command::Completions(args) => commands::completions::run_completions(&args),
        Command::Man(args) => commands::completions::run_man(&args),
    }
}

/// Tears down runs the command left registered: after an error or a panic.
async fn teardown_leftovers(ui: &Ui, interrupt: &Interrupt) {
    let runs = stack::active_runs();
    if runs.is_empty() {
        return;
    }
    let Ok(docker) = engine::connect().await else {
        ui.error(format!(
            "cannot reach the engine to remove runs {}; use `metrtest down --all`",
            runs.join(", ")
        ));
        return;
    };
    for run in runs {
        match stack::teardown(&docker, Some(&run), Duration::ZERO, &interrupt.force).await {
            Ok(_) => ui.debug(format!("removed run {run}")),
            Err(e) => ui.error(format!(
                "teardown of run {run} failed: {e}; use `metrtest down --run {run}`"
            )),
        }
    }
}

/// Runs the command and returns the process exit code.
pub async fn main(args: Args) -> i32 {
    let verbosity = if args.quiet {
        Verbosity::Quiet
    } else if args.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let ui = Ui::new(verbosity);
    let interrupt = Interrupt::install();
    // The command runs in its own task so that a panic becomes an error here and
    // the teardown below still happens.
    let outcome = tokio::spawn(dispatch(args, ui.clone(), interrupt.clone())).await;
    teardown_leftovers(&ui, &interrupt).await;
    crate::engine::ssh::cleanup();
    match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(failure)) => {
            if failure.kind != ExitKind::ScenarioFailed {
                ui.error(&failure.message);
            }
            failure.kind.code()
        }
        Err(join) => {
            ui.error(format!(
                "metrtest crashed: {join}; its containers were removed"
            ));
            101
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_arguments_are_consistent() {
        super::Args::command().debug_assert();
    }
}
