//! Finding and reading scenario files, within limits: regular files only, each
//! file once (by canonical path, so symlink loops end), at most 1 MiB.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest scenario file read: far above any hand-written scenario, far
/// below what would take the loader seconds and gigabytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// How [`MAX_FILE_BYTES`] reads in messages.
pub const MAX_FILE_SIZE: &str = "1 MiB";

/// Why a file could not be read as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// Not read at all (missing, not a regular file, too large, an I/O error).
    Refused(String),
    /// Read, but not UTF-8: the position of the first bad byte (1-based).
    NotUtf8 { line: usize, column: usize },
}

/// Scenario files under the given paths: files as given, folders searched
/// recursively for `*.yaml`/`*.yml` (the environment file excluded), sorted,
/// each file once however many paths or symlinks lead to it. Fails with every
/// path that cannot be a scenario file.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut found = Found::default();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => found.walk(path),
            Ok(meta) => found.add(path, &meta),
            Err(_) => found
                .problems
                .push(format!("{}: no such file or folder", path.display())),
        }
    }
    if !found.problems.is_empty() {
        return Err(found.problems);
    }
    let mut files = found.files;
    files.sort();
    Ok(files)
}

#[derive(Default)]
struct Found {
    files: Vec<PathBuf>,
    problems: Vec<String>,
    seen_files: HashSet<PathBuf>,
    seen_dirs: HashSet<PathBuf>,
}

impl Found {
    fn add(&mut self, path: &Path, meta: &Metadata) {
        if let Err(why) = regular(path, meta) {
            self.problems.push(why.to_string());
            return;
        }
        match path.canonicalize() {
            Ok(canonical) => {
                if self.seen_files.insert(canonical) {
                    self.files.push(path.to_path_buf());
                }
            }
            Err(e) => self.problems.push(format!("{}: {e}", path.display())),
        }
    }

    /// Descends into each folder once, so a symlink back up ends the walk.
    fn walk(&mut self, dir: &Path) {
        if let Err(e) = self.try_walk(dir) {
            self.problems.push(format!("{}: {e}", dir.display()));
        }
    }

    fn try_walk(&mut self, dir: &Path) -> std::io::Result<()> {
        if !self.seen_dirs.insert(dir.canonicalize()?) {
            return Ok(());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for path in entries {
            // Follows symlinks: a link is what it points at.
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_dir() => self.walk(&path),
                Ok(meta) if is_scenario_name(&path) => self.add(&path, &meta),
                Ok(_) => {}
                Err(e) if is_scenario_name(&path) => {
                    self.problems.push(format!("{}: {e}", path.display()));
                }
                Err(_) => {}
            }
        }
        Ok(())
    }
}

fn is_scenario_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
        && path.file_name().is_some_and(|n| n != "metrtest.yaml")
}

/// A path that is not a regular file, and what it is instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: not a regular file ({kind}); scenario files must be regular files", .path.display())]
pub struct NotRegular {
    pub path: PathBuf,
    pub kind: &'static str,
}

/// Devices and FIFOs never end or never start; only regular files are read.
fn regular(path: &Path, meta: &Metadata) -> Result<(), NotRegular> {
    use std::os::unix::fs::FileTypeExt;
    if meta.is_file() {
        return Ok(());
    }
    let ft = meta.file_type();
    let kind = if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(NotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

/// Reads a scenario file as text, refusing what is not a regular file or is
/// over [`MAX_FILE_BYTES`]. A leading byte-order mark is dropped.
pub fn read(path: &Path) -> Result<String, ReadError> {
    let refused = |e: String| ReadError::Refused(e);
    let meta = std::fs::metadata(path).map_err(|e| refused(format!("cannot read: {e}")))?;
    regular(path, &meta).map_err(|_| {
        refused("not a regular file; scenario files must be regular files".to_owned())
    })?;
    let too_large = || {
        refused(format!(
            "the file is larger than the {MAX_FILE_SIZE} limit for a scenario file"
        ))
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let file = File::open(path).map_err(|e| refused(format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    // The size may change between the check and the read: read one byte past the cap.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refused(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    text(bytes)
}

/// UTF-8 text without a byte-order mark, or the position of the first bad byte.
pub fn text(bytes: Vec<u8>) -> Result<String, ReadError> {
    let bytes = match bytes.strip_prefix("\u{feff}".as_bytes()) {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = std::str::from_utf8(good).expect("the valid prefix");
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ReadError::NotUtf8 { line, column }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_dropped() {
        assert_eq!(text(b"\xef\xbb\xbfname: x".to_vec()).unwrap(), "name: x");
    }

    #[test]
    fn the_first_bad_byte_is_located() {
        assert_eq!(
            text(b"a: 1\nname: caf\xe9\n".to_vec()),
            Err(ReadError::NotUtf8 {
                line: 2,
                column: 10
            })
        );
    }
}
