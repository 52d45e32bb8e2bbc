//! `metrtest run PATH...`: the main job.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::EnvArgs;
use crate::config::envfile::EnvFile;
use crate::exit::{ExitKind, Failure, Result};
use crate::interrupt::Interrupt;
use crate::report::end::{self, EndOfRun, EndSettings};
use crate::report::github::Annotations;
use crate::report::live::Live;
use crate::runner::event::Reporters;
use crate::runner::report::Totals;
use crate::runner::scenario::ScenarioSettings;
use crate::runner::select::{self, Partition};
use crate::runner::suite::{self, SuiteOptions};
use crate::scenario::load::Loaded;
use crate::scenarios;
use crate::ui::{self, Ui};

pub use crate::report::end::Format;

/// The checker's interval in the stacks `run` starts when the environment
/// file sets neither interval nor timeout: scenarios wait for the checker's
/// next cycle, so a short one makes the suite converge faster.
pub const TEST_CHECKER_INTERVAL: &str = "250ms";
/// The checker's timeout to go with [`TEST_CHECKER_INTERVAL`] (at most the interval).
pub const TEST_CHECKER_TIMEOUT: &str = "250ms";

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
    /// Only the K-th of N slices of the selection, to split a suite across CI
    /// jobs: hash:K/N by a stable hash of each scenario's path and name
    /// (adding a scenario moves no other), count:K/N round-robin over the
    /// sorted list (even slices).
    #[arg(long, value_name = "hash:K/N|count:K/N")]
    pub partition: Option<Partition>,
    /// Print the scenarios that would run (`path: name`, one a line) and start nothing.
    #[arg(long)]
    pub list: bool,
    /// Scenarios running at once (default: two per CPU, at least 2, at most 16).
    #[arg(long, short = 'j', value_name = "N", allow_hyphen_values = true,
          value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Stop everything at the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Run a failed scenario again, up to N more times (on a fresh stack when
    /// it has one of its own); one that passes later is flaky.
    #[arg(long, value_name = "N", default_value_t = 0, allow_hyphen_values = true,
          value_parser = parse_retries)]
    pub retries: u32,
    /// Exit 1 when a scenario was flaky (by default flaky ones pass).
    #[arg(long)]
    pub flaky_fails: bool,
    /// Print each failure as a CI annotation too (default: github when
    /// GITHUB_ACTIONS=true, else none).
    #[arg(long, value_enum, value_name = "KIND")]
    pub annotations: Option<Annotations>,
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
    /// Final report on stdout: the table, JSON or TAP version 14 (the last
    /// two with the table on stderr).
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

/// A whole number of at least `min`, in the type the option takes.
fn at_least<T: TryFrom<i64>>(text: &str, min: i64) -> std::result::Result<T, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n < min => Err(format!("must be {min} or more, got {n}")),
        Ok(n) => T::try_from(n).map_err(|_| format!("{n} is too many")),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// `--retries`: a whole number, 0 or more.
pub fn parse_retries(text: &str) -> std::result::Result<u32, String> {
    at_least(text, 0)
}

/// `--jobs`: a whole number, 1 or more.
pub fn parse_jobs(text: &str) -> std::result::Result<usize, String> {
    at_least(text, 1)
}

/// The test-stack checker timing, unless the environment file sets its own.
pub fn with_test_checker(mut file: EnvFile) -> EnvFile {
    let checker = &mut file.checker;
    if checker.interval.is_none() && checker.timeout.is_none() {
        checker.interval = Some(TEST_CHECKER_INTERVAL.into());
        checker.timeout = Some(TEST_CHECKER_TIMEOUT.into());
    }
    file
}

/// Scenarios at once when `--jobs` is not given: two per CPU, at least 2,
/// at most 16. A scenario mostly waits (on its services, on polls, on a
/// fault's timeout), so one per CPU leaves the machine idle; but since most
/// scenarios get a stack of their own (isolation by effect), each job is a
/// stack of five containers starting and running, and four per CPU overloaded
/// 2 cores: the suite took 92 s with 8 jobs, scrapes of gometr timed out
/// (250 ms) and a scenario that counts every scrape failed, against 80 s and
/// none failed with 4 (one run each, same build, back to back). Each stack
/// of its own holds about 150 MB, hence the cap.
fn default_jobs() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cpus).clamp(2, 16)
}

fn settings(args: &RunArgs) -> SuiteOptions {
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    SuiteOptions {
        jobs,
        fail_fast: args.fail_fast,
        keep: args.keep,
        keep_failed: args.keep_failed,
        stack: args.stack.clone(),
        retries: args.retries,
        scenario: ScenarioSettings {
            request_timeout: args.request_timeout,
            default_timeout: args.scenario_timeout,
            vars: args.vars.clone(),
            log_lines: 50,
        },
    }
}

/// What the end of the run writes, from the flags and `GITHUB_ACTIONS`.
fn end_settings(args: &RunArgs) -> EndSettings {
    let github = std::env::var("GITHUB_ACTIONS").ok();
    EndSettings {
        format: args.format,
        annotations: Annotations::resolve(args.annotations, github.as_deref()),
        junit: args.junit.clone(),
    }
}

pub async fn run(args: &RunArgs, ui: &Ui, interrupt: &Interrupt) -> Result<()> {
    let (environments, loaded) =
        scenarios::load_all(&args.paths, &args.env, &args.vars, with_test_checker, ui)?;
    warn_isolation(&loaded, ui);
    let mut selected = select::matching(loaded, &args.tags, args.filter.as_deref());
    if let Some(partition) = &args.partition {
        selected = partition.select(selected);
    }
    if args.list {
        list(&selected, args.format);
        return Ok(());
    }
    if selected.is_empty() {
        return match &args.partition {
            // A slice may be empty when a suite has fewer scenarios than slices.
            Some(p) => {
                ui.info(format!("no scenario in --partition {p}: nothing to run"));
                end::print_nothing_ran(args.format);
                Ok(())
            }
            None => Err(Failure::invalid(
                "no scenario matches the --tag/--filter selection",
            )),
        };
    }
    let options = settings(args);
    let end = Arc::new(EndOfRun::new(end_settings(args), ui));
    let reporters = Reporters(vec![Arc::new(Live::new(ui)), end.clone()]);
    let result = suite::run(
        selected,
        &environments,
        &options,
        Arc::new(reporters),
        interrupt,
    )
    .await?;
    end.finish()?;
    if let Some(e) = result.environment_error {
        return Err(Failure::environment(e));
    }
    let totals = Totals::of(&result.reports);
    if totals.failed > 0 || (args.flaky_fails && totals.flaky > 0) {
        return Err(Failure::new(ExitKind::ScenarioFailed, totals.line()));
    }
    Ok(())
}

/// Warns of `isolated: false` on a scenario whose steps change the stack.
pub fn warn_isolation(loaded: &[Loaded], ui: &Ui) {
    for l in loaded {
        if let Some((at, text)) = l.scenario.isolation_warning() {
            ui.warn(format!(
                "{}:{}:{}: {text}",
                l.file.display(),
                at.line,
                at.column
            ));
        }
    }
}

/// `--list`: `FILE: NAME` per scenario on stdout, as scripts read it, and
/// which stack each one will run on (and why a stack of its own) on stderr;
/// with `--format json`, all of it as one document on stdout.
fn list(selected: &[Loaded], format: Format) {
    let isolation = |l: &Loaded| l.scenario.isolation().reason();
    if format == Format::Json {
        let scenarios: Vec<_> = selected
            .iter()
            .map(|l| {
                serde_json::json!({
                    "file": l.file,
                    "name": l.scenario.name,
                    "tags": l.scenario.tags,
                    "stack": if isolation(l).is_some() { "own" } else { "shared" },
                    "isolated": isolation(l),
                })
            })
            .collect();
        ui::print(serde_json::to_string_pretty(&scenarios).unwrap_or_default());
        return;
    }
    for l in selected {
        ui::print(format!("{}: {}", l.file.display(), l.scenario.name));
    }
    let own: Vec<_> = selected
        .iter()
        .filter_map(|l| Some((l, isolation(l)?)))
        .collect();
    ui::print_err(format!(
        "{} on the shared stack, {} on a stack of its own{}",
        selected.len() - own.len(),
        own.len(),
        if own.is_empty() { "" } else { ":" }
    ));
    for (l, why) in own {
        ui::print_err(format!("  {}: {why}", l.file.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_whole_numbers_from_zero() {
        assert_eq!(parse_retries("0"), Ok(0));
        assert_eq!(parse_retries("3"), Ok(3));
        assert_eq!(parse_retries("-1"), Err("must be 0 or more, got -1".into()));
        assert!(
            parse_retries("two")
                .unwrap_err()
                .contains("not a whole number")
        );
    }

    #[test]
    fn jobs_are_whole_numbers_from_one() {
        assert_eq!(parse_jobs("4"), Ok(4));
        assert_eq!(parse_jobs("0"), Err("must be 1 or more, got 0".into()));
        assert_eq!(parse_jobs("-2"), Err("must be 1 or more, got -2".into()));
        assert!(
            parse_jobs("many")
                .unwrap_err()
                .contains("not a whole number")
        );
    }

    #[test]
    fn test_stacks_get_a_short_checker_cycle_unless_the_file_sets_one() {
        let file = with_test_checker(EnvFile::default());
        assert_eq!(
            file.checker.interval.as_deref(),
            Some(TEST_CHECKER_INTERVAL)
        );
        assert_eq!(file.checker.timeout.as_deref(), Some(TEST_CHECKER_TIMEOUT));
        let mut own = EnvFile::default();
        own.checker.timeout = Some("900ms".into());
        let file = with_test_checker(own);
        assert_eq!(file.checker.interval, None, "the file's choice stands");
        assert_eq!(file.checker.timeout.as_deref(), Some("900ms"));
    }
}
