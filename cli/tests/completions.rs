//! `metrtest completions SHELL` and `metrtest man`: generated from the argument
//! definitions, with no engine involved.

mod support;

use support::{Ran, RunExt, metrtest, without_engine};

/// What `metrtest ARGS` prints on stdout, run with no engine; it must exit 0.
fn output(args: &[&str]) -> String {
    let ran = without_engine().args(args).ran();
    ran.assert_code_for(0, format!("{args:?}"));
    ran.stdout
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
        let ran = Ran::from(child.wait_with_output().unwrap());
        ran.assert_code_for(0, format!("{args:?}"));
        assert!(!ran.stderr.contains("panicked"), "{args:?}: {}", ran.stderr);
    }
}
