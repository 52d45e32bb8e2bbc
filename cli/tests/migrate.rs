//! The one-shot `migrate` step on the real engine: the checker and the API
//! start only after it exited 0, and a failure ends the run with its logs in
//! every report.

mod support;

use support::*;

#[test]
fn a_failing_migrate_step_ends_the_start_with_its_logs_in_every_report_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let ran = metrtest()
        .arg("run")
        .arg(fixtures("bad_migrate"))
        .args(["--format", "json", "--junit"])
        .arg(&junit)
        .ran();
    let stderr = &ran.assert_code(3).stderr;
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    let run = run_id_in(&lines);

    // The terminal: the migrate container named, its last log lines quoted.
    let container = format!("metrtest-{run}-migrate");
    assert!(stderr.contains(&container), "{stderr}");
    assert!(stderr.contains("exited with code"), "{stderr}");
    let cause = "password authentication failed";
    assert!(stderr.contains(cause), "{stderr}");

    // JSON: the scenario failed, with the migrate logs under its name.
    let json = ran.json();
    let scenario = &json["scenarios"][0];
    assert_eq!(scenario["outcome"], "failed", "{json}");
    assert!(
        scenario["error"].as_str().unwrap().contains(&container),
        "{json}"
    );
    assert!(
        scenario["logs"]["migrate"]
            .as_str()
            .unwrap()
            .contains(cause),
        "{json}"
    );

    // JUnit: the same logs in system-out.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let system_out = xml
        .split("<system-out>")
        .nth(1)
        .and_then(|rest| rest.split("</system-out>").next())
        .unwrap_or_else(|| panic!("no system-out in {xml}"));
    assert!(system_out.contains("migrate"), "{xml}");
    assert!(system_out.contains(cause), "{xml}");

    // Nothing of the run is left: metrtest's own teardown, checked at once.
    assert_eq!(leftovers(&run), (0, 0, 0));
}

#[test]
fn the_services_start_on_a_migrated_database_and_the_migrate_container_is_gone() {
    let (run, table) = up_detached(&["--ttl".as_ref(), "10m".as_ref()]);
    let api = url_in(&table, &run, "api");
    let (status, containers) = status_and_containers(&format!("{api}/api/v1/checks"), &run);
    let api_cmd = inspect(&format!("metrtest-{run}-api"))
        .config
        .and_then(|c| c.cmd)
        .unwrap_or_default();
    down(&run).assert_code(0);
    assert_eq!(leftovers(&run), (0, 0, 0));

    assert_eq!(status, 200, "the API serves a migrated database");
    assert!(
        !api_cmd.iter().any(|a| a.contains("migrate")),
        "the API does not migrate itself: {api_cmd:?}"
    );
    assert!(
        !containers.iter().any(|c| c.ends_with("-migrate")),
        "the one-shot container is removed once it exited 0: {containers:?}"
    );
}

/// The status `url` answers, and the names of a run's containers.
fn status_and_containers(url: &str, run: &str) -> (u16, Vec<String>) {
    let status = get_status(url);
    with_engine(async |docker| {
        let names = run_containers(docker, run)
            .await
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .collect();
        (status, names)
    })
}
