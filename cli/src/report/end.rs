//! The end of a run, as a consumer of the runner's events like the live
//! reporter: on `RunFinished` it renders the table (or the JSON or TAP
//! document on stdout and the table on stderr), GitHub annotations, the JUnit
//! file, and the stacks kept for someone to work on.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::exit::{Failure, Result};
use crate::report::github::Annotations;
use crate::report::json::RunSummary;
use crate::report::{github, json, junit, stack, table, tap};
use crate::runner::event::{Event, Reporter};
use crate::runner::report::ScenarioReport;
use crate::runner::suite::{KEPT_TTL, Kept};
use crate::ui::{self, Ui};

/// The final report on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The table and the `N passed, N failed` line.
    Table,
    /// One JSON document (the table goes to stderr).
    Json,
    /// TAP version 14 (the table goes to stderr).
    Tap,
}

/// What the end of a run writes, and where.
#[derive(Debug, Clone)]
pub struct EndSettings {
    /// What goes on stdout; the table goes to stderr beside a document.
    pub format: Format,
    /// `::error` workflow commands on stderr.
    pub annotations: Annotations,
    /// Where to write JUnit XML.
    pub junit: Option<PathBuf>,
}

/// Renders the end of a run when it is told the run finished.
pub struct EndOfRun {
    settings: EndSettings,
    ui: Ui,
    /// When the run started, for its wall time in the JSON report.
    started: Instant,
    /// A report that could not be written: the run's outcome, once it ends.
    failed: Mutex<Option<Failure>>,
}

impl EndOfRun {
    pub fn new(settings: EndSettings, ui: &Ui) -> EndOfRun {
        EndOfRun {
            settings,
            ui: ui.clone(),
            started: Instant::now(),
            failed: Mutex::default(),
        }
    }

    /// Whether every report was written.
    pub fn finish(&self) -> Result<()> {
        match self.failed.lock().expect("report failure").take() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    fn render(&self, reports: &[ScenarioReport], kept: &[Kept]) -> Result<()> {
        let summary = RunSummary {
            duration: Some(self.started.elapsed()),
            ..RunSummary::default()
        };
        write_reports(&self.settings, reports, &summary, &self.ui)?;
        for kept in kept {
            print_kept(kept);
        }
        Ok(())
    }
}

/// Writes the reports of a run, or of shards merged (`report merge`), as the
/// settings ask: the table or a document on stdout (the table on stderr beside
/// it), annotations, the JUnit file.
pub fn write_reports(
    settings: &EndSettings,
    reports: &[ScenarioReport],
    summary: &RunSummary,
    ui: &Ui,
) -> Result<()> {
    let table = table::render(reports, ui.color);
    match settings.format {
        Format::Table => ui::print(table),
        Format::Json => {
            ui::print_err(table);
            ui::print(json::render(reports, summary));
        }
        Format::Tap => {
            ui::print_err(table);
            ui::print(tap::render(reports));
        }
    }
    if settings.annotations == Annotations::Github {
        // Workflow commands are read from stdout and stderr alike; stderr
        // keeps `--format json` on stdout a clean document.
        for line in github::render(reports) {
            ui::print_err(line);
        }
    }
    if let Some(path) = &settings.junit {
        std::fs::write(path, junit::render(reports))
            .map_err(|e| Failure::environment(format!("write {}: {e}", path.display())))?;
        ui.info(format!("JUnit report: {}", path.display()));
    }
    Ok(())
}

/// What stdout gets from a run that had nothing to run (an empty
/// `--partition` slice): under `--format json` or `tap` an empty document,
/// so that the shard's report reads as one (`report merge`).
pub fn print_nothing_ran(format: Format) {
    let summary = RunSummary {
        duration: Some(Duration::ZERO),
        ..RunSummary::default()
    };
    match format {
        Format::Table => {}
        Format::Json => ui::print(json::render(&[], &summary)),
        Format::Tap => ui::print(tap::render(&[])),
    }
}

fn print_kept(kept: &Kept) {
    let stack = &kept.handle.stack;
    let ttl = humantime::format_duration(KEPT_TTL);
    ui::print(format!(
        "kept stack {} for {} (removed automatically in {ttl}):",
        stack.run_id,
        kept.scenarios.join(", ")
    ));
    ui::print(stack::service_table(stack).to_string());
    ui::print(format!(
        "remove it with: metrtest down --run {}",
        stack.run_id
    ));
}

impl Reporter for EndOfRun {
    fn event(&self, event: &Event<'_>) {
        if let Event::RunFinished { reports, kept } = event
            && let Err(failure) = self.render(reports, kept)
        {
            *self.failed.lock().expect("report failure") = Some(failure);
        }
    }
}
