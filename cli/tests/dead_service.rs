//! A service that dies without a step asking for it fails the scenarios that
//! run on its stack, with the cause: on the real engine, the checker of the
//! shared stack is killed from outside while two scenarios sleep on it.

mod support;

use std::time::Duration;

use bollard::query_parameters::KillContainerOptions;
use support::*;

/// Kills a service's container of `run`, after checking it is metrtest's.
fn kill_service(run: &str, service: &str) {
    let container = format!("metrtest-{run}-{service}");
    with_engine(async |docker| {
        let info = docker.inspect_container(&container, None).await.unwrap();
        let labels = info.config.and_then(|c| c.labels).unwrap_or_default();
        assert_eq!(labels.get("io.metrtest.run").map(String::as_str), Some(run));
        assert_eq!(
            labels.get("io.metrtest.service").map(String::as_str),
            Some(service)
        );
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        docker
            .kill_container(&container, Some(options))
            .await
            .unwrap();
    });
}

#[test]
fn a_checker_killed_from_outside_fails_the_scenarios_on_its_stack_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("report.xml");
    let fixtures = fixtures("killed_service");
    let (mut child, mut lines) = spawn(&[
        "run".as_ref(),
        fixtures.as_os_str(),
        "--junit".as_ref(),
        junit.as_os_str(),
    ]);
    let mut seen = read_until(&mut lines, "starting stack");
    let run = run_id_in(&seen);
    // Both scenarios are in their 6 s sleep once both have started.
    seen.extend(read_until(&mut lines, "killed from outside"));
    seen.extend(read_until(&mut lines, "killed from outside"));
    kill_service(&run, "checker");
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let code = wait(&mut child, Duration::from_secs(120));
    seen.extend(rest.join().unwrap());
    let stderr = seen.join("\n");
    assert_eq!(code, 1, "{stderr}");

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
    let reason = "service checker died without a step asking for it: exited, exit code 137";
    assert_eq!(
        xml.matches(&format!("message=\"{reason}")).count(),
        2,
        "the JUnit message of each scenario names the service and its exit code: {xml}"
    );
    assert!(xml.contains("OOMKilled: false"), "{xml}");
    assert!(
        xml.contains("(noticed after step 1 &quot;wait while the test kills the checker&quot;)"),
        "{xml}"
    );
    assert!(
        stderr.contains(reason),
        "the terminal says it too: {stderr}"
    );
    assert!(
        stderr.contains("last lines of checker:"),
        "with the checker's last log lines: {stderr}"
    );
    assert_eq!(leftovers(&run), (0, 0, 0));
}
