//! Shell completion and `metrtest man`, with no engine reachable: the
//! registration, the candidates a TAB gets (asked the way the bash
//! registration asks: `COMPLETE=bash` and clap's `_CLAP_COMPLETE_*`
//! variables), and the man pages.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Ran, RunExt, metrtest, without_engine};

/// What `metrtest ARGS` prints on stdout, run with no engine; it must exit 0.
fn output(args: &[&str]) -> String {
    let ran = without_engine().args(args).ran();
    ran.assert_code_for(0, format!("{args:?}"));
    ran.stdout
}

/// The candidates for the last word of `line` (`metrtest logs g`; a trailing
/// space asks for the next word), completed in `dir` with no engine.
fn tab_in(dir: &Path, line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let ran = without_engine()
        .current_dir(dir)
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_IFS", "\n")
        .arg("--")
        .args(&words)
        .ran();
    ran.assert_code_for(0, line);
    ran.stdout.lines().map(str::to_owned).collect()
}

/// [`tab_in`] the workspace root.
fn tab(line: &str) -> Vec<String> {
    tab_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."), line)
}

#[test]
fn complete_bash_prints_the_registration_that_completions_bash_prints() {
    let registration = without_engine().env("COMPLETE", "bash").ran();
    registration.assert_code(0);
    assert_eq!(registration.stdout, output(&["completions", "bash"]));
    assert!(
        registration
            .stdout
            .contains("-F _clap_complete_metrtest metrtest\n"),
        "{}",
        registration.stdout
    );
    // Called back by the path it was started by, as scripts/metrtest starts it.
    let binary = env!("CARGO_BIN_EXE_metrtest");
    assert!(
        registration.stdout.contains(&format!("\"{binary}\" --")),
        "{}",
        registration.stdout
    );
}

#[test]
fn started_by_a_relative_path_the_registration_calls_back_the_absolute_one() {
    let binary = Path::new(env!("CARGO_BIN_EXE_metrtest"));
    let target = binary.parent().unwrap().parent().unwrap();
    let folder = binary.parent().unwrap().file_name().unwrap();
    let relative = std::process::Command::new(Path::new(".").join(folder).join("metrtest"))
        .current_dir(target)
        .env("COMPLETE", "bash")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .ran();
    relative.assert_code(0);
    assert!(
        relative
            .stdout
            .contains(&format!("\"{}\" --", binary.display())),
        "{}",
        relative.stdout
    );
}

#[test]
fn the_registration_sourced_in_bash_completes_scripts_metrtest_too() {
    let registration = output(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("registration.bash");
    std::fs::write(&script, registration).unwrap();
    // What bash does on `scripts/metrtest logs g<TAB>` once it has found the
    // function registered for `metrtest` (a path's last part counts).
    let probe = format!(
        r#"source {}
complete -p metrtest
COMP_WORDS=(scripts/metrtest logs g); COMP_CWORD=2; COMP_TYPE=9
_clap_complete_metrtest scripts/metrtest g logs
printf 'reply:%s\n' "${{COMPREPLY[@]}}""#,
        script.display()
    );
    let ran = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .ran();
    ran.assert_code(0);
    assert!(
        ran.stdout.contains("_clap_complete_metrtest metrtest"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("reply:gometr\n"), "{}", ran.stdout);
}

#[test]
fn logs_completes_the_default_stacks_services() {
    let values: Vec<String> = tab("metrtest logs ")
        .into_iter()
        .filter(|c| !c.starts_with('-'))
        .collect();
    assert_eq!(values, ["postgres", "gometr", "migrate", "checker", "api"]);
    assert_eq!(tab("metrtest logs ch"), ["checker"]);
    // With --run and no engine to ask, the default stack's names still come.
    assert_eq!(tab("metrtest logs --run abc12345 g"), ["gometr"]);
    assert_eq!(tab("metrtest logs --run=abc12345 a"), ["api"]);
}

#[test]
fn with_no_engine_a_run_id_completes_to_nothing_at_once() {
    for line in [
        "metrtest down --run ",
        "metrtest logs --run ",
        "metrtest run scenarios --stack ",
    ] {
        let started = Instant::now();
        assert_eq!(tab(line), Vec::<String>::new(), "{line}");
        assert!(started.elapsed() < Duration::from_secs(3), "{line}");
    }
}

#[test]
fn scenario_paths_complete_to_folders_and_yaml_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("suite")).unwrap();
    for file in ["suite/a.yaml", "suite/b.yml", "suite/notes.txt", "top.yaml"] {
        std::fs::write(dir.path().join(file), "").unwrap();
    }
    assert_eq!(tab_in(dir.path(), "metrtest run su"), ["suite/"]);
    assert_eq!(
        tab_in(dir.path(), "metrtest validate suite/"),
        ["suite/a.yaml", "suite/b.yml"]
    );
    assert_eq!(
        tab_in(dir.path(), "metrtest run --retries 1 t"),
        ["top.yaml"]
    );
    assert_eq!(
        tab("metrtest run cli/tests/fixtures/fla"),
        ["cli/tests/fixtures/flaky/"]
    );
}

#[test]
fn subcommands_and_flags_complete_as_before() {
    assert!(tab("metrtest d").contains(&"down".to_owned()));
    assert!(tab("metrtest run --par").contains(&"--partition".to_owned()));
    assert!(tab("metrtest down --a").contains(&"--all".to_owned()));
}

#[test]
fn each_shells_static_script_knows_run_and_its_partition_flag() {
    for shell in ["bash", "zsh", "fish"] {
        let script = output(&["completions", shell, "--static"]);
        assert!(script.contains("run"), "{shell}: {script}");
        assert!(script.contains("partition"), "{shell}");
        assert!(script.contains("retries"), "{shell}");
    }
}

#[test]
fn each_shells_registration_registers_metrtest() {
    for (shell, registers) in [
        ("bash", "_clap_complete_metrtest metrtest"),
        ("zsh", "compdef _clap_dynamic_completer_metrtest metrtest"),
        (
            "fish",
            "complete --keep-order --exclusive --command metrtest",
        ),
    ] {
        let script = output(&["completions", shell]);
        assert!(script.contains(registers), "{shell}: {script}");
        assert!(
            script.contains(&format!("COMPLETE=\"{shell}\""))
                || script.contains(&format!("COMPLETE={shell} ")),
            "{shell}: {script}"
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
