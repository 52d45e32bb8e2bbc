//! `metrtest report merge`, run as CI runs it after its `--partition`
//! shards: on the JSON reports of two shards kept in tests/fixtures/reports/
//! (one with a failure, one with a flaky scenario), from the workspace root
//! where the shards ran. No engine needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR"));
    cli.parent().unwrap_or(cli).to_path_buf()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name)
}

/// `metrtest report merge ARGS...` from the workspace root, outside GitHub Actions.
fn merge<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .args(["report", "merge"])
        .args(args)
        .current_dir(workspace())
        .env_remove("GITHUB_ACTIONS")
        .env("NO_COLOR", "1")
        .output()
        .expect("metrtest runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn two_shards_add_up_to_one_run_and_a_failure_exits_1_with_junit_written() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("merged.xml");
    let out = merge([
        fixture("shard-1.json"),
        fixture("shard-2.json"),
        "--junit".into(),
        junit.clone(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.lines().last(),
        Some("2 passed, 1 failed, 1 flaky"),
        "the total line of both shards, last, as run prints it: {stdout}"
    );
    for name in [
        "fixture - expects 404 where the API answers 200",
        "fixture - fails on its first run and passes on retry 1",
        "fixture - the API answers its health check",
        "fixture - sleeps for a minute, to be killed meanwhile",
    ] {
        assert!(stdout.contains(name), "{name} in the table: {stdout}");
    }
    assert!(
        stderr.contains(
            "merged 2 reports (4 scenarios): 75.3 s wall time (the longest shard), 105.5 s over all shards"
        ),
        "{stderr}"
    );

    let xml = std::fs::read_to_string(&junit).expect("the JUnit file is written");
    let report = quick_junit::Report::deserialize_from_str(&xml).expect("JUnit that parses");
    assert_eq!(report.tests, 4, "{xml}");
    assert_eq!(report.failures, 1, "{xml}");
    assert!(
        xml.contains("5 |       status: 404"),
        "the failure shows its source line, read from the scenario file again: {xml}"
    );
    assert!(
        xml.contains("as curl: curl &apos;http://127.0.0.1:49153/api/v1/checks?limit=1&apos;")
            || xml.contains("as curl: curl 'http://127.0.0.1:49153/api/v1/checks?limit=1'"),
        "the request to paste: {xml}"
    );
}

#[test]
fn the_merged_json_report_is_the_shards_scenarios_with_their_times() {
    let out = merge([
        fixture("shard-2.json"),
        fixture("shard-1.json"),
        "--format".into(),
        "json".into(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(
        doc["totals"],
        serde_json::json!({"passed": 2, "failed": 1, "flaky": 1, "skipped": 0})
    );
    assert_eq!(doc["duration"], 75_300, "the longest shard's wall time");
    assert_eq!(doc["duration_sum"], 105_500);
    assert_eq!(doc["shards"][0]["scenarios"], 2);
    let files: Vec<&str> = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["file"].as_str().unwrap())
        .collect();
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted, "in file order, whatever the shards' order");
    assert!(
        text(&out.stderr).ends_with("2 passed, 1 failed, 1 flaky\n"),
        "the table on stderr"
    );
}

#[test]
fn a_truncated_report_is_exit_3_naming_the_file_and_where_it_ends() {
    let out = merge([fixture("shard-1.json"), fixture("truncated.json")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("truncated.json is not a metrtest JSON report (`run --format json`): "),
        "{stderr}"
    );
    assert!(
        stderr.contains("EOF while parsing a value at line 26 column 11"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing merged: {}",
        text(&out.stdout)
    );
}

#[test]
fn a_junit_file_given_by_mistake_is_exit_3_saying_it_is_not_json() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("shard.xml");
    std::fs::write(&junit, "<?xml version=\"1.0\"?>\n<testsuites/>\n").unwrap();
    let out = merge([junit.clone()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is not a metrtest JSON report (`run --format json`): expected value at line 1 column 1",
            junit.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_shard_given_twice_is_exit_3_naming_a_scenario_in_both() {
    let out = merge([fixture("shard-1.json"), fixture("shard-1.json")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "scenario \"fixture - fails on its first run and passes on retry 1\" \
             (cli/tests/fixtures/flaky/passes_on_retry.yaml) is in two reports"
        ),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_is_exit_3_naming_it() {
    let out = merge(["no/such/shard.json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("read no/such/shard.json: "), "{stderr}");
}

#[test]
fn a_shard_with_nothing_to_run_writes_a_report_that_merges() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-shard.json");
    let shard = Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .args([
            "run",
            "cli/tests/fixtures/passing",
            "--partition",
            "count:2/2",
        ])
        .args(["--format", "json"])
        .current_dir(workspace())
        .output()
        .expect("metrtest runs");
    assert_eq!(shard.status.code(), Some(0), "{}", text(&shard.stderr));
    assert!(
        text(&shard.stderr).contains("no scenario in --partition count:2/2: nothing to run"),
        "{}",
        text(&shard.stderr)
    );
    std::fs::write(&empty, &shard.stdout).unwrap();

    let out = merge([fixture("shard-1.json").as_path(), empty.as_path()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().last(),
        Some("1 passed, 0 failed, 1 flaky")
    );
}
