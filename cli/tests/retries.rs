//! `run --retries N` on the real engine: a scenario that fails on its first
//! run and passes on retry 1 is flaky — in the live lines, the table, the
//! summary, JSON, JUnit (`flakyFailure`) and GitHub annotations, each calling
//! the runs "first run" and "retry 1" (never "attempt", a step's poll) — and
//! exits 0 unless `--flaky-fails`.

mod support;

use serde_json::Value;
use support::{Ran, RunExt, fixtures, metrtest};

/// `run fixtures/flaky --retries 1 EXTRA`, outside GitHub Actions.
fn run_flaky(extra: &[&str]) -> Ran {
    metrtest()
        .arg("run")
        .arg(fixtures("flaky"))
        .args(["--retries", "1"])
        .args(extra)
        .env_remove("GITHUB_ACTIONS")
        .ran()
}

#[test]
fn a_scenario_passing_on_retry_1_is_flaky_everywhere_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let ran = run_flaky(&[
        "--format",
        "json",
        "--annotations",
        "github",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let doc: Value = ran.assert_code(0).json();
    assert_eq!(doc["totals"]["flaky"], 1, "{doc:#}");
    assert_eq!(doc["totals"]["failed"], 0);
    let scenario = &doc["scenarios"][0];
    assert_eq!(scenario["outcome"], "passed");
    assert_eq!(scenario["attempts"], 2, "the key keeps its name: runs made");
    assert_eq!(scenario["retries"], 1);
    let first = &scenario["earlier_attempts"][0];
    assert_eq!(first["attempt"], 1);
    assert_eq!(first["run"], 1);
    assert_eq!(first["outcome"], "failed");
    assert!(
        first["failure"]
            .as_str()
            .unwrap()
            .contains("an earlier run had left the mark"),
        "{first:#}"
    );

    for said in [
        "failed on its first run; running it again as retry 1",
        "scenario fixture - fails on its first run and passes on retry 1 (retry 1)",
        "flaky (passed on retry 1)",
        "is flaky::failed on its first run, passed on retry 1:",
    ] {
        assert!(ran.stderr.contains(said), "{said:?} in {}", ran.stderr);
    }
    let about_runs = ran
        .stderr
        .lines()
        .filter(|l| l.contains("retry") || l.contains("first run"));
    assert!(
        about_runs.clone().all(|l| !l.contains("attempt")),
        "{:?}",
        about_runs.collect::<Vec<_>>()
    );
    assert!(
        ran.stderr.contains("0 passed, 0 failed, 1 flaky"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("::warning file=") && ran.stderr.contains("is flaky::"),
        "{}",
        ran.stderr
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<flakyFailure").count(), 1, "{xml}");
    assert!(!xml.contains("<failure"), "the testcase passed: {xml}");
    assert!(xml.contains("an earlier run had left the mark"), "{xml}");
    assert!(xml.contains(r#"message="first run: step 3"#), "{xml}");
}

#[test]
fn with_flaky_fails_a_flaky_scenario_exits_1() {
    let ran = run_flaky(&["--flaky-fails"]);
    ran.assert_code(1);
    assert!(
        ran.stdout.contains("0 passed, 0 failed, 1 flaky"),
        "{}",
        ran.stdout
    );
}
