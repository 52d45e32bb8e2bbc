//! In-memory build contexts: a tar of exactly the files an image needs.

use std::path::Path;

use sha2::{Digest, Sha256};

/// A build context being assembled, with a content hash for tagging.
pub struct Context {
    tar: tar::Builder<Vec<u8>>,
    hash: Sha256,
    pub size: u64,
    /// Host files are hashed by size, modification time and mode, and kept
    /// out of the tar: a tag that is cheap to recompute ([`Context::fingerprint`]).
    metadata_only: bool,
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    pub fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        // Linked binaries are sparse files; the engine rejects sparse tar entries
        // ("unhandled tar header type 83"), so write them out in full.
        tar.sparse(false);
        tar.mode(tar::HeaderMode::Deterministic);
        Context {
            tar,
            hash: Sha256::new(),
            size: 0,
            metadata_only: false,
        }
    }

    /// A context that only computes a tag: host files count by their size,
    /// modification time and mode, not their bytes, and nothing is packed.
    /// For large contexts of files that change only with their metadata (a
    /// host's installed packages), where reading every byte on every run
    /// would cost more than the build it may avoid.
    pub fn fingerprint() -> Self {
        Context {
            metadata_only: true,
            ..Context::new()
        }
    }

    /// Adds in-memory content at `path` inside the context.
    pub fn add_bytes(&mut self, path: &str, mode: u32, data: &[u8]) -> std::io::Result<()> {
        self.hash.update(path.as_bytes());
        self.hash.update(mode.to_le_bytes());
        self.hash.update((data.len() as u64).to_le_bytes());
        self.hash.update(data);
        self.size += data.len() as u64;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        self.tar.append_data(&mut header, path, data)
    }

    /// Adds a host file (symlinks resolved) at `path` inside the context.
    pub fn add_file(&mut self, path: &str, source: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", source.display()));
        let meta = std::fs::metadata(source).map_err(named)?;
        let mode = meta.permissions().mode() & 0o7777;
        if self.metadata_only {
            self.hash_metadata(path, &meta);
            return Ok(());
        }
        let data = std::fs::read(source).map_err(named)?;
        self.add_bytes(path, mode, &data)
    }

    /// Whether this context only computes a tag ([`Context::fingerprint`]).
    pub fn is_fingerprint(&self) -> bool {
        self.metadata_only
    }

    /// Counts a host path's metadata (size, modification time, mode; a
    /// missing path counts as such) in a fingerprint's tag.
    pub fn add_metadata(&mut self, source: &Path) -> std::io::Result<()> {
        let path = source.display().to_string();
        match std::fs::metadata(source) {
            Ok(meta) => self.hash_metadata(&path, &meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.hash.update(path.as_bytes());
                self.hash.update(b"missing");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn hash_metadata(&mut self, path: &str, meta: &std::fs::Metadata) {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        self.hash.update(path.as_bytes());
        self.hash
            .update((meta.permissions().mode() & 0o7777).to_le_bytes());
        self.hash.update(meta.len().to_le_bytes());
        self.hash.update(meta.mtime().to_le_bytes());
        self.hash.update(meta.mtime_nsec().to_le_bytes());
        self.size += meta.len();
    }

    /// Adds a host directory tree, skipping entries `skip` rejects.
    pub fn add_tree(
        &mut self,
        path: &str,
        source: &Path,
        skip: &dyn Fn(&Path) -> bool,
    ) -> std::io::Result<()> {
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", source.display()));
        let mut entries: Vec<_> = std::fs::read_dir(source)
            .map_err(named)?
            .collect::<Result<_, _>>()
            .map_err(named)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let host = entry.path();
            if skip(&host) {
                continue;
            }
            let inner = format!("{path}/{}", entry.file_name().to_string_lossy());
            let meta = std::fs::metadata(&host)?;
            if meta.is_dir() {
                self.add_tree(&inner, &host, skip)?;
            } else if meta.is_file() {
                self.add_file(&inner, &host)?;
            }
        }
        Ok(())
    }

    /// Short content hash, used as the image tag.
    pub fn tag(&self) -> String {
        let digest = self.hash.clone().finalize();
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }

    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        self.tar.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_follows_the_content() {
        let tag = |data: &[u8]| {
            let mut c = Context::new();
            c.add_bytes("a", 0o644, data).unwrap();
            c.tag()
        };
        assert_eq!(tag(b"x"), tag(b"x"));
        assert_ne!(tag(b"x"), tag(b"y"));
    }

    #[test]
    fn a_fingerprint_follows_a_files_metadata_and_packs_nothing() {
        let dir = std::env::temp_dir().join(format!("metrtest-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("lib.so");
        let set = |data: &[u8], secs: i64| {
            std::fs::write(&file, data).unwrap();
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64);
            std::fs::File::options()
                .write(true)
                .open(&file)
                .unwrap()
                .set_modified(time)
                .unwrap();
        };
        let tag = || {
            let mut c = Context::fingerprint();
            c.add_bytes("Dockerfile", 0o644, b"FROM scratch\n").unwrap();
            c.add_file("lib.so", &file).unwrap();
            (c.tag(), c.finish().unwrap().len())
        };
        set(b"abc", 1_000);
        let (first, packed) = tag();
        assert_eq!(tag().0, first, "same metadata, same tag");
        set(b"xyz", 1_000);
        assert_eq!(tag().0, first, "same size and time: the bytes are not read");
        set(b"xyz", 2_000);
        assert_ne!(tag().0, first, "a new modification time is a new tag");
        set(b"abcd", 1_000);
        assert_ne!(tag().0, first, "a new size is a new tag");
        let mut full = Context::new();
        full.add_bytes("Dockerfile", 0o644, b"FROM scratch\n")
            .unwrap();
        full.add_file("lib.so", &file).unwrap();
        assert!(
            packed < full.finish().unwrap().len(),
            "the host file was not packed"
        );
        let folder = |dir: &Path| {
            let mut c = Context::fingerprint();
            c.add_metadata(dir).unwrap();
            c.tag()
        };
        let before = folder(&dir);
        std::fs::File::open(&dir)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(5_000))
            .unwrap();
        assert_ne!(
            folder(&dir),
            before,
            "a folder counts by its modification time"
        );
        assert_ne!(
            folder(&dir.join("missing")),
            before,
            "and a missing one as missing"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_archive_holds_the_files() {
        let mut c = Context::new();
        c.add_bytes("Dockerfile", 0o644, b"FROM scratch\n").unwrap();
        let bytes = c.finish().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["Dockerfile"]);
    }
}
