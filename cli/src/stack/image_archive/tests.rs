use super::*;

fn manifest(images_tar: &[u8]) -> Manifest {
    Manifest {
        format: FORMAT.into(),
        commit: Some("abc".into()),
        dirty: false,
        metrtest_version: "0.1.0".into(),
        images: BTreeMap::from([("api".into(), "metrtest/api:x".into())]),
        images_sha256: hex(&Sha256::digest(images_tar)),
        images_bytes: images_tar.len() as u64,
    }
}

fn archive(dir: &Path, entries: &[(&str, &[u8])]) -> PathBuf {
    let path = dir.join("images.metrtest.tar");
    let mut tar = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (name, data) in entries {
        append_bytes(&mut tar, name, data, 0o644).unwrap();
    }
    tar.finish().unwrap();
    path
}

#[test]
fn a_whole_archive_unpacks_to_its_images_tar() {
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::to_vec(&manifest(b"layers")).unwrap();
    let path = archive(
        dir.path(),
        &[(MANIFEST, &json), (IMAGES, b"layers"), (BINARY, b"elf")],
    );
    let out = dir.path().join("out.tar");
    assert_eq!(unpack(&path, &out).unwrap(), manifest(b"layers"));
    assert_eq!(std::fs::read(&out).unwrap(), b"layers");
}

#[test]
fn a_corrupt_or_foreign_archive_is_refused_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tar");
    let refused = |path: &Path| unpack(path, &out).unwrap_err().to_string();
    let json = serde_json::to_vec(&manifest(b"layers")).unwrap();

    let changed = archive(dir.path(), &[(MANIFEST, &json), (IMAGES, b"lay3rs")]);
    assert!(
        refused(&changed).contains("corrupt: images.tar has SHA-256"),
        "{}",
        refused(&changed)
    );

    let foreign = archive(dir.path(), &[("repositories", b"{}"), (IMAGES, b"layers")]);
    assert!(
        refused(&foreign)
            .contains("not a metrtest image archive: its first entry is not manifest.json")
    );

    let without = archive(dir.path(), &[(MANIFEST, &json)]);
    assert!(refused(&without).ends_with("it holds no images.tar"));

    let mut newer = manifest(b"layers");
    newer.format = "metrtest-images/9".into();
    let newer = serde_json::to_vec(&newer).unwrap();
    let newer = archive(dir.path(), &[(MANIFEST, &newer), (IMAGES, b"layers")]);
    assert!(refused(&newer).contains("this metrtest reads \"metrtest-images/1\""));

    let text = dir.path().join("notes.txt");
    std::fs::write(
        &text,
        "not a tar at all, just some words that go on for a while",
    )
    .unwrap();
    assert!(
        refused(&text).contains("not a metrtest image archive"),
        "{}",
        refused(&text)
    );
}

#[test]
fn an_archive_cut_short_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::to_vec(&manifest(&[7; 4096])).unwrap();
    let path = archive(dir.path(), &[(MANIFEST, &json), (IMAGES, &[7; 4096])]);
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..2048]).unwrap();
    let why = unpack(&path, &dir.path().join("out.tar"))
        .unwrap_err()
        .to_string();
    assert!(
        why.contains("images.tar") || why.contains("cut short"),
        "{why}"
    );
}
