//! A folder of scenarios with its own `metrtest.yaml`: its scenarios run on a
//! stack built from that file laid over the run's own environment
//! (`fixtures/own_env`: the run's gives gometr 7 extra series, the folder's
//! two replicas with the second failing its health).

mod support;

use support::*;

#[test]
fn validate_reads_a_folders_own_environment_for_its_scenarios() {
    let ran = metrtest().arg("validate").arg(fixtures("own_env")).ran();
    ran.assert_code(0);
    assert!(
        ran.stdout.contains("2 scenario(s), 3 step(s): valid"),
        "{}",
        ran.stdout
    );
    // Given alone, a file takes the run's environment, which has no gometr-2.
    let alone = fixtures("own_env").join("gometr_failing/second_replica_fails.yaml");
    let ran = metrtest().arg("validate").arg(&alone).ran();
    let stderr = &ran.assert_code(2).stderr;
    assert!(stderr.contains("unknown service \"gometr-2\""), "{stderr}");
}

#[test]
fn a_folders_own_environment_is_laid_over_the_runs_on_a_stack_of_its_own() {
    let ran = metrtest()
        .arg("run")
        .arg(fixtures("own_env"))
        .args(["--format", "json"])
        .ran();
    let report = ran.assert_code(0).json();
    assert_eq!(report["totals"]["passed"], 2, "{report:#}");
    let stacks: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stack"].as_str().unwrap())
        .collect();
    assert_ne!(
        stacks[0], stacks[1],
        "one stack per environment: {stacks:?}"
    );
    for run in stacks {
        assert_eq!(leftovers(run), (0, 0, 0), "{run}");
    }
}
