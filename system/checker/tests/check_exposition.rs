//! `checker check-exposition`, black-box: each input in tests/check_exposition/
//! (`NAME.txt`) sits beside what the command must do with it (`NAME.expected`:
//! optional `args:`, then `exit:`, then `stderr:` lines with `{FILE}` for
//! the path given).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn checker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(args)
        .env_remove("CHECKER_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("the checker binary runs")
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_exposition")
}

struct Expected {
    args: Vec<String>,
    exit: i32,
    stderr: String,
}

fn expected(path: &Path) -> Expected {
    let text = std::fs::read_to_string(path).unwrap();
    let mut expected = Expected {
        args: Vec::new(),
        exit: -1,
        stderr: String::new(),
    };
    let mut lines = text.lines();
    for line in lines.by_ref() {
        if let Some(args) = line.strip_prefix("args: ") {
            expected.args = args.split(' ').map(str::to_owned).collect();
        } else if let Some(code) = line.strip_prefix("exit: ") {
            expected.exit = code.parse().unwrap();
        } else if line == "stderr:" {
            break;
        }
    }
    expected.stderr = lines.map(|l| format!("{l}\n")).collect();
    expected
}

#[test]
fn every_case_exits_and_reports_as_expected() {
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 5, "the cases are there");
    for input in inputs {
        let expect = expected(&input.with_extension("expected"));
        let file = input.to_str().unwrap();
        let mut args = vec!["check-exposition"];
        args.extend(expect.args.iter().map(String::as_str));
        args.push(file);
        let output = checker(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr,
            expect.stderr.replace("{FILE}", file),
            "{}: stderr",
            input.display()
        );
        assert_eq!(
            output.status.code(),
            Some(expect.exit),
            "{}: exit",
            input.display()
        );
        assert!(
            output.stdout.is_empty(),
            "{}: nothing on stdout",
            input.display()
        );
    }
}

#[test]
fn several_files_report_each_failing_one_and_exit_1() {
    let dir = cases_dir();
    let good = dir.join("valid_openmetrics.txt");
    let bad = dir.join("histogram_count.txt");
    let missing = dir.join("no_such_file.txt");
    let paths = [&good, &bad, &missing].map(|p| p.to_str().unwrap().to_owned());
    let output = checker(&["check-exposition", &paths[0], &paths[1], &paths[2]]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{}:4:1: ", paths[1])),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{}: cannot read: ", paths[2])),
        "{stderr}"
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let output = checker(&["check-exposition", "--format", "json", "x"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("expected openmetrics or text"), "{stderr}");
}

#[test]
fn the_help_documents_the_default_format_and_the_exit_codes() {
    let output = checker(&["check-exposition", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("last line is \"# EOF\""), "{help}");
    assert!(help.contains("exits 1"), "{help}");
}
