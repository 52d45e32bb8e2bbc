//! `run --stack ID` against a stack from `up --detach`, and `--keep-failed`,
//! on the real engine.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn run_ids_started(stderr: &str) -> Vec<String> {
    stderr.lines().filter_map(run_id_started).collect()
}

fn pause(container: &str, paused: bool) {
    with_engine(async |docker| {
        if paused {
            docker.pause_container(container).await.unwrap();
        } else {
            docker.unpause_container(container).await.unwrap();
        }
    })
}

#[test]
fn run_on_an_existing_stack_leaves_it_up_and_says_when_a_scenario_needs_its_own() {
    let (run, _) = up_detached(&["--ttl".as_ref(), "10m".as_ref()]);

    let started = Instant::now();
    let on_stack = |stack: &str, fixture: &str| {
        metrtest()
            .args(["run", "--stack", stack])
            .arg(fixtures(fixture))
            .ran()
    };
    let warm = on_stack(&run, "passing");
    let took = started.elapsed();
    let mixed = on_stack(&run, "own_stack");
    let unknown = on_stack("nosuchrun", "passing");
    pause(&format!("metrtest-{run}-api"), true);
    let paused = on_stack(&run, "passing");
    pause(&format!("metrtest-{run}-api"), false);
    let still_up = leftovers(&run).0;
    let down = down(&run);

    warm.assert_code(0);
    eprintln!(
        "run --stack on a warm stack: {:.2} s in all",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        run_ids_started(&warm.stderr).is_empty(),
        "no stack was started: {}",
        warm.stderr
    );
    let stderr = &mixed.assert_code(0).stderr;
    assert!(
        stderr.contains("scenario \"fixture - needs a stack of its own\" needs a stack of its own"),
        "{stderr}"
    );
    let fresh = run_ids_started(stderr);
    assert_eq!(fresh.len(), 1, "one fresh stack: {stderr}");
    assert_eq!(leftovers(&fresh[0]), (0, 0, 0), "the fresh one is removed");
    let stderr = &unknown.assert_code(2).stderr;
    assert!(
        stderr.contains("--stack nosuchrun: no such stack; running stacks:")
            && stderr.contains(&run),
        "{stderr}"
    );
    let stderr = &paused.assert_code(3).stderr;
    assert!(
        stderr.contains(&format!("service api of stack {run} is not ready")),
        "{stderr}"
    );
    assert_eq!(still_up, 5, "the attached stack stayed up");
    down.assert_code(0);
    assert_eq!(leftovers(&run), (0, 0, 0));
}

#[test]
fn keep_failed_keeps_exactly_the_failed_scenarios_stack() {
    let ran = metrtest()
        .args(["run", "--keep-failed", "--jobs", "1"])
        .arg(fixtures("keep_failed"))
        .ran();
    let (stdout, stderr) = (&ran.stdout, &ran.stderr);
    let started = run_ids_started(stderr);
    let kept: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("kept stack "))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    let counts: Vec<(String, usize)> = started
        .iter()
        .map(|r| (r.clone(), leftovers(r).0))
        .collect();
    let ps = ps();
    for run in &kept {
        down(run);
    }

    ran.assert_code(1);
    assert_eq!(started.len(), 3, "shared + two isolated: {stderr}");
    assert_eq!(kept.len(), 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "kept stack {} for fixture - fails on a stack of its own",
            kept[0]
        )),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("metrtest down --run {}", kept[0])));
    for (run, count) in counts {
        let expected = if run == kept[0] { 5 } else { 0 };
        assert_eq!(count, expected, "run {run}");
    }
    let row = ps.lines().find(|l| l.contains(&kept[0])).expect("ps row");
    assert!(
        row.contains("fixture - fails on a stack of its own") && row.contains("run"),
        "{row}"
    );
    for run in &kept {
        assert_eq!(leftovers(run), (0, 0, 0));
    }
}

/// Polls `url` until it answers `status`, for at most 20 s.
fn until_status(url: &str, status: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if request("GET", url, None).0 == status {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn up_with_faults_puts_a_proxy_on_the_links_that_its_control_api_drives() {
    let (run, table) = up_detached(&[
        "--ttl".as_ref(),
        "10m".as_ref(),
        "--faults".as_ref(),
        "api->postgres,checker->postgres".as_ref(),
    ]);
    let control = url_in(&table, &run, "faultproxy");
    let api = url_in(&table, &run, "api");
    let proxies = request("GET", &format!("{control}/proxies"), None);
    let healthy = until_status(&format!("{api}/health"), 200);
    let disabled = request(
        "POST",
        &format!("{control}/proxies/api_to_postgres"),
        Some(r#"{"enabled": false}"#),
    );
    let cut_off = until_status(&format!("{api}/health"), 503);
    let enabled = request(
        "POST",
        &format!("{control}/proxies/api_to_postgres"),
        Some(r#"{"enabled": true}"#),
    );
    let back = until_status(&format!("{api}/health"), 200);
    let down = down(&run);

    assert!(
        table.contains("fault proxy (Toxiproxy's control API)"),
        "{table}"
    );
    assert_eq!(proxies.0, 200, "{proxies:?}");
    assert!(proxies.1.contains("api_to_postgres"), "{}", proxies.1);
    assert!(proxies.1.contains("checker_to_postgres"), "{}", proxies.1);
    assert!(healthy, "the API is healthy through the proxy");
    assert_eq!(disabled.0, 200, "{disabled:?}");
    assert!(cut_off, "with api->postgres down the API's health is 503");
    assert_eq!(enabled.0, 200, "{enabled:?}");
    assert!(back, "enabled again, the API recovers");
    down.assert_code(0);
    assert_eq!(leftovers(&run), (0, 0, 0));
}

#[test]
fn up_refuses_a_fault_link_to_a_service_the_stack_lacks_before_starting_anything() {
    let ran = metrtest()
        .args(["up", "--faults", "checker->nowhere"])
        .ran();
    let stderr = &ran.assert_code(2).stderr;
    assert!(
        stderr.contains("--faults: unknown link 'checker->nowhere'"),
        "{stderr}"
    );
    assert!(!stderr.contains("starting stack"), "{stderr}");
}

#[test]
fn a_faults_link_cut_short_by_a_shell_redirect_is_refused_with_a_hint_to_quote_it() {
    // Typed unquoted, `--faults checker->postgres` reaches metrtest as `checker-`.
    // Refused while parsing arguments: no engine is reached.
    let ran = without_engine().args(["up", "--faults", "checker-"]).ran();
    let stderr = &ran.assert_code(2).stderr;
    assert!(
        stderr.contains(
            "\"checker-\" is not a link 'CLIENT->SERVER' such as 'checker->postgres'; \
             the shell may have read `>` as a redirect: quote the link, e.g. 'checker->postgres'"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("starting stack"), "{stderr}");
}

#[test]
fn up_and_validate_refuse_a_link_no_service_uses_with_the_same_words() {
    // api never talks to gometr: up used to start a proxy nobody used.
    let up = metrtest().args(["up", "--faults", "api->gometr"]).ran();
    let up_err = &up.assert_code(2).stderr;
    assert!(!up_err.contains("starting stack"), "{up_err}");

    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("cut.yaml");
    std::fs::write(
        &scenario,
        "name: cut api from gometr\nsteps:\n  - name: cut\n    network: { link: api->gometr, down: true }\n",
    )
    .unwrap();
    let validate = metrtest().arg("validate").arg(&scenario).ran();
    let validate_err = &validate.assert_failed().stderr;
    let words = "unknown link 'api->gometr': a link is 'CLIENT->SERVER' between services of the stack that talk to each other: 'checker->postgres', 'api->postgres', 'checker->gometr'";
    assert!(up_err.contains(words), "up: {up_err}");
    assert!(validate_err.contains(words), "validate: {validate_err}");
}
