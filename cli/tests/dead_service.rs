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

#[test]
fn an_up_stack_restarts_a_crashed_checker_and_ps_counts_the_restart() {
    // The kernel's kill of the process, as the OOM killer does: the engine
    // restarts a container whose process died, not one it was told to kill.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: killing a container's process from the host needs root");
        return;
    }
    let (run, _) = up_detached(&["--ttl".as_ref(), "10m".as_ref()]);
    let container = format!("metrtest-{run}-checker");
    let pid = inspect(&container)
        .state
        .and_then(|s| s.pid)
        .expect("a pid");
    // SAFETY: kill(2) of the checker's process, which this test's stack started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let restarted = loop {
        let info = inspect(&container);
        let running = info.state.and_then(|s| s.running) == Some(true);
        if running && info.restart_count == Some(1) || std::time::Instant::now() > deadline {
            break running && info.restart_count == Some(1);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let ps = ps();
    down(&run).assert_code(0);
    assert_eq!(leftovers(&run), (0, 0, 0));
    assert!(restarted, "the checker was not restarted once within 30 s");
    let row = ps
        .lines()
        .find(|l| l.contains(&run) && l.contains(" checker "))
        .unwrap_or_else(|| panic!("no checker of {run} in\n{ps}"));
    let cells: Vec<&str> = row.split('┆').map(str::trim).collect();
    assert_eq!(cells[2], "running", "{row}");
    assert_eq!(cells[3], "1", "the restarts column: {row}");
}
