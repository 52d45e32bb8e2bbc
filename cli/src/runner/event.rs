//! What the runner tells its reporters while it works: the suite emits events
//! and prints nothing itself; the terminal output is one reporter of them
//! (`report::live`), and the final reports are built from what they carry.

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use crate::runner::report::{ScenarioReport, StepReport};
use crate::runner::suite::Kept;
use crate::stack::progress::{Listener, Progress, StackEvent};

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// One thing that happened during a run.
#[derive(Debug)]
pub enum Event<'a> {
    /// The selection is final and the engine is about to be used.
    RunStarted { scenarios: usize, jobs: usize },
    /// A stack of a new run id is being started for `whom` (a scenario, or
    /// the scenarios that share it).
    StackStarting { run_id: &'a str, whom: &'a str },
    /// A stack answered on every service.
    StackReady { run_id: &'a str, ready_in: Duration },
    /// An attempt (from 1) of a scenario begins.
    ScenarioStarted {
        name: &'a str,
        file: &'a Path,
        attempt: u32,
    },
    /// One step of a scenario's attempt ended (passed, failed or skipped).
    StepFinished {
        scenario: &'a str,
        attempt: u32,
        step: &'a StepReport,
    },
    /// An attempt of a scenario ended; `retrying` when another attempt follows.
    ScenarioFinished {
        report: &'a ScenarioReport,
        attempt: u32,
        retrying: bool,
    },
    /// The stack layer reported something while the run's images were built
    /// (`lane` none) or while a stack started (`lane`: its label, when
    /// several stacks start and each one's lines say which it is).
    Stack {
        lane: Option<&'a str>,
        event: &'a StackEvent,
    },
    /// A labelled stack's start is over, ready or not: nothing more comes on
    /// `lane`.
    LaneEnded { lane: &'a str },
    /// Something a person may want to know that is none of the above.
    Notice { level: Level, text: String },
    /// Every scenario ended and every stack not kept is removed: the reports
    /// in the order the scenarios were given, and the stacks kept.
    RunFinished {
        reports: &'a [ScenarioReport],
        kept: &'a [Kept],
    },
}

/// Receives the events of a run; called from the scenarios' tasks, so it
/// must be shareable between threads.
pub trait Reporter: Send + Sync {
    fn event(&self, event: &Event<'_>);
}

/// Several reporters, each told every event in turn.
pub struct Reporters(pub Vec<Arc<dyn Reporter>>);

impl Reporter for Reporters {
    fn event(&self, event: &Event<'_>) {
        for reporter in &self.0 {
            reporter.event(event);
        }
    }
}

/// Forwards the stack layer's events to the run's reporters, on a lane.
struct Forward {
    reporter: Arc<dyn Reporter>,
    lane: Option<String>,
}

impl Listener for Forward {
    fn event(&self, event: &StackEvent) {
        self.reporter.event(&Event::Stack {
            lane: self.lane.as_deref(),
            event,
        });
    }
}

/// The stack layer's progress as events of the run: on `lane` (a stack's
/// label) or, without one, as the run's own.
pub fn stack_progress(reporter: &Arc<dyn Reporter>, lane: Option<String>) -> Progress {
    Progress::new(Forward {
        reporter: Arc::clone(reporter),
        lane,
    })
}
