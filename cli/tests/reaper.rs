//! The reaper on the real engine: metrtest is killed with SIGKILL at each
//! phase of a run, and the run's containers, networks and volumes must all be
//! gone within 30 s, with no later metrtest command.

mod support;

use std::process::Child;
use std::time::Duration;

use support::*;

const WITHIN: Duration = Duration::from_secs(30);

fn kill_and_count(mut child: Child, run: &str, phase: &str) {
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    match wait_gone(run, WITHIN) {
        Ok(took) => eprintln!(
            "kill -9 {phase}: run {run} gone in {:.1} s",
            took.as_secs_f64()
        ),
        Err(left) => panic!(
            "kill -9 {phase}: run {run} still has {left:?} (containers, networks, volumes) after {WITHIN:?}"
        ),
    }
}

fn up() -> (Child, Lines) {
    spawn(&["up".as_ref()])
}

fn guarded_run(lines: &[String]) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next().map(str::to_owned))
        .expect("a 'run ID: guarded by its reaper' line")
}

#[test]
fn a_run_killed_while_building_images_leaves_nothing() {
    let (child, mut lines) = up();
    let seen = read_until(&mut lines, "guarded by its reaper");
    let run = guarded_run(&seen);
    kill_and_count(child, &run, "while building images");
}

#[test]
fn a_run_killed_while_starting_services_leaves_nothing() {
    let (child, _lines, run) = up_until("starting stack");
    std::thread::sleep(Duration::from_millis(400));
    kill_and_count(child, &run, "while starting services");
}

#[test]
fn a_run_killed_during_a_scenario_leaves_nothing() {
    let slow = fixtures("slow");
    let (child, mut lines) = spawn(&["run".as_ref(), slow.as_os_str()]);
    let seen = read_until(&mut lines, "scenario fixture - sleeps");
    let run = run_id_in(&seen);
    assert_eq!(leftovers(&run).0, 5, "four services and the reaper");
    std::thread::sleep(Duration::from_millis(500));
    kill_and_count(child, &run, "during a scenario");
}

#[test]
fn a_run_killed_during_teardown_leaves_nothing() {
    let (child, _lines, run) = up_until("press Ctrl-C");
    signal(&child, libc::SIGINT);
    // Teardown gives containers a stop grace first: kill it in the middle.
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(leftovers(&run), (0, 0, 0), "teardown is still under way");
    kill_and_count(child, &run, "during teardown");
}

#[test]
fn a_finished_run_removes_its_reaper_too() {
    let (run, _) = up_detached(&["--ttl".as_ref(), "0".as_ref()]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        leftovers(&run).0,
        5,
        "--ttl 0: the detached stack stays after its owner exited"
    );
    down(&run).assert_code(0);
    assert_eq!(
        leftovers(&run),
        (0, 0, 0),
        "down removes the reaper as well"
    );
}

#[test]
fn a_detached_stack_is_removed_when_its_ttl_expires_and_ps_shows_it() {
    let (run, _) = up_detached(&["--ttl".as_ref(), "8s".as_ref()]);
    let ps = ps();
    let row = ps
        .lines()
        .find(|l| l.contains(&run) && l.contains(" up "))
        .unwrap_or_else(|| panic!("no row for {run} with owner up in\n{ps}"));
    assert!(
        row.contains("ttl")
            || row
                .split('┆')
                .nth(3)
                .is_some_and(|c| c.trim().ends_with('s')),
        "ttl left in seconds: {row}"
    );
    let started = std::time::Instant::now();
    match wait_gone(&run, WITHIN + Duration::from_secs(8)) {
        Ok(took) => eprintln!(
            "--ttl 8s: run {run} gone {:.1} s after `up --detach` returned",
            took.as_secs_f64()
        ),
        Err(left) => panic!("--ttl 8s: run {run} still has {left:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "not removed before its time"
    );
}

#[test]
fn a_bad_ttl_is_exit_2_naming_the_flag() {
    for bad in ["soon", "-1h"] {
        let ran = metrtest().args(["up", "--detach", "--ttl", bad]).ran();
        let stderr = &ran.assert_code_for(2, format!("--ttl {bad}")).stderr;
        assert!(stderr.contains("--ttl"), "--ttl {bad}: {stderr}");
    }
}

#[test]
fn without_a_workspace_to_build_the_reaper_a_run_warns_and_still_starts() {
    let set = block_on(async {
        let engine = metrtest::engine::connect().await.expect("engine");
        let ui = metrtest::ui::Ui::new(metrtest::ui::Verbosity::Quiet);
        metrtest::stack::images::ensure(&engine, &Default::default(), &ui.progress())
            .await
            .expect("images")
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("explicit.yaml");
    std::fs::write(
        &file,
        format!(
            "images: {{ postgres: '{}', gometr: '{}', checker: '{}', api: '{}' }}\n",
            set.postgres, set.gometr, set.checker, set.api
        ),
    )
    .unwrap();
    let ran = metrtest()
        .args(["up", "--detach", "--env"])
        .arg(&file)
        .env("METRTEST_WORKSPACE", dir.path().join("no-workspace"))
        .ran();
    let run = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("run id: ").map(|r| r.trim().to_owned()));
    let count = run.as_deref().map(|r| leftovers(r).0);
    if let Some(run) = &run {
        down(run);
    }
    let stderr = &ran.assert_code(0).stderr;
    assert!(stderr.contains("cannot build the reaper image"), "{stderr}");
    assert!(stderr.contains("this run has no reaper"), "{stderr}");
    assert_eq!(count, Some(4), "four services, no reaper");
}

#[test]
fn a_reaper_removes_only_its_own_run() {
    let (other, _) = up_detached(&["--ttl".as_ref(), "10m".as_ref()]);
    let (child, _lines, run) = up_until("press Ctrl-C");
    kill_and_count(child, &run, "beside another run");
    let other_left = leftovers(&other);
    down(&other);
    assert_eq!(
        other_left,
        (5, 1, 1),
        "the other run keeps its containers (four and its reaper), network and volume"
    );
}
