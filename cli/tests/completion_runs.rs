//! Completion on the real engine: a TAB after `--run` offers the runs that
//! are up, and `logs --run ID <TAB>` that run's services.

mod support;

use support::{RunExt, down, metrtest, up_detached};

/// The candidates for the last word of `line`, asked as the bash
/// registration asks, with the engine reachable.
fn tab(line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split(' ').collect();
    let ran = metrtest()
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_IFS", "\n")
        .arg("--")
        .args(&words)
        .ran();
    ran.assert_code_for(0, line);
    ran.stdout.lines().map(str::to_owned).collect()
}

/// Removes the run however the test ends.
struct Remove(String);

impl Drop for Remove {
    fn drop(&mut self) {
        down(&self.0);
    }
}

#[test]
fn a_run_that_is_up_completes_after_run_and_its_services_after_logs() {
    let (run, _) = up_detached(&["--ttl".as_ref(), "10m".as_ref()]);
    let _remove = Remove(run.clone());

    for line in ["metrtest down --run ", "metrtest logs --run "] {
        assert!(tab(line).contains(&run), "{line}: {:?}", tab(line));
    }
    let prefix = &run[..3];
    let narrowed = tab(&format!("metrtest run scenarios --stack {prefix}"));
    assert!(narrowed.contains(&run), "{narrowed:?}");
    assert!(
        narrowed.iter().all(|r| r.starts_with(prefix)),
        "{narrowed:?}"
    );

    let services = tab(&format!("metrtest logs --run {run} "));
    for service in ["postgres", "gometr", "checker", "api"] {
        assert!(services.contains(&service.to_owned()), "{services:?}");
    }
    assert!(!services.contains(&"reaper".to_owned()), "{services:?}");
    assert_eq!(tab(&format!("metrtest logs --run={run} che")), ["checker"]);
}
