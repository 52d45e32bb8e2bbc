//! Shell completion and `metrtest man`, generated from the argument
//! definitions so that they never drift from them.
//!
//! Completion is dynamic (clap_complete's `CompleteEnv`): the shell's
//! registration, printed by `COMPLETE=bash metrtest` or `metrtest completions
//! bash`, calls metrtest back at each TAB, and metrtest answers from the
//! argument definitions plus the completers here: run ids from the engine,
//! service names from the default stack (or the run's containers), scenario
//! files and folders from the disk.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, ValueHint};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate, PathCompleter};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use clap_complete::{CompleteEnv, Shell};

use crate::cli::Args;
use crate::config::envfile::EnvFile;
use crate::engine::{self, labels};
use crate::exit::{Failure, Result};
use crate::stack::images::ImageSet;
use crate::stack::spec::StackSpec;
use crate::ui;

/// The variable that asks metrtest to complete (clap's): `COMPLETE=bash metrtest`.
pub const COMPLETE_VAR: &str = "COMPLETE";
/// The name the registration completes, which also covers `scripts/metrtest`:
/// bash and fish look a path's last part up, and zsh its tail.
const BIN: &str = "metrtest";
/// How long a TAB waits for the engine before completing without it.
const ENGINE_WITHIN: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
    /// Print the static script instead: subcommands and flags only (no run
    /// ids, services or scenario paths), and it never calls metrtest.
    #[arg(long = "static")]
    pub static_script: bool,
}

/// The shells metrtest writes completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl From<CompletionShell> for Shell {
    fn from(shell: CompletionShell) -> Shell {
        match shell {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }
}

impl CompletionShell {
    fn env_completer(self) -> &'static dyn EnvCompleter {
        match self {
            CompletionShell::Bash => &Bash,
            CompletionShell::Zsh => &Zsh,
            CompletionShell::Fish => &Fish,
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct ManArgs {
    /// Write metrtest.1 and one page per subcommand (metrtest-run.1, …) into
    /// this folder instead of metrtest.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Answers the shell and exits when `COMPLETE` asks for completion (a TAB, or
/// `COMPLETE=bash metrtest` for the registration); otherwise returns at once.
/// Called before anything else, since the shell reads stdout.
pub fn complete_if_asked() {
    CompleteEnv::with_factory(command)
        .var(COMPLETE_VAR)
        .bin(BIN)
        .completer(completer())
        .complete();
}

/// The command line with its completers: the argument definitions, plus
/// where run ids, service names and paths come from. Attached here rather
/// than at each argument so that every source of candidates is in one place.
pub fn command() -> clap::Command {
    let run_id = || ArgValueCompleter::new(run_ids);
    let scenarios = || ArgValueCompleter::new(PathCompleter::any().filter(is_scenario_path));
    let yaml = || ArgValueCompleter::new(PathCompleter::any().filter(is_yaml));
    Args::command()
        .mut_subcommand("run", |c| {
            c.mut_arg("paths", |a| a.add(scenarios()))
                .mut_arg("env_file", |a| a.add(yaml()))
                .mut_arg("stack", |a| a.add(run_id()))
                .mut_arg("junit", |a| a.value_hint(ValueHint::FilePath))
        })
        .mut_subcommand("validate", |c| {
            c.mut_arg("paths", |a| a.add(scenarios()))
                .mut_arg("env_file", |a| a.add(yaml()))
        })
        .mut_subcommand("up", |c| c.mut_arg("env_file", |a| a.add(yaml())))
        .mut_subcommand("images", |c| c.mut_arg("env_file", |a| a.add(yaml())))
        .mut_subcommand("down", |c| c.mut_arg("run", |a| a.add(run_id())))
        .mut_subcommand("logs", |c| {
            c.mut_arg("run", |a| a.add(run_id()))
                .mut_arg("service", |a| a.add(ArgValueCompleter::new(services)))
        })
        .mut_subcommand("man", |c| {
            c.mut_arg("dir", |a| a.value_hint(ValueHint::DirPath))
        })
}

/// A folder (it may hold scenarios) or a YAML file.
fn is_scenario_path(path: &Path) -> bool {
    path.is_dir() || is_yaml(path)
}

fn is_yaml(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// The ids of the runs on the engine that start with `current`, each with
/// its services as help; none when no engine answers within [`ENGINE_WITHIN`].
fn run_ids(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let containers = from_engine(None).unwrap_or_default();
    let mut runs: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for (run, service) in containers {
        let services = runs.entry(run).or_default();
        if service != labels::REAPER_SERVICE {
            services.insert(service);
        }
    }
    runs.into_iter()
        .filter(|(run, _)| run.starts_with(current.as_ref()))
        .map(|(run, services)| {
            let help = services.into_iter().collect::<Vec<_>>().join(", ");
            CompletionCandidate::new(run).help(Some(help.into()))
        })
        .collect()
}

/// The service names that start with `current`: the given run's (`--run`
/// on the line being completed) when the engine answers, else the default
/// stack's.
fn services(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let of_run: Option<BTreeSet<String>> = run_on_line(std::env::args_os())
        .and_then(|run| from_engine(Some(&run)))
        .map(|containers| {
            containers
                .into_iter()
                .map(|(_, service)| service)
                .filter(|s| s != labels::REAPER_SERVICE)
                .collect()
        })
        .filter(|names: &BTreeSet<String>| !names.is_empty());
    let names = match of_run {
        Some(names) => names.into_iter().collect(),
        None => default_services(),
    };
    names
        .into_iter()
        .filter(|name| name.starts_with(current.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// The services of the stack `up` and `run` start without an environment file.
pub fn default_services() -> Vec<String> {
    StackSpec::build(&ImageSet::default(), &EnvFile::default())
        .services
        .into_iter()
        .map(|s| s.name)
        .collect()
}

/// The value of `--run` on the command line being completed: a completer
/// sees only the word under the cursor, the words are in the process's arguments.
fn run_on_line(args: impl IntoIterator<Item = OsString>) -> Option<String> {
    let words: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    words.iter().enumerate().find_map(|(i, word)| {
        let value = match word.strip_prefix("--run") {
            Some("") => words.get(i + 1)?.as_str(),
            Some(rest) => rest.strip_prefix('=')?,
            None => return None,
        };
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// `(run, service)` of every metrtest container (of `run` when given), or
/// nothing when no engine answers within [`ENGINE_WITHIN`]. An engine
/// reached over ssh is not asked: a login may prompt, and a TAB must not.
fn from_engine(run: Option<&str>) -> Option<Vec<(String, String)>> {
    let endpoint = engine::endpoint::current().ok()?;
    if endpoint.host.starts_with("ssh://") {
        return None;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        let ask = async {
            let engine = engine::connect().await.ok()?;
            engine.list_containers(run).await.ok()
        };
        let containers = tokio::time::timeout(ENGINE_WITHIN, ask).await.ok()??;
        Some(
            containers
                .into_iter()
                .filter_map(|c| {
                    let labels = &c.labels;
                    Some((
                        labels.get(labels::RUN)?.clone(),
                        labels.get(labels::SERVICE)?.clone(),
                    ))
                })
                .collect(),
        )
    })
}

/// The registration `COMPLETE=SHELL metrtest` prints: shell code that calls
/// `completer` back at each TAB.
pub fn registration(shell: CompletionShell, completer: &str) -> Vec<u8> {
    let mut out = Vec::new();
    shell
        .env_completer()
        .write_registration(COMPLETE_VAR, BIN, BIN, completer, &mut out)
        .expect("writing into memory does not fail");
    out
}

/// How the registration calls this binary back, as `CompleteEnv` says it:
/// the name it was started by (`metrtest`, found on PATH at each TAB), made
/// absolute when it is a path (`scripts/metrtest` starts the binary it
/// built by its full path).
fn completer() -> String {
    let started_as = PathBuf::from(std::env::args_os().next().unwrap_or_else(|| BIN.into()));
    let path: PathBuf = match std::env::current_dir() {
        Ok(dir) if started_as.components().count() > 1 => dir
            .join(started_as)
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect(),
        _ => started_as,
    };
    path.to_string_lossy().into_owned()
}

/// The static completion script for `shell`: subcommands and flags only.
pub fn static_script(shell: CompletionShell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(Shell::from(shell), &mut Args::command(), BIN, &mut out);
    out
}

/// The man page of `command` (roff).
fn page(command: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .expect("rendering into memory does not fail");
    out
}

/// `metrtest.1`, and with `subcommands` one page for each of them.
pub fn man_pages(subcommands: bool) -> Vec<(String, Vec<u8>)> {
    let mut command = Args::command();
    command.build();
    let mut pages = vec![("metrtest.1".to_owned(), page(command.clone()))];
    if subcommands {
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("metrtest-{}", sub.get_name());
            pages.push((format!("{name}.1"), page(sub.clone().display_name(name))));
        }
    }
    pages
}

pub fn run_completions(args: &CompletionsArgs) -> Result<()> {
    if args.static_script {
        ui::write(&static_script(args.shell));
    } else {
        ui::write(&registration(args.shell, &completer()));
    }
    Ok(())
}

pub fn run_man(args: &ManArgs) -> Result<()> {
    match &args.dir {
        None => {
            ui::write(&man_pages(false)[0].1);
            Ok(())
        }
        Some(dir) => write_pages(dir),
    }
}

fn write_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::environment(format!("create {}: {e}", dir.display())))?;
    for (name, bytes) in man_pages(true) {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| Failure::environment(format!("write {}: {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn every_completer_is_attached_to_an_argument_that_exists() {
        command().debug_assert();
    }

    #[test]
    fn the_run_on_the_line_is_read_in_both_spellings() {
        let line = "metrtest -- metrtest logs --run abc12345 ";
        assert_eq!(run_on_line(words(line)).as_deref(), Some("abc12345"));
        let line = "metrtest -- metrtest logs --run=abc12345 gom";
        assert_eq!(run_on_line(words(line)).as_deref(), Some("abc12345"));
        assert_eq!(run_on_line(words("metrtest -- metrtest logs --run")), None);
        assert_eq!(
            run_on_line(words("metrtest -- metrtest logs --runner x")),
            None
        );
    }

    #[test]
    fn the_default_services_are_the_stacks() {
        assert_eq!(
            default_services(),
            ["postgres", "gometr", "migrate", "checker", "api"]
        );
    }

    #[test]
    fn a_scenario_path_is_a_folder_or_a_yaml_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.yaml", "b.YML", "notes.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        assert!(is_scenario_path(dir.path()));
        assert!(is_scenario_path(&dir.path().join("a.yaml")));
        assert!(is_scenario_path(&dir.path().join("b.YML")));
        assert!(!is_scenario_path(&dir.path().join("notes.txt")));
    }
}
