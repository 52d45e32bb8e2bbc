//! What the stack layer tells whoever listens while it builds images and
//! starts services: tasks that start, progress and end, and notices. Nothing
//! in `stack/` prints; `ui.rs` renders these events for the commands that
//! print directly, and the runner forwards them to its reporters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which task an event is about: unique in the process.
pub type TaskId = u64;

/// How much a notice matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail shown with `-v`.
    Debug,
    Info,
    Warn,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed,
    /// Its work stopped without saying how (an error returned early): its
    /// line goes away, the error is told by whoever receives it.
    Abandoned,
}

/// One thing that happened in the stack layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackEvent {
    /// A task began (an image build, a service's start); `label` names it.
    TaskStarted { task: TaskId, label: String },
    /// How far a task is. `log` is what a log that cannot show `message` as
    /// it changes should say of it now and then; how often is the renderer's
    /// business.
    TaskProgress {
        task: TaskId,
        message: String,
        log: Option<String>,
    },
    /// A task ended; `message` says how (`ready in 0.9 s`, `failed`).
    TaskEnded {
        task: TaskId,
        outcome: Outcome,
        message: String,
    },
    /// Something a person may want to know that belongs to no task.
    Notice { level: Level, text: String },
}

/// Receives the stack layer's events; called from the tasks that start
/// services side by side, so it must be shareable between threads.
pub trait Listener: Send + Sync {
    fn event(&self, event: &StackEvent);
}

/// Where the stack layer's events go: a cheap-to-clone handle on a listener.
#[derive(Clone)]
pub struct Progress(Arc<dyn Listener>);

/// A listener that drops every event.
struct Silent;

impl Listener for Silent {
    fn event(&self, _: &StackEvent) {}
}

/// Task ids are handed out from here, so that two listeners never mix tasks.
static NEXT_TASK: AtomicU64 = AtomicU64::new(1);

impl Progress {
    pub fn new(listener: impl Listener + 'static) -> Progress {
        Progress(Arc::new(listener))
    }

    /// Progress nobody hears.
    pub fn silent() -> Progress {
        Progress::new(Silent)
    }

    pub fn emit(&self, event: StackEvent) {
        self.0.event(&event);
    }

    /// Starts a task named `label`; end it with [`Task::done`] or [`Task::fail`].
    pub fn task(&self, label: impl Into<String>) -> Task {
        let id = NEXT_TASK.fetch_add(1, Ordering::Relaxed);
        self.emit(StackEvent::TaskStarted {
            task: id,
            label: label.into(),
        });
        Task {
            progress: self.clone(),
            id,
            ended: false,
        }
    }

    fn notice(&self, level: Level, text: impl Into<String>) {
        self.emit(StackEvent::Notice {
            level,
            text: text.into(),
        });
    }

    /// Normal progress information.
    pub fn info(&self, text: impl Into<String>) {
        self.notice(Level::Info, text);
    }

    /// Detail shown with `-v`.
    pub fn debug(&self, text: impl Into<String>) {
        self.notice(Level::Debug, text);
    }

    pub fn warn(&self, text: impl Into<String>) {
        self.notice(Level::Warn, text);
    }
}

/// A running task: its progress and its end go out as events. Dropped
/// without an end, it ends as [`Outcome::Abandoned`].
pub struct Task {
    progress: Progress,
    id: TaskId,
    ended: bool,
}

impl Task {
    pub fn update(&self, message: impl Into<String>) {
        self.progress.emit(StackEvent::TaskProgress {
            task: self.id,
            message: message.into(),
            log: None,
        });
    }

    /// An update, and `log` for a log that cannot show it live.
    pub fn update_logged(&self, message: impl Into<String>, log: impl Into<String>) {
        self.progress.emit(StackEvent::TaskProgress {
            task: self.id,
            message: message.into(),
            log: Some(log.into()),
        });
    }

    pub fn done(self, message: impl Into<String>) {
        self.end(Outcome::Done, message.into());
    }

    pub fn fail(self, message: impl Into<String>) {
        self.end(Outcome::Failed, message.into());
    }

    fn end(mut self, outcome: Outcome, message: String) {
        self.ended = true;
        self.progress.emit(StackEvent::TaskEnded {
            task: self.id,
            outcome,
            message,
        });
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if !self.ended {
            self.progress.emit(StackEvent::TaskEnded {
                task: self.id,
                outcome: Outcome::Abandoned,
                message: String::new(),
            });
        }
    }
}

/// A listener that keeps every event, for tests.
#[cfg(test)]
#[derive(Clone, Default)]
pub struct Recording(pub Arc<std::sync::Mutex<Vec<StackEvent>>>);

#[cfg(test)]
impl Listener for Recording {
    fn event(&self, event: &StackEvent) {
        self.0.lock().expect("recorded events").push(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_s_events_arrive_in_order_under_one_id() {
        let recording = Recording::default();
        let progress = Progress::new(recording.clone());
        progress.info("images: nothing to build");
        let task = progress.task("postgres ");
        task.update("waiting for readiness on 127.0.0.1:5432");
        task.done("ready in 0.9 s");
        progress.debug("detail");
        let events = recording.0.lock().unwrap().clone();
        let id = match &events[1] {
            StackEvent::TaskStarted { task, .. } => *task,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            events,
            [
                StackEvent::Notice {
                    level: Level::Info,
                    text: "images: nothing to build".into()
                },
                StackEvent::TaskStarted {
                    task: id,
                    label: "postgres ".into()
                },
                StackEvent::TaskProgress {
                    task: id,
                    message: "waiting for readiness on 127.0.0.1:5432".into(),
                    log: None
                },
                StackEvent::TaskEnded {
                    task: id,
                    outcome: Outcome::Done,
                    message: "ready in 0.9 s".into()
                },
                StackEvent::Notice {
                    level: Level::Debug,
                    text: "detail".into()
                },
            ]
        );
    }

    #[test]
    fn a_task_dropped_without_an_end_is_abandoned_and_tasks_have_their_own_ids() {
        let recording = Recording::default();
        let progress = Progress::new(recording.clone());
        let first = progress.task("a");
        drop(progress.task("b"));
        first.fail("failed");
        let events = recording.0.lock().unwrap().clone();
        let ids: Vec<TaskId> = events
            .iter()
            .map(|e| match e {
                StackEvent::TaskStarted { task, .. } | StackEvent::TaskEnded { task, .. } => *task,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids[1], ids[2], "{events:?}");
        assert_eq!(ids[0], ids[3], "{events:?}");
        assert_ne!(ids[0], ids[1]);
        assert!(matches!(
            events[2],
            StackEvent::TaskEnded {
                outcome: Outcome::Abandoned,
                ..
            }
        ));
        assert!(matches!(
            events[3],
            StackEvent::TaskEnded {
                outcome: Outcome::Failed,
                ..
            }
        ));
    }
}
