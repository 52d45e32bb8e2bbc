//! `metrtest run PATH...`: the main job.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::EnvArgs;
use crate::commands::{up, validate};
use crate::exit::{ExitKind, Failure, Result};
use crate::interrupt::Interrupt;
use crate::report;
use crate::runner::report::Totals;
use crate::runner::scenario::ScenarioSettings;
use crate::runner::suite::{self, SuiteOptions};
use crate::ui::Ui;

/// Output format of the final report on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Scenario files and folders (searched recursively, sorted).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub env: EnvArgs,
    /// Only scenarios with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only scenarios whose name or file contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Scenarios running at once (default: number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Stop everything at the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Leave the stacks running after the run, for debugging by hand (for 8h).
    #[arg(long, conflicts_with = "keep_failed")]
    pub keep: bool,
    /// Leave only the stacks of failed scenarios running (for 8h).
    #[arg(long)]
    pub keep_failed: bool,
    /// Run against this running stack (from `up --detach` or a kept one) and
    /// leave it up; scenarios with docker steps or `isolated: true` still get
    /// a fresh stack.
    #[arg(long, value_name = "ID")]
    pub stack: Option<String>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Final report on stdout.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Template variable (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Timeout of one HTTP request or SQL query.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Timeout of a scenario that sets none.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    pub scenario_timeout: Duration,
}

pub fn parse_var(text: &str) -> std::result::Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

pub async fn run(args: &RunArgs, ui: &Ui, interrupt: &Interrupt) -> Result<()> {
    let file = args.env.load(&validate::folders(&args.paths))?;
    let loaded = validate::load_all(&args.paths, &validate::context(&file, &args.vars), ui)?;
    let selected: Vec<_> = loaded
        .into_iter()
        .filter(|l| args.tags.is_empty() || l.scenario.tags.iter().any(|t| args.tags.contains(t)))
        .filter(|l| {
            args.filter.as_ref().is_none_or(|f| {
                l.scenario.name.contains(f.as_str())
                    || l.file.display().to_string().contains(f.as_str())
            })
        })
        .collect();
    if selected.is_empty() {
        return Err(Failure::invalid(
            "no scenario matches the --tag/--filter selection",
        ));
    }
    let jobs = args.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let options = SuiteOptions {
        jobs,
        fail_fast: args.fail_fast,
        keep: args.keep,
        keep_failed: args.keep_failed,
        stack: args.stack.clone(),
        scenario: ScenarioSettings {
            request_timeout: args.request_timeout,
            default_timeout: args.scenario_timeout,
            vars: args.vars.clone(),
            log_lines: 50,
        },
    };
    ui.info(format!(
        "running {} scenario(s) with {jobs} job(s)",
        selected.len()
    ));
    let result = suite::run(selected, &file, &options, ui, interrupt).await?;
    let table = report::table::render(&result.reports, ui.color);
    match args.format {
        Format::Table => println!("{table}"),
        Format::Json => {
            eprintln!("{table}");
            println!("{}", report::json::render(&result.reports));
        }
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit::render(&result.reports))
            .map_err(|e| Failure::environment(format!("write {}: {e}", path.display())))?;
        ui.info(format!("JUnit report: {}", path.display()));
    }
    for kept in &result.kept {
        let stack = &kept.handle.stack;
        let ttl = humantime::format_duration(up::DEFAULT_TTL);
        println!(
            "kept stack {} for {} (removed automatically in {ttl}):",
            stack.run_id,
            kept.scenarios.join(", ")
        );
        println!("{}", up::service_table(stack));
        println!("remove it with: metrtest down --run {}", stack.run_id);
    }
    if let Some(e) = result.environment_error {
        return Err(Failure::environment(e));
    }
    let totals = Totals::of(&result.reports);
    if totals.failed > 0 {
        return Err(Failure::new(ExitKind::ScenarioFailed, totals.line()));
    }
    Ok(())
}
