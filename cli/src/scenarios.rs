//! The scenario files a command names: their environments (the run's own,
//! and a folder's own `metrtest.yaml` laid over it), what they may refer to,
//! and loading all of them with every problem told.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::cli::{ENV_FILE, EnvArgs};
use crate::config::envfile::EnvFile;
use crate::config::layers;
use crate::exit::{Failure, Result};
use crate::scenario::load::{self, Diagnostic, Loaded, MAX_SHOWN_PROBLEMS};
use crate::scenario::references::Context;
use crate::stack::images::ImageChoice;
use crate::stack::spec;
use crate::ui::Ui;

/// The folders among `paths`: where the default environment file is looked for.
pub fn folders(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths.iter().filter(|p| p.is_dir()).cloned().collect()
}

/// What scenarios may name: the services of the stack the environment file
/// describes, and the `--var` names.
pub fn context(file: &EnvFile, vars: &[(String, String)]) -> Context {
    let mut services = vec!["postgres".to_owned()];
    services.extend(spec::gometr_names(file.gometr.replicas));
    services.extend(["checker".to_owned(), "api".to_owned()]);
    Context {
        services: Some(services),
        vars: vars.iter().map(|(k, _)| k.clone()).collect(),
    }
}

/// One environment of a run: its scenarios run on stacks built from it.
#[derive(Debug, Clone)]
pub struct Environment {
    pub file: EnvFile,
    /// The folders whose own `metrtest.yaml` are laid over the run's, in
    /// order; empty for the run's own environment.
    pub folders: Vec<PathBuf>,
}

/// The environments of a run and which scenario file takes which.
#[derive(Debug, Clone)]
pub struct Environments {
    /// The run's own first, then one per folder with its own `metrtest.yaml`.
    pub list: Vec<Environment>,
    /// Each file's environment (an index into `list`); absent: the run's own.
    by_file: HashMap<PathBuf, usize>,
}

impl Environments {
    /// One environment for every file.
    pub fn single(file: EnvFile) -> Environments {
        Environments {
            list: vec![Environment {
                file,
                folders: vec![],
            }],
            by_file: HashMap::new(),
        }
    }

    /// The index of a scenario file's environment.
    pub fn index_of(&self, file: &Path) -> usize {
        self.by_file.get(file).copied().unwrap_or(0)
    }

    /// The images each environment chooses, in the same order.
    pub fn image_choices(&self) -> Vec<&ImageChoice> {
        self.list.iter().map(|e| &e.file.images).collect()
    }

    /// A scenario file's environment.
    pub fn of(&self, file: &Path) -> &EnvFile {
        &self.list[self.index_of(file)].file
    }

    /// Finds each file's environment. The run's own is `--env`, else the
    /// `metrtest.yaml` of the first folder given that has one. A file found
    /// under a folder given takes, besides, the `metrtest.yaml` of every
    /// folder between that one and its own (its own included), each laid
    /// over the ones above it ([`layers::layered`]). `finish` applies to
    /// each environment once laid (the flags' choices, `run`'s test timing).
    pub fn find(
        env: &EnvArgs,
        paths: &[PathBuf],
        files: &[PathBuf],
        finish: impl Fn(EnvFile) -> EnvFile,
    ) -> Result<Environments> {
        let roots = folders(paths);
        let base: Vec<PathBuf> = env.path(&roots)?.into_iter().collect();
        let lay = |chain: &[PathBuf]| -> Result<EnvFile> {
            let mut layers_ = base.clone();
            layers_.extend(chain.iter().map(|folder| folder.join(ENV_FILE)));
            let file = layers::layered(&layers_).map_err(|e| Failure::invalid(e.to_string()))?;
            Ok(finish(env.overrides(file)))
        };
        let mut environments = Environments::single(lay(&[])?);
        let mut by_chain: BTreeMap<Vec<PathBuf>, usize> = BTreeMap::new();
        for file in files {
            let chain = own_folders(&roots, file);
            if chain.is_empty() {
                continue;
            }
            let index = match by_chain.get(&chain) {
                Some(&index) => index,
                None => {
                    environments.list.push(Environment {
                        file: lay(&chain)?,
                        folders: chain.clone(),
                    });
                    let index = environments.list.len() - 1;
                    by_chain.insert(chain, index);
                    index
                }
            };
            environments.by_file.insert(file.clone(), index);
        }
        Ok(environments)
    }
}

/// The folders with their own `metrtest.yaml` between the first of `roots`
/// that holds `file` (excluded: its file is the run's own) and `file`,
/// the outermost first.
fn own_folders(roots: &[PathBuf], file: &Path) -> Vec<PathBuf> {
    let Some(root) = roots.iter().find(|r| file.starts_with(r)) else {
        return vec![];
    };
    let mut chain: Vec<PathBuf> = file
        .ancestors()
        .skip(1)
        .take_while(|folder| *folder != root.as_path() && folder.starts_with(root))
        .filter(|folder| folder.join(ENV_FILE).is_file())
        .map(Path::to_path_buf)
        .collect();
    chain.reverse();
    chain
}

/// The scenario files under `paths`, or every path that cannot be one
/// (each told as an error, exit 2).
pub fn discover(paths: &[PathBuf], ui: &Ui) -> Result<Vec<PathBuf>> {
    let files = load::discover(paths).map_err(|problems| {
        for p in &problems {
            ui.error(p);
        }
        Failure::invalid(format!(
            "{} path(s) cannot be scenario files; nothing was started",
            problems.len()
        ))
    })?;
    if files.is_empty() {
        return Err(Failure::invalid(format!(
            "no scenario files (*.yaml) under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(files)
}

/// Loads every scenario under `paths` against its own environment's stack,
/// or fails with every problem found (each told as an error, exit 2).
pub fn load_all(
    paths: &[PathBuf],
    env: &EnvArgs,
    vars: &[(String, String)],
    finish: impl Fn(EnvFile) -> EnvFile,
    ui: &Ui,
) -> Result<(Environments, Vec<Loaded>)> {
    let files = discover(paths, ui)?;
    let environments = Environments::find(env, paths, &files, finish)?;
    let contexts: Vec<Context> = environments
        .list
        .iter()
        .map(|e| context(&e.file, vars))
        .collect();
    let mut loaded = Vec::new();
    let mut problems = 0;
    for file in files {
        match load::load(&file, &contexts[environments.index_of(&file)]) {
            Ok(l) => loaded.push(l),
            Err(diagnostics) => {
                problems += diagnostics.len();
                tell(&file, &diagnostics, ui);
            }
        }
    }
    if problems > 0 {
        return Err(Failure::invalid(format!(
            "{problems} problem(s) in scenario files; nothing was started"
        )));
    }
    Ok((environments, loaded))
}

/// A file's problems, the first [`MAX_SHOWN_PROBLEMS`] in full and the
/// rest counted, so one broken file cannot bury the others.
fn tell(file: &Path, diagnostics: &[Diagnostic], ui: &Ui) {
    for d in diagnostics.iter().take(MAX_SHOWN_PROBLEMS) {
        ui.error(d.to_string());
    }
    let hidden = diagnostics.len().saturating_sub(MAX_SHOWN_PROBLEMS);
    if hidden > 0 {
        ui.error(format!(
            "{}: … and {hidden} more problem(s) (showing the first {MAX_SHOWN_PROBLEMS})",
            file.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_folder_with_its_own_environment_file_lays_it_over_the_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("scenarios");
        touch(&root.join(ENV_FILE), "checker: { interval: 2s }\n");
        touch(&root.join("a.yaml"), "");
        touch(&root.join("big/metrtest.yaml"), "gometr: { replicas: 3 }\n");
        touch(&root.join("big/b.yaml"), "");
        touch(&root.join("big/deeper/c.yaml"), "");
        touch(&root.join("plain/d.yaml"), "");
        let files: Vec<PathBuf> = ["a.yaml", "big/b.yaml", "big/deeper/c.yaml", "plain/d.yaml"]
            .iter()
            .map(|f| root.join(f))
            .collect();
        let envs = Environments::find(
            &EnvArgs::default(),
            std::slice::from_ref(&root),
            &files,
            |f| f,
        )
        .unwrap();
        assert_eq!(envs.list.len(), 2, "{envs:?}");
        assert_eq!(envs.index_of(&files[0]), 0);
        assert_eq!(envs.index_of(&files[3]), 0, "a folder without its own file");
        assert_eq!(envs.index_of(&files[1]), 1);
        assert_eq!(
            envs.index_of(&files[2]),
            1,
            "a subfolder of it takes it too"
        );
        let big = envs.of(&files[1]);
        assert_eq!(big.gometr.replicas, 3);
        assert_eq!(
            big.checker.interval.as_deref(),
            Some("2s"),
            "laid over the run's"
        );
        assert_eq!(envs.of(&files[0]).gometr.replicas, 1);
        assert_eq!(envs.list[1].folders, [root.join("big")]);
    }

    #[test]
    fn a_file_given_alone_or_outside_the_folders_takes_the_runs_environment() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        touch(&big.join(ENV_FILE), "gometr: { replicas: 3 }\n");
        touch(&big.join("b.yaml"), "");
        let file = big.join("b.yaml");
        let alone = Environments::find(
            &EnvArgs::default(),
            std::slice::from_ref(&file),
            std::slice::from_ref(&file),
            |f| f,
        )
        .unwrap();
        assert_eq!(alone.list.len(), 1);
        // Given as the folder itself, its file is the run's own environment.
        let folder = Environments::find(
            &EnvArgs::default(),
            std::slice::from_ref(&big),
            std::slice::from_ref(&file),
            |f| f,
        )
        .unwrap();
        assert_eq!(folder.list.len(), 1);
        assert_eq!(folder.of(&file).gometr.replicas, 3);
    }
}
