//! The stack of the scenarios that need none of their own: started once as
//! the run begins, removed (or kept) when the last of them is done, and
//! remembering who ran on it when, so that a scenario failing there can name
//! its neighbours.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::OnceCell;

use crate::exit::Result;
use crate::runner::needs::Needs;
use crate::runner::report::{Outcome, ScenarioReport};
use crate::runner::suite::Kept;
use crate::runner::target::StackHandle;
use crate::runner::task::Context;
use crate::scenario::load::Loaded;

/// Failed scenarios that ran on the shared stack, and all that did.
#[derive(Default)]
struct OnShared {
    failed: Vec<String>,
    all: Vec<String>,
}

/// The stack of the scenarios that need none of their own: started once, as
/// the run begins, and removed (or kept) as soon as the last of them is done.
pub struct SharedStack {
    pub started: OnceCell<Result<StackHandle>>,
    /// The environment it is built from (an index into the run's).
    env: usize,
    /// `run --stack ID`: not ours, it stays as it was.
    attached: bool,
    /// How many scenarios it was started for.
    scenarios: usize,
    /// Its scenarios not done yet, and what became of those that are.
    left: Mutex<(usize, OnShared)>,
    /// Every attempt run on it so far, to name a failed one's neighbours.
    visits: Mutex<Vec<Visit>>,
}

/// One attempt of a scenario on a shared stack: who, and when.
struct Visit {
    /// `NAME (FILE)`.
    label: String,
    start: Instant,
    end: Option<Instant>,
}

impl SharedStack {
    pub fn attached(handle: StackHandle, scenarios: usize) -> Arc<SharedStack> {
        Arc::new(SharedStack {
            started: OnceCell::new_with(Some(Ok(handle))),
            env: 0,
            attached: true,
            scenarios,
            left: Mutex::new((scenarios, OnShared::default())),
            visits: Mutex::default(),
        })
    }

    pub fn start(context: &Arc<Context>, env: usize, scenarios: usize) -> Arc<SharedStack> {
        let shared = Arc::new(SharedStack {
            started: OnceCell::new(),
            env,
            attached: false,
            scenarios,
            left: Mutex::new((scenarios, OnShared::default())),
            visits: Mutex::default(),
        });
        let (starting, context) = (shared.clone(), context.clone());
        tokio::spawn(async move {
            let _ = starting.handle(&context).await;
        });
        shared
    }

    /// An attempt of `loaded` starts on the stack; returns its visit number.
    pub fn enter(&self, loaded: &Loaded) -> usize {
        let mut visits = self.visits.lock().expect("visits");
        visits.push(Visit {
            label: format!("{:?} ({})", loaded.scenario.name, loaded.file.display()),
            start: Instant::now(),
            end: None,
        });
        visits.len() - 1
    }

    /// The attempt is over: the scenarios that were on the stack meanwhile.
    pub fn leave(&self, visit: usize) -> Vec<String> {
        let mut visits = self.visits.lock().expect("visits");
        let end = Instant::now();
        visits[visit].end = Some(end);
        let (start, label) = (visits[visit].start, visits[visit].label.clone());
        let mut beside: Vec<String> = visits
            .iter()
            .enumerate()
            .filter(|&(i, v)| i != visit && v.start < end && v.end.is_none_or(|e| e > start))
            .map(|(_, v)| v.label.clone())
            .filter(|l| *l != label)
            .collect();
        beside.sort();
        beside.dedup();
        beside
    }

    /// The stack, once it has started (or why it did not).
    pub async fn handle(&self, context: &Context) -> Result<StackHandle> {
        self.started
            .get_or_init(|| async {
                let whom = format!("{} scenario(s) sharing it", self.scenarios);
                context.new_stack(&Needs::default(), self.env, &whom).await
            })
            .await
            .clone()
    }

    /// One of its scenarios is done (`None`: it did not run); after the
    /// last, the stack is removed, or kept by --keep or --keep-failed.
    pub async fn done(&self, context: &Context, report: Option<&ScenarioReport>) {
        let finished = {
            let mut left = self.left.lock().expect("shared scenarios");
            let (count, on_shared) = &mut *left;
            if let Some(report) = report.filter(|r| r.stack.is_some()) {
                on_shared.all.push(report.name.clone());
                if report.outcome == Outcome::Failed {
                    on_shared.failed.push(report.name.clone());
                }
            }
            *count -= 1;
            (*count == 0).then(|| std::mem::take(on_shared))
        };
        let Some(OnShared { failed, all }) = finished else {
            return;
        };
        if self.attached {
            return;
        }
        let Ok(handle) = self.handle(context).await else {
            return;
        };
        if context.options.keeps(!failed.is_empty()) {
            let scenarios = if failed.is_empty() { all } else { failed };
            context.keep(Kept { handle, scenarios });
        } else {
            context.remove(&handle).await;
        }
    }
}
