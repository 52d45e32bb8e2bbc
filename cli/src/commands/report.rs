//! `metrtest report merge FILE...`: one report from the JSON reports of
//! `--partition` shards, printed and written as `run` would have for the
//! whole suite, with the exit code `run` would give.

use std::path::{Path, PathBuf};

use crate::exit::{ExitKind, Failure, Result};
use crate::report::end::{self, EndSettings, Format};
use crate::report::github::Annotations;
use crate::report::{json, merge};
use crate::runner::report::Totals;
use crate::ui::Ui;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ReportCommand {
    /// Merge the JSON reports of `run --partition` shards (`run --format
    /// json > shard.json`) into one: the table and the `N passed, N failed`
    /// line as `run` prints them, JUnit, JSON or TAP on request, and `run`'s
    /// exit code for the totals (1 when a scenario failed).
    Merge(MergeArgs),
}

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' JSON reports, each written by `run --format json`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Final report on stdout: the table, JSON or TAP version 14 (the last
    /// two with the table on stderr).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print each failure as a CI annotation too (default: github when
    /// GITHUB_ACTIONS=true, else none).
    #[arg(long, value_enum, value_name = "KIND")]
    pub annotations: Option<Annotations>,
    /// Exit 1 when a scenario was flaky (by default flaky ones pass).
    #[arg(long)]
    pub flaky_fails: bool,
}

pub fn run(args: &ReportArgs, ui: &Ui) -> Result<()> {
    match &args.command {
        ReportCommand::Merge(merge) => run_merge(merge, ui),
    }
}

fn run_merge(args: &MergeArgs, ui: &Ui) -> Result<()> {
    let shards = args
        .files
        .iter()
        .map(|file| Ok((file.clone(), read(file)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut merged = merge::merge(shards).map_err(|e| Failure::environment(e.to_string()))?;
    merge::restore_source_lines(&mut merged.scenarios, |file| {
        std::fs::read_to_string(file).ok()
    });
    ui.info(merge::durations_line(&merged));
    let github = std::env::var("GITHUB_ACTIONS").ok();
    let settings = EndSettings {
        format: args.format,
        annotations: Annotations::resolve(args.annotations, github.as_deref()),
        junit: args.junit.clone(),
    };
    end::write_reports(&settings, &merged.scenarios, &merged.summary, ui)?;
    // As `run` decides for the same totals.
    let totals = Totals::of(&merged.scenarios);
    if totals.failed > 0 || (args.flaky_fails && totals.flaky > 0) {
        return Err(Failure::new(ExitKind::ScenarioFailed, totals.line()));
    }
    Ok(())
}

/// One shard's report, or why the file is not one.
fn read(file: &Path) -> Result<json::Report> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::environment(format!("read {}: {e}", file.display())))?;
    json::parse(&text).map_err(|e| {
        Failure::environment(format!(
            "{} is not a metrtest JSON report (`run --format json`): {e}",
            file.display()
        ))
    })
}
