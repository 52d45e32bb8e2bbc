//! `metrtest validate` on broken files: each mistake is named at file:line:column,
//! exit code 2, with no engine involved.

mod support;

use std::path::Path;

use support::{Ran, RunExt, expected, fixtures, metrtest, without_engine};

/// `validate broken/FILE` with no engine reachable.
fn validate(file: &str) -> Ran {
    validate_path(&fixtures("broken").join(file))
}

/// `validate PATH` with no engine reachable.
fn validate_path(path: &Path) -> Ran {
    without_engine().arg("validate").arg(path).ran()
}

// Over 80 lines on purpose: one table of cases, each a file or text and
// what its error must say, reads better whole than split.
#[test]
fn every_kind_of_mistake_is_named_at_its_position() {
    let cases = [
        ("unknown_key.yaml", "unknown_key.yaml:4:5", "expekt"),
        (
            "bad_matcher.yaml",
            "bad_matcher.yaml:6:",
            "unknown matcher \"longer_than\"",
        ),
        (
            "bad_jsonpath.yaml",
            "bad_jsonpath.yaml:6:",
            "not a JSONPath",
        ),
        (
            "two_actions.yaml",
            "two_actions.yaml:3:",
            "exactly one action",
        ),
        (
            "bad_duration.yaml",
            "bad_duration.yaml:4:",
            "not a duration",
        ),
        ("bad_yaml.yaml", "bad_yaml.yaml:", "did not find expected"),
        (
            "missing_name.yaml",
            "missing_name.yaml:1:1",
            "missing field `name`",
        ),
        ("bad_regex.yaml", "bad_regex.yaml:5:", "invalid regex"),
        (
            "wrong_kind_expectation.yaml",
            "wrong_kind_expectation.yaml:5:",
            "does not apply to a sql step",
        ),
        (
            "bad_template.yaml",
            "bad_template.yaml:3:",
            "unclosed template",
        ),
        (
            "status_not_a_number.yaml",
            "status_not_a_number.yaml:4:",
            "not an HTTP status",
        ),
        (
            "duplicate_json_path.yaml",
            "duplicate_json_path.yaml:7:",
            "duplicate key",
        ),
        (
            "duplicate_body_key.yaml",
            "duplicate_body_key.yaml:7:",
            "duplicate key",
        ),
        (
            "undefined_template.yaml",
            "undefined_template.yaml:5:",
            "never_captured",
        ),
        (
            "unknown_service.yaml",
            "unknown_service.yaml:3:",
            "unknown service \"gometrr\"",
        ),
        (
            "zero_retry_interval.yaml",
            "zero_retry_interval.yaml:4:",
            "at least",
        ),
        (
            "two_documents.yaml",
            "two_documents.yaml:4:1",
            "one YAML document",
        ),
        ("alias_bomb.yaml", "alias_bomb.yaml:", "alias"),
        (
            "network_unknown_link.yaml",
            "network_unknown_link.yaml:3:22",
            "unknown link 'api->gometr'",
        ),
        (
            "network_bad_rate.yaml",
            "network_bad_rate.yaml:5:18",
            "\"2KB\" is not a rate such as 2KB/s",
        ),
        (
            "network_not_a_boolean.yaml",
            "network_not_a_boolean.yaml:3:43",
            "expected a boolean",
        ),
        (
            "network_unknown_service.yaml",
            "network_unknown_service.yaml:3:27",
            "unknown service \"gometrr\"",
        ),
        (
            "network_fault_on_partition.yaml",
            "network_fault_on_partition.yaml:4:35",
            "\"latency\" is a fault of a link",
        ),
        (
            "network_no_link.yaml",
            "network_no_link.yaml:3:22",
            "is not a link 'CLIENT->SERVER'",
        ),
    ];
    for (file, position, words) in cases {
        let ran = validate(file);
        ran.assert_code_for(2, file);
        let stderr = &ran.stderr;
        assert!(
            stderr.contains(position),
            "{file}: expected {position:?} in\n{stderr}"
        );
        assert!(
            stderr.contains(words),
            "{file}: expected {words:?} in\n{stderr}"
        );
        assert!(
            stderr.contains(" | "),
            "{file}: the offending line is shown\n{stderr}"
        );
    }
}

#[test]
fn valid_files_pass_and_say_how_many() {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let ran = metrtest().arg("validate").arg(&scenarios).ran();
    ran.assert_code(0);
    assert!(ran.stdout.contains("valid"));
}

#[test]
fn a_byte_order_mark_and_known_references_are_valid() {
    let ran = validate_path(&fixtures("valid"));
    ran.assert_code(0);
    assert!(ran.stdout.contains("3 scenario(s)"), "{}", ran.stdout);
}

#[test]
fn with_gometr_replicas_a_network_link_names_one_replica() {
    let ran = validate_path(&fixtures("network_replicas"));
    let stderr = &ran.assert_code(2).stderr;
    assert!(stderr.contains("links.yaml:4:22"), "{stderr}");
    assert!(
        stderr.contains("unknown link 'checker->gometr'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("'checker->gometr-1', 'checker->gometr-2'"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("unknown link").count(), 1, "{stderr}");
}

#[test]
fn a_broken_environment_file_fails_validate_as_it_fails_run() {
    let ran = validate_path(&fixtures("broken_env"));
    let stderr = &ran.assert_code(2).stderr;
    assert!(stderr.contains("metrtest.yaml:2:"), "{stderr}");
    assert!(stderr.contains("replicas"), "{stderr}");
}

#[test]
fn a_missing_path_is_an_argument_error() {
    let ran = metrtest().args(["validate", "/no/such/place"]).ran();
    ran.assert_code(2);
    assert!(ran.stderr.contains("no such file or folder"));
}

#[test]
fn every_problem_of_a_file_is_told_at_its_own_position() {
    let ran = validate("several_problems.yaml");
    let stderr = &ran.assert_code(2).stderr;
    let positions: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .filter_map(|l| l.split_once("several_problems.yaml:").map(|(_, rest)| rest))
        .map(|l| l.split(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        positions,
        ["4:35", "8:21", "10:12", "12:25", "19:7", "21:27"],
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `method`?"), "{stderr}");
    assert!(stderr.contains("did you mean \"length\"?"), "{stderr}");
    assert!(stderr.contains("did you mean \"checker\"?"), "{stderr}");
    assert!(stderr.contains("error: 6 problem(s)"), "{stderr}");
}

#[test]
fn past_twenty_problems_the_rest_are_counted_not_shown() {
    let ran = validate("too_many_problems.yaml");
    let stderr = &ran.assert_code(2).stderr;
    assert_eq!(stderr.matches("is not a duration").count(), 20, "{stderr}");
    assert!(
        stderr.contains("… and 5 more problem(s) (showing the first 20)"),
        "{stderr}"
    );
    assert!(stderr.contains("error: 25 problem(s)"), "{stderr}");
}

#[test]
fn a_misspelt_name_gets_the_nearest_known_one() {
    for (file, position, hint) in [
        ("misspelt_key.yaml", ":6:7:", "did you mean \"status\"?"),
        (
            "misspelt_matcher.yaml",
            ":6:21:",
            "did you mean \"length\"?",
        ),
        ("misspelt_step_kind.yaml", ":4:5:", "did you mean `http`?"),
        (
            "misspelt_service.yaml",
            ":3:25:",
            "did you mean \"checker\"?",
        ),
        (
            "misspelt_link.yaml",
            ":3:22:",
            "did you mean 'checker->postgres'?",
        ),
    ] {
        let ran = validate(file);
        let stderr = &ran.assert_code_for(2, file).stderr;
        assert!(
            stderr.contains(&format!("{file}{position}")),
            "{file}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("= help: {hint}")),
            "{file}: {stderr}"
        );
    }
}

/// The whole of what `validate` prints for each broken file is kept beside it
/// (`broken/x.yaml` → `broken/x.stderr`), so a change of wording or position
/// shows in review. `METRTEST_BLESS=1` rewrites the files from the output.
#[test]
fn each_broken_file_prints_exactly_the_diagnostics_kept_beside_it() {
    let dir = fixtures("broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the broken fixtures are there");
    let mut differ = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        let ran = without_engine()
            .arg("validate")
            .arg(&name)
            .current_dir(&dir)
            .ran();
        let stderr = &ran.assert_code_for(2, format!("{name} is rejected")).stderr;
        differ.extend(expected::differs(&file.with_extension("stderr"), stderr));
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
