//! metrtest against the real Docker engine, black-box: exit codes, output, and
//! no labelled container, network or volume left behind.

mod support;

use std::time::{Duration, Instant};

use support::*;

#[test]
fn failing_fixtures_fail_with_exit_1_and_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let ran = metrtest()
        .arg("run")
        .arg(fixtures("failing"))
        .args(["--format", "json", "--junit"])
        .arg(&junit)
        .ran();
    let stderr = &ran.assert_code(1).stderr;
    let report = ran.json();
    assert_eq!(report["totals"]["failed"], 8, "{report:#}");
    each_failure_is_the_one_kept_beside_its_file(stderr, &report);
    assert_eq!(report["totals"]["passed"], 0);
    each_failure_names_what_failed_and_where(stderr, &report);
    let xml = std::fs::read_to_string(&junit).unwrap();
    service_logs_come_with_every_failure(stderr, &xml);
    assert!(
        stderr.contains("0 passed, 8 failed")
            || ran.stdout.contains("0 passed, 8 failed")
            || stderr.contains("8 failed")
    );
}

/// Each failure names the request, the status, and expected vs actual, at
/// the step's line and column.
fn each_failure_names_what_failed_and_where(stderr: &str, report: &serde_json::Value) {
    let text_of = |name_part: &str| -> String {
        let s = report["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"].as_str().unwrap().contains(name_part))
            .unwrap();
        s.to_string()
    };
    // Each failure names the request, the status, and expected vs actual.
    let status = text_of("expects 404");
    assert!(
        status.contains("status: expected equals 404, actual 200"),
        "{status}"
    );
    assert!(status.contains("GET http://127.0.0.1:"), "{status}");
    // The failed expectation points at its own line, rendered like a load error.
    assert!(
        stderr.contains("wrong_status.yaml:5:7: status did not hold"),
        "{stderr}"
    );
    assert!(stderr.contains("5 |       status: 404"), "{stderr}");
    assert!(
        stderr.contains("  |       ^ expected equals 404, actual 200"),
        "{stderr}"
    );
    // The JSON report names the step's line and column as fields.
    assert!(
        status.contains("\"line\":5") && status.contains("\"column\":7"),
        "{status}"
    );
    let json = text_of("gometr down");
    assert!(
        json.contains("json $.data[0].status: expected equals \\\"down\\\", actual \\\"up\\\""),
        "{json}"
    );
    assert!(
        json.contains("json $.data[0].latency_ms: expected gt 100000"),
        "{json}"
    );
    assert!(json.contains("\"attempts\":"), "{json}");
    assert!(
        json.contains("\"skipped\""),
        "the step after a failure is skipped: {json}"
    );
    let series = text_of("series it does not have");
    assert!(
        series.contains("similar names: checker_samples_written_total"),
        "{series}"
    );
    let sql = text_of("empty checks table");
    assert!(sql.contains("rows 0.n: expected equals 0, actual"), "{sql}");
    let absent = text_of("selects nothing");
    assert!(
        absent.contains("nothing (the path selected no value)"),
        "{absent}"
    );
    assert!(
        !absent.contains("$.nothing_here"),
        "exists: false held and is not reported: {absent}"
    );
    retries_faults_and_logs_are_explained(&text_of, report);
}

/// A retry that `fail_if` stopped early, a link fault in force, a log line
/// not found: each failure says so.
fn retries_faults_and_logs_are_explained(
    text_of: &dyn Fn(&str) -> String,
    report: &serde_json::Value,
) {
    // fail_if ends a 60 s retry as soon as it holds, pointing at its line.
    let early = text_of("fail_if holds");
    assert!(
        early.contains("retry stopped early: fail_if holds"),
        "{early}"
    );
    assert!(early.contains("\"line\":8"), "{early}");
    let took = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().contains("fail_if holds"))
        .and_then(|s| s["duration"].as_u64())
        .expect("a duration");
    assert!(
        took < 30_000,
        "fail_if did not stop the retry early: {took} ms"
    );
    let slow = text_of("slow link");
    assert!(
        slow.contains("json $.data[0].latency_ms: expected lt 200, actual"),
        "a link fault is in force at the next step: {slow}"
    );
    let logs = text_of("log line");
    assert!(logs.contains("expected a line that contains"), "{logs}");
}

/// Service logs come with every failure, in the terminal and the JUnit report.
fn service_logs_come_with_every_failure(stderr: &str, xml: &str) {
    assert!(
        stderr.contains("----- checker (last lines) -----"),
        "{stderr}"
    );
    assert_eq!(
        xml.matches("<testsuite ").count(),
        8,
        "a testsuite per file"
    );
    assert_eq!(xml.matches("<failure").count(), 8);
    assert!(xml.contains("<system-out>"), "logs in system-out");
}

/// What the terminal tells of each failing fixture is kept beside it
/// (`failing/x.yaml` → `failing/x.stderr`) and compared whole, once what
/// varies from run to run is replaced (`support::failures`);
/// `METRTEST_BLESS=1` rewrites the files.
fn each_failure_is_the_one_kept_beside_its_file(stderr: &str, report: &serde_json::Value) {
    let runs: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["stack"].as_str())
        .collect();
    let blocks = failures::failure_blocks(stderr, &runs);
    let dir = fixtures("failing");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut differ = Vec::new();
    for file in files {
        let shown = format!(
            "cli/tests/fixtures/failing/{}",
            file.file_name().unwrap().to_str().unwrap()
        );
        let Some(block) = blocks.get(&shown) else {
            differ.push(format!("{shown}: no failure on stderr"));
            continue;
        };
        differ.extend(expected::differs(&file.with_extension("stderr"), block));
    }
    assert!(
        differ.is_empty(),
        "{}\nstderr:\n{stderr}",
        differ.join("\n")
    );
}

#[test]
fn up_detach_then_down_leaves_nothing() {
    let (run, stdout) = up_detached(&[]);
    let api = url_in(&stdout, &run, "api");
    let health = get_status(&format!("{api}/health"));
    assert_eq!(health, 200, "the printed URL works");
    assert_eq!(leftovers(&run).0, 5, "four services and the reaper");
    assert!(ps().contains(&run));
    down(&run).assert_code(0);
    assert_eq!(leftovers(&run), (0, 0, 0));
}

#[test]
fn sigint_while_starting_tears_everything_down() {
    let (mut child, _lines, run) = up_until("starting stack");
    // Mid-start: the network exists, containers are being created.
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let code = wait(&mut child, Duration::from_secs(60));
    assert_eq!(code, 130, "interrupted runs exit 130");
    assert_eq!(leftovers(&run), (0, 0, 0));
}

#[test]
fn ctrl_c_on_a_running_up_tears_down_and_exits_zero() {
    let (mut child, _lines, run) = up_until("press Ctrl-C");
    assert_eq!(leftovers(&run).0, 5, "four services and the reaper");
    signal(&child, libc::SIGINT);
    let code = wait(&mut child, Duration::from_secs(60));
    assert_eq!(code, 0);
    assert_eq!(leftovers(&run), (0, 0, 0));
}

#[test]
fn no_engine_is_exit_3_within_two_seconds_with_a_hint() {
    let started = Instant::now();
    let ran = without_engine().arg("ps").ran();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let stderr = &ran.assert_code(3).stderr;
    assert!(
        stderr.contains("DOCKER_HOST=unix:///nonexistent/docker.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn an_env_file_sets_replicas_their_env_and_the_targets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrtest.yaml");
    std::fs::write(&file, "gometr: { replicas: 2 }\nenv:\n  gometr-2: { GOMETR_HEALTH: fail }\nchecker: { interval: 500ms, timeout: 400ms }\n")
        .unwrap();
    let (run, stdout) = up_detached(&[std::ffi::OsStr::new("--env"), file.as_os_str()]);
    let api = url_in(&stdout, &run, "api");
    assert!(
        stdout.contains(&format!("metrtest-{run}-gometr-1"))
            && stdout.contains(&format!("metrtest-{run}-gometr-2"))
    );
    let targets = block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let body: serde_json::Value = metr_service::http_client::builder()
                .build()
                .unwrap()
                .get(format!("{api}/api/v1/targets"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap_or_default();
            let states: Vec<(String, String)> = body["data"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| {
                            (
                                t["name"].as_str().unwrap_or("").to_owned(),
                                t["last_status"].as_str().unwrap_or("").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if states.len() == 4 && states.iter().all(|(_, s)| !s.is_empty())
                || Instant::now() > deadline
            {
                break states;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    down(&run).assert_code(0);
    assert_eq!(leftovers(&run), (0, 0, 0));
    let names: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["gometr-1", "gometr-1-http", "gometr-2", "gometr-2-http"]
    );
    let state = |name: &str| {
        targets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_str())
    };
    assert_eq!(state("gometr-1"), Some("up"));
    assert_eq!(
        state("gometr-2"),
        Some("down"),
        "GOMETR_HEALTH=fail reached only gometr-2"
    );
}

#[test]
fn a_bad_env_file_is_exit_2_naming_the_key_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrtest.yaml");
    std::fs::write(&file, "gometr:\n  replica: 2\n").unwrap();
    let ran = metrtest().args(["up", "--env"]).arg(&file).ran();
    let stderr = &ran.assert_code(2).stderr;
    assert!(
        stderr.contains("metrtest.yaml:2:3") && stderr.contains("replica"),
        "{stderr}"
    );
}

#[test]
fn fail_fast_stops_the_other_scenarios_and_filter_selects() {
    let ran = metrtest()
        .arg("run")
        .arg(fixtures("failing"))
        .args([
            "--fail-fast",
            "--jobs",
            "1",
            "--filter",
            "fixture - expect",
            "--format",
            "json",
        ])
        .ran();
    let report = ran.assert_code(1).json();
    let names: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        4,
        "--filter keeps the four 'fixture - expect…' files: {names:?}"
    );
    assert_eq!(report["totals"]["failed"], 1, "{report:#}");
    assert_eq!(
        report["totals"]["skipped"], 3,
        "the rest never ran: {report:#}"
    );

    metrtest()
        .arg("run")
        .arg(fixtures("failing"))
        .args(["--tag", "no-such-tag"])
        .ran()
        .assert_code_for(2, "an empty selection is an argument error");
}

#[test]
fn a_failed_query_shows_postgres_hint_and_position_under_its_step() {
    let fixture = fixtures("sql_error").join("wrong_column.yaml");
    let ran = metrtest().arg("run").arg(&fixture).ran();
    ran.assert_code(1);
    let shown = format!("{}{}", ran.stdout, ran.stderr);
    // The expected lines are kept beside the fixture, in the order they appear.
    let expected = std::fs::read_to_string(fixture.with_extension("err")).unwrap();
    let mut rest = shown.as_str();
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("missing, or out of order: {line:?}\n{shown}"));
        rest = &rest[at + line.len()..];
    }
}
