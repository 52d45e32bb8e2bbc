//! Image archives: every image a run needs, built once and carried to other
//! engines, as nextest's archives carry test binaries. `metrtest images
//! --save FILE` writes one tar holding `manifest.json` (first), the images as
//! one `docker save` tar (`images.tar`) and the metrtest binary
//! (`bin/metrtest`, so that a runner without a build can take it out with
//! `tar -xf FILE bin/metrtest`). `--load FILE` checks the whole archive
//! before the engine sees any of it, loads the images, and records them in
//! the workspace: a run of the same commit on a clean tree then takes them
//! instead of building anything.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::Client;
use crate::engine::error::{EngineError, Result};
use crate::stack::faults;
use crate::stack::images::{self, ImageChoice, ImageSet};
use crate::stack::progress::Progress;
use crate::stack::reaper;

/// The archive format this metrtest writes and reads.
pub const FORMAT: &str = "metrtest-images/1";
const MANIFEST: &str = "manifest.json";
const IMAGES: &str = "images.tar";
const BINARY: &str = "bin/metrtest";
/// Where a load records what it loaded, under the workspace.
const RECORD: &str = "target/metrtest/loaded-images.json";

/// What an archive holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// The commit the images were built from, if the workspace is a git checkout.
    pub commit: Option<String>,
    /// Whether the tree had changes beside that commit.
    pub dirty: bool,
    pub metrtest_version: String,
    /// Image tag by role: postgres, gometr, checker, api, reaper, faultproxy.
    pub images: BTreeMap<String, String>,
    /// `images.tar`'s SHA-256 and size.
    pub images_sha256: String,
    pub images_bytes: u64,
}

impl Manifest {
    fn set(&self) -> Option<ImageSet> {
        let tag = |role: &str| self.images.get(role).cloned();
        Some(ImageSet {
            postgres: tag("postgres")?,
            gometr: tag("gometr")?,
            checker: tag("checker")?,
            api: tag("api")?,
        })
    }
}

fn broken(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::Archive {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Builds what is missing and writes every image a run needs into `path`.
pub async fn save(engine: &Client, path: &Path, progress: &Progress) -> Result<Manifest> {
    let root = images::workspace()?;
    let set = images::ensure(engine, &ImageChoice::default(), progress).await?;
    let reaper = reaper::image(engine, progress).await?;
    let faultproxy = faults::image(engine, progress).await?;
    let mut roles = BTreeMap::from([
        ("postgres".to_owned(), set.postgres),
        ("gometr".to_owned(), set.gometr),
        ("checker".to_owned(), set.checker),
        ("api".to_owned(), set.api),
        ("reaper".to_owned(), reaper),
        ("faultproxy".to_owned(), faultproxy),
    ]);
    roles.retain(|_, tag| !tag.is_empty());
    let (commit, dirty) = git_state(&root);
    let partial = beside(path, "images");
    let task = progress.task(format!("saving {} images", roles.len()));
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(EngineError::io(format!("create {}", partial.display())))?;
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    let tags: Vec<&str> = roles.values().map(String::as_str).collect();
    let saved = engine
        .save_images(&tags, &mut file, |piece| {
            hash.update(piece);
            bytes += piece.len() as u64;
        })
        .await;
    drop(file);
    if let Err(e) = saved {
        let _ = std::fs::remove_file(&partial);
        task.fail("failed");
        return Err(e);
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        commit,
        dirty,
        metrtest_version: env!("CARGO_PKG_VERSION").to_owned(),
        images: roles,
        images_sha256: hex(&hash.finalize()),
        images_bytes: bytes,
    };
    let written = pack(path, &manifest, &partial);
    let _ = std::fs::remove_file(&partial);
    match written {
        Ok(()) => task.done(format!("{} MB", bytes / 1_000_000)),
        Err(_) => task.fail("failed"),
    }
    written.map(|()| manifest)
}

/// Writes the archive to a file beside `path`, then renames it into place:
/// `path` is never a half-written archive.
fn pack(path: &Path, manifest: &Manifest, images_tar: &Path) -> Result<()> {
    let io = |what: &str| EngineError::io(format!("write {}: {what}", path.display()));
    let partial = beside(path, "archive");
    let write = || -> std::io::Result<()> {
        let mut tar = tar::Builder::new(std::fs::File::create(&partial)?);
        let json = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
        append_bytes(&mut tar, MANIFEST, &json, 0o644)?;
        tar.append_path_with_name(images_tar, IMAGES)?;
        tar.append_path_with_name(std::env::current_exe()?, BINARY)?;
        tar.into_inner()?.sync_all()
    };
    let result = write()
        .and_then(|()| std::fs::rename(&partial, path))
        .map_err(io("pack"));
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
}

/// Checks the archive at `path` whole, then loads its images into the engine
/// and records them for the runs of this workspace.
pub async fn load(engine: &Client, path: &Path, progress: &Progress) -> Result<Manifest> {
    let task = progress.task(format!("checking {}", path.display()));
    let images_tar = beside(path, "images");
    let (source, target) = (path.to_owned(), images_tar.clone());
    let unpacked = tokio::task::spawn_blocking(move || unpack(&source, &target))
        .await
        .map_err(|e| broken(path, e.to_string()))
        .and_then(|r| r);
    let manifest = match unpacked {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = std::fs::remove_file(&images_tar);
            task.fail("refused");
            return Err(e);
        }
    };
    task.update(format!("loading {} images", manifest.images.len()));
    let file = tokio::fs::File::open(&images_tar)
        .await
        .map_err(EngineError::io(format!("read {}", images_tar.display())));
    let loaded = match file {
        Ok(file) => engine.load_images(file).await,
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&images_tar);
    if let Err(e) = loaded {
        task.fail("failed");
        return Err(e);
    }
    for tag in manifest.images.values() {
        if !engine.has_image(tag).await {
            task.fail("incomplete");
            return Err(broken(
                path,
                format!("the engine lacks {tag} after loading it"),
            ));
        }
    }
    task.done(format!("{} images loaded", manifest.images.len()));
    if let Ok(root) = images::workspace() {
        record(&root, &manifest)?;
    }
    Ok(manifest)
}

/// Reads the archive: its manifest first, then `images.tar` into `images_tar`
/// while hashing it. Fails, naming the problem, on anything else.
fn unpack(path: &Path, images_tar: &Path) -> Result<Manifest> {
    let file = std::fs::File::open(path).map_err(|e| broken(path, e.to_string()))?;
    let mut archive = tar::Archive::new(file);
    let not_ours = |why: &str| broken(path, format!("not a metrtest image archive: {why}"));
    let mut entries = archive
        .entries()
        .map_err(|e| not_ours(&format!("not a tar file ({e})")))?;
    let mut first = entries
        .next()
        .ok_or_else(|| not_ours("it is empty"))?
        .map_err(|e| not_ours(&format!("not a tar file ({e})")))?;
    if first.path().ok().as_deref() != Some(Path::new(MANIFEST)) {
        return Err(not_ours(&format!("its first entry is not {MANIFEST}")));
    }
    let mut json = Vec::new();
    first
        .read_to_end(&mut json)
        .map_err(|e| broken(path, format!("{MANIFEST}: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| not_ours(&format!("{MANIFEST} does not read as one ({e})")))?;
    if manifest.format != FORMAT {
        return Err(broken(
            path,
            format!(
                "format {:?}, this metrtest reads {FORMAT:?}",
                manifest.format
            ),
        ));
    }
    let mut found = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| broken(path, format!("cut short or corrupt: {e}")))?;
        let name = entry.path().map(|p| p.into_owned()).unwrap_or_default();
        if name == Path::new(IMAGES) {
            found = Some(
                copy_hashing(&mut entry, images_tar)
                    .map_err(|e| broken(path, format!("{IMAGES}: cut short or corrupt ({e})")))?,
            );
        }
    }
    let (sha256, bytes) = found.ok_or_else(|| broken(path, format!("it holds no {IMAGES}")))?;
    if sha256 != manifest.images_sha256 || bytes != manifest.images_bytes {
        return Err(broken(
            path,
            format!(
                "corrupt: {IMAGES} has SHA-256 {sha256} ({bytes} bytes), the manifest says {} ({} bytes)",
                manifest.images_sha256, manifest.images_bytes
            ),
        ));
    }
    Ok(manifest)
}

fn copy_hashing(from: &mut impl Read, to: &Path) -> std::io::Result<(String, u64)> {
    let mut out = std::fs::File::create(to)?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
        out.write_all(&buffer[..n])?;
        bytes += n as u64;
    }
    out.sync_all()?;
    Ok((hex(&hash.finalize()), bytes))
}

fn record(root: &Path, manifest: &Manifest) -> Result<()> {
    let path = root.join(RECORD);
    let io = EngineError::io(format!("record the loaded images in {}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let json = serde_json::to_vec_pretty(manifest).expect("a manifest serialises");
    std::fs::write(&path, json).map_err(EngineError::io(format!("write {}", path.display())))
}

/// What `loaded` found, worked out once per process: it reads the record,
/// asks git twice and inspects every tag, and a run asks for the stack's
/// images and again for each helper's.
static LOADED: tokio::sync::OnceCell<Option<Manifest>> = tokio::sync::OnceCell::const_new();

/// The loaded images, when the last load in this workspace was of its
/// current commit, neither tree had changes, and the engine has them all:
/// then nothing needs building. Announced once, when first found.
pub async fn loaded(engine: &Client, progress: &Progress) -> Option<Manifest> {
    LOADED
        .get_or_init(|| async {
            let manifest = find_loaded(engine, progress).await?;
            let short: String = manifest
                .commit
                .iter()
                .flat_map(|c| c.chars().take(12))
                .collect();
            progress.info(format!(
                "images: using the {} loaded for commit {short}: nothing to build",
                manifest.images.len()
            ));
            Some(manifest)
        })
        .await
        .clone()
}

async fn find_loaded(engine: &Client, progress: &Progress) -> Option<Manifest> {
    let root = images::workspace().ok()?;
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(root.join(RECORD)).ok()?).ok()?;
    let (commit, dirty) = git_state(&root);
    if manifest.dirty || dirty || commit.is_none() || manifest.commit != commit {
        progress.debug("loaded images: not of this commit on a clean tree; building");
        return None;
    }
    for tag in manifest.images.values() {
        if !engine.has_image(tag).await {
            progress.debug(format!(
                "loaded images: {tag} is not on the engine; building"
            ));
            return None;
        }
    }
    Some(manifest)
}

/// The stack's images from a load, for the default choice.
pub async fn loaded_set(
    engine: &Client,
    choice: &ImageChoice,
    progress: &Progress,
) -> Option<ImageSet> {
    if *choice != ImageChoice::default() {
        return None;
    }
    loaded(engine, progress).await?.set()
}

/// A helper's image (`reaper`, `faultproxy`) from a load.
pub async fn loaded_helper(engine: &Client, role: &str, progress: &Progress) -> Option<String> {
    loaded(engine, progress).await?.images.get(role).cloned()
}

/// The workspace's commit and whether its tracked files changed; no commit
/// when it is not a git checkout (or git is missing).
fn git_state(root: &Path) -> (Option<String>, bool) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_none_or(|changes| !changes.is_empty());
    (commit, dirty)
}

/// A scratch file beside `path`, unique to this process.
fn beside(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{what}-{}.partial", std::process::id()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
