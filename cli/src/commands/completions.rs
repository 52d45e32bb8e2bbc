//! `metrtest completions SHELL` and `metrtest man`: generated from the
//! argument definitions, so they never drift from them.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Args;
use crate::exit::{Failure, Result};
use crate::ui;

#[derive(clap::Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
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

#[derive(clap::Args, Debug, Clone)]
pub struct ManArgs {
    /// Write metrtest.1 and one page per subcommand (metrtest-run.1, …) into
    /// this folder instead of metrtest.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The completion script for `shell`.
pub fn completions(shell: CompletionShell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(
        Shell::from(shell),
        &mut Args::command(),
        "metrtest",
        &mut out,
    );
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
    ui::write(&completions(args.shell));
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
