//! `metrtest validate` on hostile files: huge, endless, looping, binary. Each is
//! refused promptly with exit 2 and a message, never a hang or a crash.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Ran, RunExt, without_engine};

/// Runs `metrtest validate PATH...`, killing it if it takes more than 20 s.
fn validate(paths: &[&Path]) -> Ran {
    without_engine()
        .arg("validate")
        .args(paths)
        .ran_within(Duration::from_secs(20))
}

const GOOD: &str = "name: fine\nsteps:\n  - sleep: 1ms\n";

#[test]
fn a_mistake_past_column_65535_is_shown_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wide.yaml");
    let long = "x".repeat(70_000);
    std::fs::write(
        &file,
        format!("name: wide\nsteps:\n  - {{ name: \"{long}\", sleep: 1s, bogus: 1 }}\n"),
    )
    .unwrap();
    let ran = validate(&[&file]);
    let stderr = &ran.assert_code(2).stderr;
    assert!(
        !stderr.contains("panicked"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(
        stderr.contains("wide.yaml:3:"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(
        stderr.contains("bogus"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(
        stderr.len() < 5_000,
        "the long line is cut: {} bytes",
        stderr.len()
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.yaml");
    let steps = "  - sleep: 1ms\n".repeat(80_000);
    std::fs::write(&file, format!("name: huge\nsteps:\n{steps}")).unwrap();
    let started = Instant::now();
    let ran = validate(&[&file]);
    let stderr = &ran.assert_code(2).stderr;
    assert!(stderr.contains("huge.yaml"), "{stderr}");
    assert!(stderr.contains("1 MiB"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn devices_and_fifos_named_yaml_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.yaml")).unwrap();
    let fifo = dir.path().join("fifo.yaml");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);

    let ran = validate(&[dir.path()]);
    let stderr = &ran.assert_code(2).stderr;
    assert!(stderr.contains("zero.yaml"), "{stderr}");
    assert!(stderr.contains("fifo.yaml"), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");

    for named in [&fifo, &dir.path().join("zero.yaml")] {
        let ran = validate(&[named]);
        let stderr = &ran.assert_code_for(2, named.display()).stderr;
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
}

#[test]
fn symlink_loops_and_repeated_paths_load_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = dir.path().join("scenarios");
    std::fs::create_dir(&scenarios).unwrap();
    std::fs::write(scenarios.join("good.yaml"), GOOD).unwrap();
    std::os::unix::fs::symlink(&scenarios, scenarios.join("loop")).unwrap();
    std::os::unix::fs::symlink(scenarios.join("good.yaml"), scenarios.join("alias.yaml")).unwrap();

    let ran = validate(&[&scenarios, &scenarios.join("good.yaml"), &scenarios]);
    ran.assert_code(0);
    assert!(ran.stdout.contains("1 scenario(s)"), "{}", ran.stdout);
}

#[test]
fn binary_and_invalid_utf8_files_are_errors_with_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.yaml");
    std::fs::write(
        &binary,
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x03\x00>\x00",
    )
    .unwrap();
    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(&latin1, b"name: caf\xe9\nsteps:\n  - sleep: 1ms\n").unwrap();
    let ran = validate(&[&binary]);
    let stderr = &ran.assert_code(2).stderr;
    assert!(stderr.contains("binary.yaml:1:"), "{stderr}");
    let ran = validate(&[&latin1]);
    let stderr = &ran.assert_code(2).stderr;
    assert!(stderr.contains("latin1.yaml:1:10"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
}
