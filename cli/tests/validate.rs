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

#[test]
fn a_missing_path_is_an_argument_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .args(["validate", "/no/such/place"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file or folder"));
}
