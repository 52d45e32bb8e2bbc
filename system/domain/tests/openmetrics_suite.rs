//! The OpenMetrics project's parser conformance cases (tests/openmetrics/,
//! vendored with their licence): every valid exposition parses, every invalid
//! one is rejected. Failing cases are reported together, by name.

use std::path::{Path, PathBuf};

use metr_domain::openmetrics::parse;

/// Cases this parser is known to get wrong, each with the reason. Empty: all pass.
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

struct Case {
    name: String,
    metrics: String,
    should_parse: bool,
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openmetrics/parsers");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let spec: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("test.json")).unwrap())
                    .unwrap_or_else(|e| panic!("{name}/test.json: {e}"));
            assert_eq!(spec["type"], "text", "{name}: only text cases exist");
            let file = spec["file"].as_str().unwrap_or("metrics");
            Case {
                metrics: std::fs::read_to_string(dir.join(file)).unwrap(),
                should_parse: spec["shouldParse"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("{name}: no shouldParse")),
                name,
            }
        })
        .collect()
}

#[test]
fn every_conformance_case_parses_or_is_rejected_as_it_declares() {
    let cases = cases();
    assert_eq!(cases.len(), 211, "the vendored suite is complete");
    let mut failures = Vec::new();
    for case in &cases {
        let verdict = match (parse(&case.metrics), case.should_parse) {
            (Ok(_), true) | (Err(_), false) => None,
            (Err(e), true) => Some(format!("valid but rejected: {e}")),
            (Ok(samples), false) => Some(format!("invalid but parsed ({} samples)", samples.len())),
        };
        let expected = EXPECTED_FAILURES.iter().any(|(name, _)| *name == case.name);
        match (verdict, expected) {
            (Some(v), false) => failures.push(format!("{}: {v}", case.name)),
            (None, true) => failures.push(format!(
                "{}: passes now, remove it from EXPECTED_FAILURES",
                case.name
            )),
            _ => {}
        }
    }
    let passed = cases.len() - failures.len();
    assert!(
        failures.is_empty(),
        "{passed}/{} cases pass; failing:\n{}",
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn valid_cases_yield_the_samples_they_show() {
    let cases = cases();
    let find = |name: &str| cases.iter().find(|c| c.name == name).unwrap();
    let escaping = parse(&find("escaping").metrics).unwrap();
    assert_eq!(escaping[0].labels["foo"], "b\"a\nr");
    assert_eq!(escaping[1].labels["foo"], "b\\a\\z");
    let exemplars = parse(&find("histogram_exemplars").metrics).unwrap();
    let inf = exemplars.iter().find(|s| s.labels["le"] == "+Inf").unwrap();
    assert_eq!(
        (inf.value, inf.labels.len()),
        (3.0, 1),
        "the exemplar is dropped: {inf:?}"
    );
    let timestamps = parse(&find("timestamps").metrics).unwrap();
    assert_eq!(timestamps[2].timestamp_ms, Some(1100));
    assert_eq!(timestamps[4].timestamp_ms, Some(1_500_000));
    let unit = parse(&find("counter_unit").metrics).unwrap();
    assert_eq!(unit[1].name, "cc_seconds_created", "_created is stored");
    assert_eq!(unit[1].value, 123.456);
}
