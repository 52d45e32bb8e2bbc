//! `metrtest validate` on hostile files: huge, endless, looping, binary. Each is
//! refused promptly with exit 2 and a message, never a hang or a crash.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `metrtest validate PATH...`, killing it if it takes more than 20 s.
fn validate(paths: &[&Path]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .arg("validate")
        .args(paths)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run metrtest");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait for metrtest").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("metrtest validate {paths:?} hung for 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("metrtest output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    let (code, _, stderr) = validate(&[&file]);
    assert_eq!(code, 2, "{}", &stderr[..stderr.len().min(2000)]);
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
    let (code, _, stderr) = validate(&[&file]);
    assert_eq!(code, 2, "{stderr}");
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

    let (code, _, stderr) = validate(&[dir.path()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("zero.yaml"), "{stderr}");
    assert!(stderr.contains("fifo.yaml"), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");

    for named in [&fifo, &dir.path().join("zero.yaml")] {
        let (code, _, stderr) = validate(&[named]);
        assert_eq!(code, 2, "{named:?}: {stderr}");
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

    let (code, stdout, stderr) = validate(&[&scenarios, &scenarios.join("good.yaml"), &scenarios]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 scenario(s)"), "{stdout}");
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
    let (code, _, stderr) = validate(&[&binary]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("binary.yaml:1:"), "{stderr}");
    let (code, _, stderr) = validate(&[&latin1]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("latin1.yaml:1:10"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
}
