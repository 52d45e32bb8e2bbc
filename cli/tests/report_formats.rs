//! The report formats as their consumers read them. `--format tap` goes
//! through a real TAP consumer: tap.py from PyPI (with PyYAML, so that the
//! YAML diagnostics are parsed too), in a virtual environment under the
//! target folder. Perl's `prove` is no judge here: its TAP::Parser (3.44)
//! stops at `TAP version 14` ("we don't know about versions later than 13").
//! The TAP comes from `report merge --format tap` over the two shard reports
//! in tests/fixtures/reports/, so no engine is needed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The consumer's version, pinned so that what it accepts does not move.
const TAP_PY: &str = "tap.py[yaml]==3.2.1";

/// Reads TAP on stdin with tap.py's parser; prints the top level and each
/// commented subtest (its lines de-indented, parsed as a document of its
/// own) as JSON: version, plan, test points with their YAML blocks.
const CONSUMER: &str = r##"
import json, sys
from tap.parser import Parser

def parse(text):
    out = {"version": None, "plan": None, "points": []}
    for line in Parser().parse_text(text):
        if line.category == "version":
            out["version"] = line.version
        elif line.category == "plan":
            out["plan"] = line.expected_tests
        elif line.category == "test":
            out["points"].append({
                "ok": line.ok, "number": line.number,
                "description": line.description, "skip": line.skip,
                "directive": line.directive.text, "yaml": line.yaml_block,
            })
    return out

def subtests(text):
    blocks, name = {}, None
    for line in text.splitlines():
        if line.startswith("# Subtest: "):
            name = line[len("# Subtest: "):]
            blocks[name] = []
        elif name is not None and line.startswith("    "):
            blocks[name].append(line[4:])
        else:
            name = None
    return {n: parse("TAP version 14\n" + "\n".join(b) + "\n") for n, b in blocks.items()}

text = sys.stdin.read()
print(json.dumps({"top": parse(text), "subtests": subtests(text)}, default=str))
"##;

/// The virtual environment's python with tap.py installed (made once).
fn consumer_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tap-consumer-venv");
        let python = venv.join("bin/python");
        let ready = venv.join(".installed");
        if std::fs::read_to_string(&ready).ok().as_deref() == Some(TAP_PY) {
            return python;
        }
        let run = |cmd: &mut Command| {
            let out = cmd
                .output()
                .expect("python3 runs (scripts/bootstrap installs it)");
            assert!(
                out.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            TAP_PY,
        ]));
        std::fs::write(&ready, TAP_PY).unwrap();
        python
    })
}

/// What tap.py read in `tap`.
fn consume(tap: &str) -> Value {
    let mut child = Command::new(consumer_python())
        .args(["-c", CONSUMER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the consumer starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(tap.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the consumer's JSON")
}

/// `--format tap` of the two shards merged, from the workspace root.
fn merged_tap() -> String {
    let cli = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reports = cli.join("tests/fixtures/reports");
    let out = Command::new(env!("CARGO_BIN_EXE_metrtest"))
        .args(["report", "merge", "--format", "tap"])
        .arg(reports.join("shard-1.json"))
        .arg(reports.join("shard-2.json"))
        .current_dir(cli.parent().unwrap_or(cli))
        .env_remove("GITHUB_ACTIONS")
        .output()
        .expect("metrtest runs");
    assert_eq!(out.status.code(), Some(1), "a scenario failed");
    String::from_utf8(out.stdout).expect("TAP is UTF-8")
}

fn points(document: &Value) -> &Vec<Value> {
    document["points"].as_array().expect("test points")
}

#[test]
fn tap_py_reads_a_point_per_scenario_with_the_failure_not_ok() {
    let tap = merged_tap();
    assert_eq!(tap.lines().next(), Some("TAP version 14"));
    let read = consume(&tap);
    let top = &read["top"];
    assert_eq!(top["version"], 14, "{tap}");
    assert_eq!(top["plan"], 4, "{tap}");
    let points = points(top);
    let verdicts: Vec<(bool, &str)> = points
        .iter()
        .map(|p| {
            (
                p["ok"].as_bool().unwrap(),
                p["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            (false, "- fixture - expects 404 where the API answers 200"),
            (
                true,
                "- fixture - fails on its first run and passes on retry 1"
            ),
            (true, "- fixture - the API answers its health check"),
            (
                true,
                "- fixture - sleeps for a minute, to be killed meanwhile"
            ),
        ],
        "{tap}"
    );
    let failure = &points[0]["yaml"];
    assert_eq!(
        failure["at"]["file"],
        "cli/tests/fixtures/failing/wrong_status.yaml"
    );
    assert_eq!(failure["at"]["line"], 5);
    assert!(failure["logs"]["api"].is_string(), "{failure}");
}

#[test]
fn tap_py_reads_each_subtest_with_its_plan_and_the_failed_step_s_diagnostics() {
    let tap = merged_tap();
    let read = consume(&tap);
    let subtests = read["subtests"].as_object().expect("subtests");
    assert_eq!(subtests.len(), 4, "{tap}");
    let flaky = &subtests["fixture - fails on its first run and passes on retry 1"];
    assert_eq!(flaky["plan"], 3);
    assert!(points(flaky).iter().all(|p| p["ok"] == true), "{tap}");

    let failed = &subtests["fixture - expects 404 where the API answers 200"];
    assert_eq!(failed["plan"], 1);
    let step = &points(failed)[0];
    assert_eq!(step["ok"], false, "{tap}");
    let yaml = &step["yaml"];
    assert_eq!(yaml["message"], "status did not hold");
    assert_eq!(
        (yaml["at"]["line"].as_u64(), yaml["at"]["column"].as_u64()),
        (Some(5), Some(7))
    );
    assert_eq!(yaml["status"], 200);
    assert_eq!(
        yaml["curl"], "curl 'http://127.0.0.1:49153/api/v1/checks?limit=1'",
        "the request to paste, from the JSON report's curl"
    );
    assert_eq!(
        yaml["mismatches"][0],
        "status: expected equals 404, actual 200"
    );
    let shown = yaml["failure"].as_str().unwrap();
    assert!(
        shown.contains("5 |       status: 404\n  |       ^ expected equals 404, actual 200"),
        "the source line, caret and expected/actual as the terminal shows them: {shown}"
    );
}
