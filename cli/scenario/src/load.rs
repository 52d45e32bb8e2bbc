//! Finding scenario files and turning them into scenarios or positioned errors.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::Scenario;
use crate::template;

/// A scenario with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: PathBuf,
    pub scenario: Scenario,
}

/// A problem in a scenario file, at a position when one is known.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// The offending line of the file, shown under the message.
    pub source_line: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let (Some(line), Some(text)) = (self.line, &self.source_line) {
            let gutter = line.to_string().len();
            write!(f, "\n{:gutter$} |\n{line} | {text}", "")?;
            if let Some(column) = self.column {
                write!(f, "\n{:gutter$} | {:>width$}", "", "^", width = column)?;
            }
        }
        Ok(())
    }
}

impl Diagnostic {
    fn at(
        file: &Path,
        text: &str,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    ) -> Diagnostic {
        // A parser error at the end of the file points past the last line:
        // show the end of the last line instead.
        let count = text.lines().count();
        let (line, column) = match line {
            Some(l) if l > count && count > 0 => {
                let last = text.lines().last().map_or(0, str::len);
                (Some(count), Some(last + 1))
            }
            other => (other, column),
        };
        let source_line = line
            .and_then(|l| text.lines().nth(l.saturating_sub(1)))
            .map(str::to_owned);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message,
            source_line,
        }
    }
}

/// Scenario files under the given paths: files as given, folders searched
/// recursively for `*.yaml`/`*.yml` (the environment file excluded), sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
        } else if path.is_dir() {
            walk(path, &mut files).map_err(|e| format!("{}: {e}", path.display()))?;
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && path.file_name().is_some_and(|n| n != "metrtest.yaml")
        {
            files.push(path);
        }
    }
    Ok(())
}

/// serde_yaml writes " at line L column C" into messages that have a position;
/// the diagnostic shows the position itself.
fn strip_position(message: &str) -> String {
    let re = regex::Regex::new(r" at line \d+ column \d+").expect("valid regex");
    re.replace_all(message, "").into_owned()
}

/// Position of the first occurrence of `needle`, for checks made after parsing.
fn locate(text: &str, needle: &str) -> (Option<usize>, Option<usize>) {
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find(needle) {
            return (Some(i + 1), Some(col + 1));
        }
    }
    (None, None)
}

/// Errors raised for a whole step point at the step; when the message quotes
/// the offending key, point at that key instead (searching from the step on).
fn refine(
    text: &str,
    message: &str,
    line: Option<usize>,
    column: Option<usize>,
) -> (Option<usize>, Option<usize>) {
    let Some(start) = line else {
        return (line, column);
    };
    let quoted = message
        .split('"')
        .nth(1)
        .filter(|q| !q.is_empty() && message.matches('"').count() >= 2);
    let Some(token) = quoted else {
        return (line, column);
    };
    for (i, l) in text.lines().enumerate().skip(start - 1).take(40) {
        if let Some(col) = l.find(token) {
            return (Some(i + 1), Some(col + 1));
        }
    }
    (line, column)
}

/// Parses one scenario file; every problem found is returned.
pub fn load(file: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        vec![Diagnostic::at(
            file,
            "",
            None,
            None,
            format!("cannot read: {e}"),
        )]
    })?;
    parse(file, &text)
}

pub fn parse(file: &Path, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let mut problems = template_problems(file, text);
    let scenario: Scenario = match serde_yaml::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (Some(l.line()), Some(l.column())))
                .unwrap_or((None, None));
            let message = strip_position(&e.to_string());
            let (line, column) = refine(text, &message, line, column);
            problems.insert(0, Diagnostic::at(file, text, line, column, message));
            return Err(problems);
        }
    };
    if scenario.name.trim().is_empty() {
        let (line, column) = locate(text, "name:");
        problems.push(Diagnostic::at(
            file,
            text,
            line,
            column,
            "name must not be empty".into(),
        ));
    }
    if scenario.steps.is_empty() {
        let (line, column) = locate(text, "steps:");
        problems.push(Diagnostic::at(
            file,
            text,
            line,
            column,
            "a scenario needs at least one step".into(),
        ));
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    for step in &scenario.steps {
        if let Some(schema) = &step.expect.json_schema
            && let Err(why) = load_schema(&dir.join(schema))
        {
            let (line, column) = locate(text, schema);
            problems.push(Diagnostic::at(
                file,
                text,
                line,
                column,
                format!("json_schema {schema:?}: {why}"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(Loaded {
            file: file.to_path_buf(),
            scenario,
        })
    } else {
        Err(problems)
    }
}

/// Unclosed or empty `{{ }}` anywhere in the file.
fn template_problems(file: &Path, text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find("{{")
            && let Err(why) = template::check_syntax(&line[col..])
        {
            out.push(Diagnostic::at(file, text, Some(i + 1), Some(col + 1), why));
        }
    }
    out
}

/// Reads and compiles a JSON Schema file.
pub fn load_schema(path: &Path) -> Result<jsonschema::Validator, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let schema: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    jsonschema::validator_for(&schema).map_err(|e| format!("not a valid JSON Schema: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Diagnostic> {
        parse(Path::new("s.yaml"), text).expect_err("should be rejected")
    }

    fn first(text: &str) -> (Option<usize>, Option<usize>, String) {
        let p = problems(text).remove(0);
        (p.line, p.column, p.message)
    }

    const GOOD: &str = r#"
name: gometr health checks are recorded
tags: [smoke]
steps:
  - name: checks show gometr up
    http:
      path: /api/v1/checks
      query: { target: gometr, limit: 5, label: [a=b, c=d] }
    retry: { timeout: 30s, interval: 500ms }
    expect:
      status: 200
      headers: { content-type: { contains: application/json } }
      json:
        "$.status": success
        "$.data": { length_gte: 1 }
    capture:
      first: "$.data[0].checked_at"
  - docker: { stop: gometr }
  - sql: "SELECT count(*) AS n FROM samples"
    expect: { rows: { "0.n": { gt: 0 } }, row_count: 1 }
  - metrics: { service: checker }
    expect:
      'checker_samples_written_total': { gt: 0 }
      'checker_scrapes_total{result="success"}': { gte: "{{ first }}" }
  - logs: { service: checker, contains: database }
    retry: { timeout: 5s }
  - sleep: 2s
"#;

    #[test]
    fn the_documented_example_parses() {
        let loaded = parse(Path::new("s.yaml"), GOOD).unwrap();
        let s = loaded.scenario;
        assert_eq!(s.steps.len(), 6);
        assert!(
            s.needs_own_stack(),
            "a docker step implies a stack of its own"
        );
        assert_eq!(s.steps[0].expect.json.0.len(), 2);
        assert_eq!(s.steps[1].name, "docker stop gometr");
        assert_eq!(s.steps[3].expect.series.len(), 2);
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let (line, column, message) = first(
            "name: x\nsteps:\n  - http: { path: /a }\n    expect: { status: 200, stauts: 1 }\n",
        );
        assert_eq!(line, Some(4));
        assert!(column.is_some());
        assert!(message.contains("stauts"), "{message}");

        let (line, _, message) = first(
            "name: x\nsteps:\n  - http: { path: /a }\n    expect:\n      json:\n        \"$.data[\": 1\n",
        );
        assert_eq!(line, Some(6), "{message}");
        assert!(message.contains("JSONPath"), "{message}");

        let (line, _, message) = first(
            "name: x\nsteps:\n  - http: { path: /a }\n    expect: { status: { greater: 1 } }\n",
        );
        assert_eq!(line, Some(4));
        assert!(message.contains("unknown matcher"), "{message}");

        let (line, _, message) = first("name: x\nsteps:\n  - sleep: soon\n");
        assert_eq!(line, Some(3));
        assert!(message.contains("duration"), "{message}");
    }

    #[test]
    fn structural_mistakes_are_explained() {
        for (text, word) in [
            ("steps: []\n", "name"),
            ("name: x\nsteps: []\n", "at least one step"),
            (
                "name: x\nsteps:\n  - http: { path: /a }\n    sql: SELECT 1\n",
                "exactly one action",
            ),
            (
                "name: x\nsteps:\n  - sql: SELECT 1\n    expect: { status: 200 }\n",
                "does not apply",
            ),
            (
                "name: x\nsteps:\n  - docker: { stop: a, start: b }\n",
                "exactly one of stop",
            ),
            (
                "name: x\nsteps:\n  - logs: { service: a }\n",
                "contains or matches",
            ),
            (
                "name: x\nsteps:\n  - http: { path: /a, methd: GET }\n",
                "methd",
            ),
            (
                "name: x\nsteps:\n  - http: { path: /a }\n    expect: { json_schema: missing.json }\n",
                "json_schema",
            ),
            (
                "name: x\nsteps:\n  - http: { path: '/a?x={{ y' }\n",
                "unclosed",
            ),
            (
                "name: x\nsteps:\n  - http: { path: /a }\n    capture: { a: 'not a path' }\n",
                "JSONPath",
            ),
            (
                "name: x\ntimeout: forever\nsteps:\n  - sleep: 1s\n",
                "duration",
            ),
            ("name: x\nstep:\n  - sleep: 1s\n", "step"),
        ] {
            let all = problems(text);
            assert!(
                all.iter().any(|p| p.message.contains(word)),
                "{text:?}: {all:?}"
            );
            assert!(
                all.iter().all(|p| p.line.is_some()),
                "{text:?} lacks a position: {all:?}"
            );
        }
    }

    #[test]
    fn a_diagnostic_shows_the_line_and_a_caret() {
        let p = problems("name: x\nsteps:\n  - sleep: soon\n").remove(0);
        let shown = p.to_string();
        assert!(shown.starts_with("s.yaml:3:"), "{shown}");
        assert!(shown.contains("3 |   - sleep: soon"), "{shown}");
        assert!(shown.contains('^'), "{shown}");
    }
}
