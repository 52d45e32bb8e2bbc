//! How metrtest talks to a person: levels, colour, progress lines.
//!
//! Progress uses indicatif on a terminal and plain lines otherwise, so CI logs
//! stay readable; colour follows NO_COLOR and whether stderr is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::stack::progress::{Level, Listener, Outcome, Progress, StackEvent, TaskId};

/// Writes a line of a command's result to stdout. A reader that went away
/// (`| head -1`) is not an error: the rest is dropped, as with any Unix tool.
pub fn print(text: impl AsRef<str>) {
    write(format!("{}\n", text.as_ref()).as_bytes());
}

/// Writes a line to stderr that belongs with the result (the table under
/// `--format json`, CI annotations), whatever the verbosity; a closed stderr
/// is no error.
pub fn print_err(text: impl AsRef<str>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
}

/// Writes bytes of a command's result to stdout, as [`print`] does.
pub fn write(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Output settings shared by every command.
#[derive(Clone)]
pub struct Ui {
    pub verbosity: Verbosity,
    pub color: bool,
    pub interactive: bool,
    multi: MultiProgress,
    /// The stack and scenario this Ui's lines belong to, when a run has several.
    lane: Option<std::sync::Arc<Lane>>,
    /// Where lines go instead of stderr: the tests of reporters read it.
    #[cfg(test)]
    captured: Option<std::sync::Arc<std::sync::Mutex<Vec<String>>>>,
}

impl Ui {
    pub fn new(verbosity: Verbosity) -> Ui {
        let interactive = std::io::stderr().is_terminal();
        let color = interactive && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let multi =
            MultiProgress::with_draw_target(if interactive && verbosity > Verbosity::Quiet {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            });
        Ui {
            verbosity,
            color,
            interactive,
            multi,
            lane: None,
            #[cfg(test)]
            captured: None,
        }
    }

    /// A plain-line Ui whose lines are kept, not printed.
    #[cfg(test)]
    pub fn capturing(verbosity: Verbosity) -> (Ui, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let lines = std::sync::Arc::default();
        let ui = Ui {
            verbosity,
            color: false,
            interactive: false,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            lane: None,
            captured: Some(std::sync::Arc::clone(&lines)),
        };
        (ui, lines)
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Whether tasks show as live spinners (a terminal) rather than lines.
    pub fn is_live(&self) -> bool {
        !self.multi.is_hidden()
    }

    /// A Ui for one of several stacks of a run: its lines start with
    /// `label |` (as compose prefixes a service's), and on a terminal its
    /// tasks share one live line instead of one each.
    pub fn labelled(&self, label: impl Into<String>) -> Ui {
        let label = label.into();
        let bar = (!self.multi.is_hidden()).then(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} | {wide_msg} {elapsed}")
                    .expect("valid template"),
            );
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Ui {
            lane: Some(std::sync::Arc::new(Lane { label, bar })),
            ..self.clone()
        }
    }

    fn line(&self, text: &str) {
        let labelled;
        let text = match &self.lane {
            Some(lane) => {
                labelled = format!("{} | {text}", lane.label);
                labelled.as_str()
            }
            None => text,
        };
        #[cfg(test)]
        if let Some(lines) = &self.captured {
            lines.lock().expect("captured lines").push(text.to_owned());
            return;
        }
        let _ = self.multi.println(text);
        if self.multi.is_hidden() {
            // Not eprintln!: after SIGHUP the terminal is gone and a write
            // error must not panic in the middle of a teardown.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }

    /// Normal progress information.
    pub fn info(&self, text: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            self.line(text.as_ref());
        }
    }

    /// Detail shown with `-v`.
    pub fn debug(&self, text: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(&format!("debug: {}", text.as_ref()));
        }
    }

    pub fn warn(&self, text: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            self.line(&format!("{} {}", self.yellow("warning:"), text.as_ref()));
        }
    }

    /// Errors always show, even with `-q`.
    pub fn error(&self, text: impl AsRef<str>) {
        self.line(&format!("{} {}", self.red("error:"), text.as_ref()));
    }

    /// A live line for one task: a spinner on a terminal, start/end lines otherwise.
    pub fn task(&self, label: impl Into<String>) -> Task {
        let label = label.into();
        if let Some(bar) = self.lane.as_ref().and_then(|l| l.bar.clone()) {
            bar.set_message(format!("{label} starting"));
            return Task {
                ui: self.clone(),
                label,
                bar: None,
                lane: Some(bar),
            };
        }
        let bar = if self.multi.is_hidden() {
            self.info(format!("{label} ..."));
            None
        } else {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed}")
                    .expect("valid template"),
            );
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        };
        Task {
            ui: self.clone(),
            label,
            bar,
            lane: None,
        }
    }
}

/// The one live line of a labelled Ui; cleared when the last clone goes.
struct Lane {
    label: String,
    bar: Option<ProgressBar>,
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A running task's line.
pub struct Task {
    ui: Ui,
    label: String,
    bar: Option<ProgressBar>,
    /// The labelled Ui's live line, which this task's progress shows on.
    lane: Option<ProgressBar>,
}

impl Task {
    pub fn update(&self, message: impl Into<String>) {
        match (&self.bar, &self.lane) {
            (Some(bar), _) => bar.set_message(message.into()),
            (None, Some(lane)) => {
                lane.set_message(format!("{} {}", self.label.trim(), message.into()))
            }
            (None, None) => self.ui.debug(format!("{}: {}", self.label, message.into())),
        }
    }

    pub fn done(self, message: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(lane) = &self.lane {
            // The live line says it; a line each would interleave the stacks'.
            lane.set_message(format!("{} {}", self.label.trim(), message.as_ref()));
            return;
        }
        self.ui.info(format!(
            "{} {} {}",
            self.ui.green("✓"),
            self.label,
            message.as_ref()
        ));
    }

    pub fn fail(self, message: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.ui.info(format!(
            "{} {} {}",
            self.ui.red("✗"),
            self.label,
            message.as_ref()
        ));
    }
}

/// How often a log that shows no live lines hears how far a long task is.
const LOG_EVERY: Duration = Duration::from_secs(15);

/// Renders the stack layer's events as [`Ui::task`] and its notices render
/// them: a live line (or start and end lines) for each task.
pub struct StackLines {
    ui: Ui,
    /// Each open task's line, and when a log last heard of it.
    tasks: Mutex<HashMap<TaskId, (Task, Instant)>>,
}

impl StackLines {
    pub fn new(ui: &Ui) -> StackLines {
        StackLines {
            ui: ui.clone(),
            tasks: Mutex::default(),
        }
    }
}

impl Listener for StackLines {
    fn event(&self, event: &StackEvent) {
        let mut tasks = self.tasks.lock().expect("task lines");
        match event {
            StackEvent::TaskStarted { task, label } => {
                tasks.insert(*task, (self.ui.task(label.clone()), Instant::now()));
            }
            StackEvent::TaskProgress { task, message, log } => {
                let Some((line, logged)) = tasks.get_mut(task) else {
                    return;
                };
                line.update(message.clone());
                if let Some(log) = log
                    && !self.ui.is_live()
                    && logged.elapsed() >= LOG_EVERY
                {
                    *logged = Instant::now();
                    self.ui.info(log);
                }
            }
            StackEvent::TaskEnded {
                task,
                outcome,
                message,
            } => match (tasks.remove(task), outcome) {
                (Some((line, _)), Outcome::Done) => line.done(message),
                (Some((line, _)), Outcome::Failed) => line.fail(message),
                (_, _) => {}
            },
            StackEvent::Notice { level, text } => match level {
                Level::Debug => self.ui.debug(text),
                Level::Info => self.ui.info(text),
                Level::Warn => self.ui.warn(text),
            },
        }
    }
}

impl Ui {
    /// The stack layer's progress, rendered on this Ui.
    pub fn progress(&self) -> Progress {
        Progress::new(StackLines::new(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labelled_ui_prefixes_every_line_and_each_task_s_end() {
        let (ui, lines) = Ui::capturing(Verbosity::Normal);
        let stack = ui.labelled("ab12cd34 reads gometr");
        stack.info("starting");
        stack.task("gometr   ").done("ready in 0.3 s");
        ui.info("unlabelled");
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "ab12cd34 reads gometr | starting",
                "ab12cd34 reads gometr | gometr    ...",
                "ab12cd34 reads gometr | ✓ gometr    ready in 0.3 s",
                "unlabelled",
            ]
        );
    }

    /// What `stack/` does when starting a stack, as progress events or as the
    /// Ui calls it made before it emitted events.
    fn a_stack_s_start(progress: &Progress) {
        progress.info("images: nothing to build");
        let task = progress.task("postgres ");
        task.update("waiting for readiness on 127.0.0.1:5432");
        task.done("ready in 0.9 s");
        let task = progress.task("cargo build (static binaries: api)");
        task.update_logged("[1 crates] Compiling api", "cargo build: 1 crates compiled");
        task.fail("failed");
        drop(progress.task("api      "));
        progress.warn("cannot build the reaper image: no workspace");
        progress.debug("image metrtest/api:1 is up to date");
    }

    fn the_same_through_the_ui(ui: &Ui) {
        ui.info("images: nothing to build");
        let task = ui.task("postgres ");
        task.update("waiting for readiness on 127.0.0.1:5432");
        task.done("ready in 0.9 s");
        let task = ui.task("cargo build (static binaries: api)");
        task.update("[1 crates] Compiling api");
        task.fail("failed");
        drop(ui.task("api      "));
        ui.warn("cannot build the reaper image: no workspace");
        ui.debug("image metrtest/api:1 is up to date");
    }

    #[test]
    fn stack_events_render_as_the_ui_s_own_lines_did_labelled_or_not() {
        for verbosity in [Verbosity::Quiet, Verbosity::Normal, Verbosity::Verbose] {
            for label in [None, Some("ab12cd34 reads gometr")] {
                let lanes = |ui: Ui| match label {
                    Some(label) => ui.labelled(label),
                    None => ui,
                };
                let (ui, rendered) = Ui::capturing(verbosity);
                a_stack_s_start(&lanes(ui).progress());
                let (ui, direct) = Ui::capturing(verbosity);
                the_same_through_the_ui(&lanes(ui));
                assert_eq!(
                    *rendered.lock().unwrap(),
                    *direct.lock().unwrap(),
                    "{verbosity:?} {label:?}"
                );
            }
        }
        let (ui, lines) = Ui::capturing(Verbosity::Normal);
        a_stack_s_start(&ui.progress());
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "images: nothing to build",
                "postgres  ...",
                "✓ postgres  ready in 0.9 s",
                "cargo build (static binaries: api) ...",
                "✗ cargo build (static binaries: api) failed",
                "api       ...",
                "warning: cannot build the reaper image: no workspace",
            ]
        );
    }
}
