//! Environment files layered one over another: a folder of scenarios with
//! its own `metrtest.yaml` runs on a stack built from that file laid over the
//! run's own environment. Mappings merge key by key and the later file's
//! value wins; a list or a scalar is replaced whole (a folder's
//! `checker.targets` replaces the run's, its `env.gometr` adds to the run's).
//! Each file is first read alone, so a mistake is told at its own
//! file:line:column.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::config::envfile::{EnvFile, EnvFileError};

/// The environment of `files`, each laid over those before it; none is the default.
pub fn layered(files: &[PathBuf]) -> Result<EnvFile, EnvFileError> {
    let mut merged = Value::Mapping(Default::default());
    for path in files {
        let text = read(path)?;
        // Alone first: errors at this file's own positions.
        EnvFile::parse(&text, &path.display().to_string())?;
        if text.trim().is_empty() {
            continue;
        }
        let value: Value = serde_yaml::from_str(&text).map_err(|e| EnvFileError {
            location: path.display().to_string(),
            message: e.to_string(),
        })?;
        lay(&mut merged, value);
    }
    let name = files
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" over ");
    EnvFile::from_value(merged, &name)
}

fn read(path: &Path) -> Result<String, EnvFileError> {
    std::fs::read_to_string(path).map_err(|e| EnvFileError {
        location: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Lays `over` on `base`: mappings key by key, anything else replaced.
fn lay(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => lay(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_later_file_merges_mappings_and_replaces_lists_and_scalars() {
        let dir = tempfile::tempdir().unwrap();
        let run = write(
            dir.path(),
            "run.yaml",
            "env:\n  gometr: { A: run, B: run }\ngometr: { replicas: 2 }\nchecker:\n  interval: 2s\n  targets: [{ name: a, kind: http, url: \"http://a/\" }]\n",
        );
        let folder = write(
            dir.path(),
            "folder.yaml",
            "env:\n  gometr: { B: folder }\n  api: { C: folder }\nchecker:\n  targets: [{ name: b, kind: http, url: \"http://b/\" }]\n",
        );
        let file = layered(&[run, folder]).unwrap();
        assert_eq!(file.env["gometr"]["A"], "run", "kept from the run's");
        assert_eq!(file.env["gometr"]["B"], "folder", "the folder's wins");
        assert_eq!(file.env["api"]["C"], "folder");
        assert_eq!(
            file.gometr.replicas, 2,
            "a key the folder omits is the run's"
        );
        assert_eq!(file.checker.interval.as_deref(), Some("2s"));
        let targets = file.checker.targets.unwrap();
        assert_eq!(targets.len(), 1, "a list is replaced whole");
        assert_eq!(targets[0]["name"], "b");
    }

    #[test]
    fn a_mistake_is_told_at_its_own_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let run = write(dir.path(), "run.yaml", "gometr: { replicas: 2 }\n");
        let folder = write(dir.path(), "folder.yaml", "checker:\n  intervall: 2s\n");
        let err = layered(&[run, folder.clone()]).unwrap_err();
        assert_eq!(err.location, format!("{}:2:3", folder.display()));
        assert!(err.message.contains("intervall"), "{}", err.message);
    }

    #[test]
    fn no_file_is_the_default_and_an_empty_file_changes_nothing() {
        assert_eq!(layered(&[]).unwrap().gometr.replicas, 1);
        let dir = tempfile::tempdir().unwrap();
        let run = write(dir.path(), "run.yaml", "gometr: { replicas: 3 }\n");
        let empty = write(dir.path(), "empty.yaml", "\n");
        assert_eq!(layered(&[run, empty]).unwrap().gometr.replicas, 3);
    }
}
