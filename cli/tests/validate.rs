//! `metrtest validate` on broken files: each mistake is named at file:line:column,
//! exit code 2, with no engine involved.

use std::path::Path;
use std::process::Command;

fn validate(file: &str) -> (i32, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/broken")
        .join(file);
    let out = Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .arg("validate")
        .arg(&path)
        // Proves no engine is needed: any attempt to reach one would fail.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("run metrtest");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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
        let (code, stderr) = validate(file);
        assert_eq!(code, 2, "{file}: {stderr}");
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
    let out = Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .arg("validate")
        .arg(&scenarios)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

fn validate_path(path: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .arg("validate")
        .arg(path)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("run metrtest");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_byte_order_mark_and_known_references_are_valid() {
    let valid = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid");
    let (code, stdout, stderr) = validate_path(&valid);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("3 scenario(s)"), "{stdout}");
}

#[test]
fn with_gometr_replicas_a_network_link_names_one_replica() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/network_replicas");
    let (code, _, stderr) = validate_path(&folder);
    assert_eq!(code, 2, "{stderr}");
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
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken_env");
    let (code, _, stderr) = validate_path(&folder);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("metrtest.yaml:2:"), "{stderr}");
    assert!(stderr.contains("replicas"), "{stderr}");
}

#[test]
fn a_missing_path_is_an_argument_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .args(["validate", "/no/such/place"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file or folder"));
}

#[test]
fn every_problem_of_a_file_is_told_at_its_own_position() {
    let (code, stderr) = validate("several_problems.yaml");
    assert_eq!(code, 2, "{stderr}");
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
    let (code, stderr) = validate("too_many_problems.yaml");
    assert_eq!(code, 2, "{stderr}");
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
        let (code, stderr) = validate(file);
        assert_eq!(code, 2, "{file}: {stderr}");
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken");
    let bless = std::env::var_os("METRTEST_BLESS").is_some();
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
        let out = Command::new(env!("CARGO_BIN_EXE_metrtest"))
            .arg("validate")
            .arg(&name)
            .current_dir(&dir)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("NO_COLOR", "1")
            .output()
            .expect("run metrtest");
        assert_eq!(out.status.code(), Some(2), "{name} is rejected");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let expected_path = file.with_extension("stderr");
        if bless {
            std::fs::write(&expected_path, &stderr).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} is missing", expected_path.display()));
        if expected != stderr {
            differ.push(format!(
                "{name}:\n--- expected\n{expected}--- actual\n{stderr}"
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
