//! `run --list` and `--partition`: which scenarios a CI job takes, with no
//! engine involved; bad `run` flags are usage errors (exit 2) naming the flag.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use support::{Ran, RunExt, without_engine};

/// `run ARGS --list` with no engine reachable.
fn list(args: &[&str]) -> Ran {
    without_engine().arg("run").args(args).arg("--list").ran()
}

/// The stdout lines of `run ARGS --list`, which must exit 0.
fn listed(args: &[&str]) -> Vec<String> {
    let ran = list(args);
    ran.assert_code_for(0, format!("{args:?}"));
    ran.stdout.lines().map(str::to_owned).collect()
}

/// The scenario names of `path: name` lines.
fn names(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.rsplit_once(": ").expect("path: name").1)
        .collect()
}

/// Writes `count` small scenario files named `s000.yaml`, … into `dir`.
fn write_scenarios(dir: &Path, range: std::ops::Range<usize>) {
    for i in range {
        std::fs::write(
            dir.join(format!("s{i:03}.yaml")),
            format!("name: scenario number {i}\nsteps:\n  - sleep: 1ms\n"),
        )
        .unwrap();
    }
}

/// The slices hash:1/N … N/N of `path`, each as listed.
fn hash_slices(path: &str, n: usize) -> Vec<Vec<String>> {
    (1..=n)
        .map(|k| listed(&[path, "--partition", &format!("hash:{k}/{n}")]))
        .collect()
}

fn assert_union_is_whole_without_overlap(whole: &[String], slices: &[Vec<String>]) {
    let mut seen = BTreeSet::new();
    for line in slices.iter().flatten() {
        assert!(seen.insert(line.clone()), "{line} is in two slices");
    }
    let whole: BTreeSet<String> = whole.iter().cloned().collect();
    assert_eq!(seen, whole);
}

#[test]
fn list_prints_path_and_name_of_each_scenario_and_starts_nothing() {
    let lines = listed(&["scenarios/"]);
    // Subfolders too (a folder with its own metrtest.yaml is part of the run).
    fn scenario_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                if p.is_dir() {
                    scenario_files(&p)
                } else {
                    usize::from(
                        p.extension().is_some_and(|x| x == "yaml") && !p.ends_with("metrtest.yaml"),
                    )
                }
            })
            .sum()
    }
    let files = scenario_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios"));
    assert_eq!(lines.len(), files, "{lines:#?}");
    let expected =
        "scenarios/checks_record_gometr_up.yaml: checks record gometr as up, newest first";
    assert!(lines.iter().any(|l| l == expected), "{lines:#?}");
}

#[test]
fn the_hash_slices_of_the_scenarios_folder_cover_it_once() {
    let whole = listed(&["scenarios/"]);
    assert_union_is_whole_without_overlap(&whole, &hash_slices("scenarios/", 3));
}

#[test]
fn the_hash_slices_of_many_files_cover_them_once_and_none_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    write_scenarios(dir.path(), 0..90);
    let path = dir.path().to_str().unwrap();
    let whole = listed(&[path]);
    assert_eq!(whole.len(), 90);
    let slices = hash_slices(path, 3);
    assert!(slices.iter().all(|s| !s.is_empty()), "{slices:#?}");
    assert_union_is_whole_without_overlap(&whole, &slices);
}

#[test]
fn adding_a_scenario_moves_no_other_between_hash_slices() {
    let dir = tempfile::tempdir().unwrap();
    write_scenarios(dir.path(), 0..40);
    let path = dir.path().to_str().unwrap();
    let before = hash_slices(path, 4);
    write_scenarios(dir.path(), 40..41);
    let after = hash_slices(path, 4);
    for (k, (old, new)) in before.iter().zip(&after).enumerate() {
        for line in old {
            assert!(new.contains(line), "{line} left slice {}", k + 1);
        }
    }
    assert_eq!(after.iter().map(Vec::len).sum::<usize>(), 41);
}

#[test]
fn count_slices_deal_the_sorted_list_round_robin() {
    let dir = tempfile::tempdir().unwrap();
    write_scenarios(dir.path(), 0..7);
    let path = dir.path().to_str().unwrap();
    let second = listed(&[path, "--partition", "count:2/3"]);
    assert_eq!(names(&second), ["scenario number 1", "scenario number 4"]);
}

#[test]
fn partition_and_filter_combine() {
    let dir = tempfile::tempdir().unwrap();
    write_scenarios(dir.path(), 0..12);
    let path = dir.path().to_str().unwrap();
    let filtered = listed(&[path, "--filter", "number 1", "--partition", "count:1/2"]);
    // "number 1", "number 10", "number 11": the first and the third.
    assert_eq!(
        names(&filtered),
        ["scenario number 1", "scenario number 11"]
    );
}

#[test]
fn bad_run_flags_are_usage_errors_naming_the_flag_and_the_problem() {
    let cases = [
        (vec!["--partition", "3/2"], "--partition", "no strategy"),
        (
            vec!["--partition", "hash:0/2"],
            "--partition",
            "K must be between 1 and N (2), got 0",
        ),
        (
            vec!["--partition", "hash:3/2"],
            "--partition",
            "K must be between 1 and N (2), got 3",
        ),
        (
            vec!["--partition", "foo:1/2"],
            "--partition",
            "unknown strategy \"foo\"",
        ),
        (
            vec!["--retries", "-1"],
            "--retries",
            "must be 0 or more, got -1",
        ),
        (vec!["--annotations", "gitlab"], "--annotations", "gitlab"),
    ];
    for (flags, flag, problem) in cases {
        let mut args = vec!["scenarios/"];
        args.extend(flags.iter().copied());
        let ran = list(&args);
        let stderr = &ran.assert_code_for(2, format!("{flags:?}")).stderr;
        assert!(ran.stdout.is_empty(), "{flags:?} listed {}", ran.stdout);
        assert!(stderr.contains(flag), "{flags:?}: {stderr}");
        assert!(stderr.contains(problem), "{flags:?}: {stderr}");
    }
}
