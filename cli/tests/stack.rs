//! Stack lifecycle on the real engine: signals, teardown races, container
//! limits and ports that survive a restart.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn sighup_tears_the_stack_down_like_sigterm() {
    let (mut child, lines, run) = up_until("press Ctrl-C");
    // A closed terminal: SIGHUP, and nobody reads stderr any more.
    drop(lines);
    signal(&child, libc::SIGHUP);
    let code = wait(&mut child, Duration::from_secs(60));
    assert_eq!(code, 0, "handled like Ctrl-C on a running `up`");
    assert_eq!(leftovers(&run), (0, 0, 0));
}

#[test]
fn an_interrupt_just_after_starting_leaves_no_created_container() {
    for delay_ms in [40, 80, 100, 120, 160] {
        let (mut child, _lines, run) = up_until("starting stack");
        std::thread::sleep(Duration::from_millis(delay_ms));
        signal(&child, libc::SIGTERM);
        let code = wait(&mut child, Duration::from_secs(60));
        assert_eq!(code, 130, "SIGTERM after {delay_ms} ms");
        // Checked at once: this is metrtest's own teardown, not the reaper's.
        assert_eq!(leftovers(&run), (0, 0, 0), "SIGTERM after {delay_ms} ms");
    }
}

#[test]
fn containers_have_limits_and_keep_their_port_across_stop_and_start() {
    let (run, table) = up_detached(&["--ttl".as_ref(), "10m".as_ref()]);
    for service in ["postgres", "gometr", "checker", "api"] {
        let info = inspect(&format!("metrtest-{run}-{service}"));
        let host = info.host_config.unwrap();
        assert!(host.memory.unwrap_or(0) > 0, "{service} has a memory limit");
        assert!(
            host.pids_limit.unwrap_or(0) > 0,
            "{service} has a pids limit"
        );
        // An `up` stack brings a crashed service back, a few times.
        let restart = host.restart_policy.unwrap();
        assert_eq!(
            restart.name.unwrap().to_string(),
            "on-failure",
            "{service} is restarted after a crash"
        );
        assert_eq!(restart.maximum_retry_count, Some(5), "{service}");
        let grace = info.config.unwrap().stop_timeout;
        let expected = if service == "checker" { 30 } else { 10 };
        assert_eq!(grace, Some(expected), "{service}'s stop grace");
    }
    let gometr = url_in(&table, &run, "gometr");
    stop_and_start(&format!("metrtest-{run}-gometr"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    while status != 200 && std::time::Instant::now() < deadline {
        status = get_status(&format!("{gometr}/health"));
        std::thread::sleep(Duration::from_millis(200));
    }
    down(&run).assert_code(0);
    assert_eq!(leftovers(&run), (0, 0, 0));
    assert_eq!(status, 200, "the URL `up` printed works after a restart");
}
