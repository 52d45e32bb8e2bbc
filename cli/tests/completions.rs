//! `metrtest completions SHELL` and `metrtest man`: generated from the argument
//! definitions, with no engine involved.

mod support;

use support::metrtest;

fn output(args: &[&str]) -> String {
    let out = metrtest()
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("run metrtest");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn each_shells_completions_know_run_and_its_partition_flag() {
    for shell in ["bash", "zsh", "fish"] {
        let script = output(&["completions", shell]);
        assert!(script.contains("run"), "{shell}: {script}");
        assert!(
            script.contains("--partition") || script.contains("partition"),
            "{shell}"
        );
        assert!(
            script.contains("--retries") || script.contains("retries"),
            "{shell}"
        );
    }
}

#[test]
fn the_man_page_on_stdout_lists_the_commands() {
    let page = output(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH metrtest 1"),
        "{page}"
    );
    assert!(page.contains("run"), "{page}");
    assert!(page.contains("completions"), "{page}");
}

#[test]
fn man_with_a_folder_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("man1");
    output(&["man", "--dir", target.to_str().unwrap()]);
    let run = std::fs::read_to_string(target.join("metrtest-run.1")).expect("metrtest-run.1");
    assert!(run.contains(".TH metrtest-run 1"), "{run}");
    assert!(run.contains("partition"), "{run}");
    assert!(target.join("metrtest.1").is_file());
    assert!(!target.join("metrtest-help.1").exists());
}

#[test]
fn a_reader_that_stops_early_is_no_crash() {
    use std::process::Stdio;
    for args in [&["validate", "scenarios/"][..], &["man"][..]] {
        let mut child = metrtest()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before metrtest writes: its write meets a closed pipe.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
