//! Isolation by effect: a scenario whose steps change what a neighbour sees
//! gets a stack of its own; one that opts out (`isolated: false`) is warned
//! about, and named in the report of a neighbour that fails beside it.

mod support;

use serde_json::Value;
use support::*;

/// `metrtest ARGS` with no engine reachable.
fn without_engine_ran(args: &[&str]) -> Ran {
    without_engine().args(args).ran()
}

/// `run FIXTURE --jobs 4 --format json` on the engine: how it ended and the
/// JSON report; and nothing of any of its stacks is left.
fn run_together(fixture: &str) -> (Ran, Value) {
    let ran = metrtest()
        .arg("run")
        .arg(fixtures(fixture))
        .args(["--jobs", "4", "--format", "json"])
        .ran();
    let report = ran.json();
    for scenario in report["scenarios"].as_array().unwrap() {
        let run = scenario["stack"]
            .as_str()
            .expect("every scenario ran on a stack");
        assert_eq!(leftovers(run), (0, 0, 0), "stack {run} was left behind");
    }
    (ran, report)
}

fn scenario<'a>(report: &'a Value, name_part: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no scenario named *{name_part}* in {report:#}"))
}

#[test]
fn list_says_which_stack_each_scenario_gets_and_why() {
    let dir = fixtures("neighbours");
    let dir = dir.to_str().unwrap();
    let ran = without_engine_ran(&["run", dir, "--list"]);
    let (stdout, stderr) = (&ran.assert_code(0).stdout, &ran.stderr);
    // stdout keeps one `FILE: NAME` line per scenario, as scripts read it.
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stderr.contains("1 on the shared stack, 1 on a stack of its own:"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "breaks_gometr_metrics.yaml: step 1 (\"gometr's /metrics answers 500 from now on\") sends PUT /control to gometr"
        ),
        "{stderr}"
    );

    let ran = without_engine_ran(&["run", dir, "--list", "--format", "json"]);
    let listed = ran.assert_code(0).json();
    let stacks: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["stack"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stacks,
        [
            (
                "fixture - breaks gometr's /metrics and leaves it broken",
                "own"
            ),
            (
                "fixture - reads gometr's up while a neighbour runs",
                "shared"
            ),
        ]
    );
    assert!(listed[1]["isolated"].is_null(), "{listed:#}");
}

#[test]
fn validate_warns_when_isolated_false_keeps_a_changing_step_on_the_shared_stack() {
    let dir = fixtures("neighbours_opted_out");
    let ran = without_engine_ran(&["validate", dir.to_str().unwrap()]);
    let (stdout, stderr) = (&ran.stdout, &ran.stderr);
    ran.assert_code_for(0, "a warning is not an error");
    assert!(
        stdout.contains("2 scenario(s), 6 step(s): valid"),
        "{stdout}"
    );
    // At the step that changes the stack, naming what it does.
    assert!(
        stderr.contains(
            "breaks_gometr_metrics.yaml:8:5: step 1 (\"gometr's /metrics answers 500 from now on\") sends PUT /control to gometr, yet isolated: false keeps the scenario on the shared stack"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("warning").count(), 1, "{stderr}");
}

#[test]
fn a_scenario_that_changes_gometr_runs_apart_and_its_neighbour_passes() {
    let (ran, report) = run_together("neighbours");
    ran.assert_code(0);
    assert_eq!(report["totals"]["passed"], 2, "{report:#}");
    let breaker = scenario(&report, "breaks gometr");
    let reader = scenario(&report, "reads gometr");
    assert!(
        breaker["isolated"]
            .as_str()
            .is_some_and(|why| why.contains("sends PUT /control to gometr")),
        "{breaker:#}"
    );
    assert!(reader.get("isolated").is_none(), "{reader:#}");
    assert_ne!(breaker["stack"], reader["stack"]);
    // Two stacks start side by side: each start-up line says whose it is.
    let labelled = |whom: &str, service: &str| {
        let run = [&breaker, &reader]
            .into_iter()
            .find(|s| whom.starts_with("1 scenario") != s.get("isolated").is_some())
            .and_then(|s| s["stack"].as_str())
            .unwrap();
        format!("{run} {whom} | ✓ {service:<9} ready in")
    };
    for service in ["postgres", "gometr", "checker", "api"] {
        for whom in [
            "fixture - breaks gometr's /metrics and l…",
            "1 scenario(s) sharing it",
        ] {
            let line = labelled(whom, service);
            assert!(
                ran.stderr.contains(&line),
                "no {line:?} in:\n{}",
                ran.stderr
            );
        }
        let bare = format!("\n✓ {service:<9} ready in");
        assert!(
            !ran.stderr.contains(&bare),
            "unlabelled {bare:?} in:\n{}",
            ran.stderr
        );
    }
}

#[test]
fn a_scenario_failing_on_a_shared_stack_names_the_scenario_that_ran_beside_it() {
    let (ran, report) = run_together("neighbours_opted_out");
    let stderr = &ran.assert_code(1).stderr;
    let breaker = scenario(&report, "breaks gometr");
    let reader = scenario(&report, "reads gometr");
    assert_eq!(reader["outcome"], "failed", "{reader:#}");
    assert_eq!(
        breaker["stack"], reader["stack"],
        "both on the shared stack"
    );
    let neighbours = reader["neighbours"].as_array().expect("neighbours named");
    assert_eq!(neighbours.len(), 1, "{reader:#}");
    assert!(
        neighbours[0]
            .as_str()
            .unwrap()
            .contains("fixture - opted out, breaks gometr's /metrics"),
        "{reader:#}"
    );
    // The text every reporter shows says it too.
    assert!(
        stderr.contains("it ran on shared stack") && stderr.contains("opted out, breaks gometr"),
        "{stderr}"
    );
}
