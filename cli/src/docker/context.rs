//! In-memory build contexts: a tar of exactly the files an image needs.

use std::path::Path;

use sha2::{Digest, Sha256};

/// A build context being assembled, with a content hash for tagging.
pub struct Context {
    tar: tar::Builder<Vec<u8>>,
    hash: Sha256,
    pub size: u64,
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
        let data = std::fs::read(source).map_err(named)?;
        let mode = std::fs::metadata(source)
            .map_err(named)?
            .permissions()
            .mode()
            & 0o7777;
        self.add_bytes(path, mode, &data)
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
