//! `metrtest images --save` and `--load` on the real engine: one archive
//! with every image a run needs, checked whole before the engine sees it.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};

use support::*;

/// Removes the record of a load when the test ends, so that later runs of
/// this workspace build as before.
struct ForgetLoad(PathBuf);

impl Drop for ForgetLoad {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            if name == "manifest.json" {
                e.read_to_end(&mut data).unwrap();
            }
            (name, data)
        })
        .collect()
}

#[test]
fn images_travel_in_one_archive_that_is_checked_whole_before_loading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let _forget = ForgetLoad(root.join("target/metrtest/loaded-images.json"));
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("images.tar");
    metrtest()
        .args(["images", "--save"])
        .arg(&archive)
        .ran()
        .assert_code(0);

    let found = entries(&archive);
    let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["manifest.json", "images.tar", "bin/metrtest"]);
    let manifest: serde_json::Value = serde_json::from_slice(&found[0].1).unwrap();
    assert_eq!(manifest["format"], "metrtest-images/1");
    let roles: Vec<&str> = manifest["images"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        roles,
        [
            "api",
            "checker",
            "faultproxy",
            "gometr",
            "postgres",
            "reaper"
        ]
    );

    // One byte changed inside the images: refused before anything loads.
    let mut bytes = std::fs::read(&archive).unwrap();
    let images_at = 512 + found[0].1.len().div_ceil(512) * 512 + 512;
    bytes[images_at + 4096] ^= 0xff;
    let corrupt = dir.path().join("corrupt.tar");
    std::fs::write(&corrupt, &bytes).unwrap();
    let ran = metrtest().args(["images", "--load"]).arg(&corrupt).ran();
    let stderr = &ran.assert_code(3).stderr;
    assert!(
        stderr.contains("corrupt: images.tar has SHA-256"),
        "{stderr}"
    );
    // Not ours at all.
    let foreign = dir.path().join("foreign.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&foreign).unwrap());
    tar.append_path_with_name(&corrupt, "repositories").unwrap();
    tar.finish().unwrap();
    let ran = metrtest().args(["images", "--load"]).arg(&foreign).ran();
    let stderr = &ran.assert_code(3).stderr;
    assert!(stderr.contains("not a metrtest image archive"), "{stderr}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")),
        "no scratch file left beside the archives"
    );

    // Loaded over the same tags: safe, and recorded for this workspace.
    let ran = metrtest().args(["images", "--load"]).arg(&archive).ran();
    let stderr = &ran.assert_code(0).stderr;
    assert!(stderr.contains("loaded 6 images"), "{stderr}");
    let clean = std::process::Command::new("git")
        .current_dir(&root)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.is_empty());
    let listed = metrtest().arg("images").ran();
    let stderr = &listed.assert_code(0).stderr;
    // Only a clean tree of the archive's commit takes the loaded images.
    assert_eq!(stderr.contains("nothing to build"), clean, "{stderr}");
}
