//! Finding scenario files and turning them into scenarios or positioned errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::diagnostic::Diagnostic;
use crate::expect::{Expect, HttpExpect};
use crate::files::{self, ReadError};
use crate::model::Scenario;
use crate::references::{self, Context};
use crate::span::{NodePath, SourceMap, Span};
use crate::template;

/// A scenario with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: PathBuf,
    /// The file's text: failures at run time show their line of it.
    pub source: Arc<str>,
    pub scenario: Scenario,
}

impl Loaded {
    /// The scenario's folder: JSON Schemas are read relative to it.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// A diagnostic pointing at `span` of this scenario's file.
    pub fn diagnostic(&self, span: Span, message: String) -> Diagnostic {
        Diagnostic::spanned(&self.file, &self.source, span, message)
    }
}

pub use crate::files::discover;

/// serde_yaml writes " at line L column C" into messages that have a position;
/// the diagnostic shows the position itself.
fn strip_position(message: &str) -> String {
    let re = regex::Regex::new(r" at line \d+ column \d+").expect("valid regex");
    re.replace_all(message, "").into_owned()
}

/// Where the key or value that an error about a whole node (a step, a retry,
/// an expectation) quotes is written at or below that node: read from the
/// source map, not searched for in the text.
fn culprit(map: &SourceMap, at: &NodePath, message: &str) -> Option<Span> {
    let token = message
        .split('"')
        .nth(1)
        .filter(|q| !q.is_empty() && message.matches('"').count() >= 2)?;
    map.quoted(at, token)
}

/// Reads and parses one scenario file; every problem found is returned.
pub fn load(file: &Path, context: &Context) -> Result<Loaded, Vec<Diagnostic>> {
    let text = files::read(file).map_err(|e| {
        vec![match e {
            ReadError::Refused(why) => Diagnostic::at(file, "", None, None, why),
            ReadError::NotUtf8 { line, column } => Diagnostic::at(
                file,
                "",
                Some(line),
                Some(column),
                "the file is not UTF-8 text: the first bad byte is here".into(),
            ),
        }]
    })?;
    parse(file, &text, context)
}

/// Parses scenario text; every problem found is returned.
pub fn parse(file: &Path, text: &str, context: &Context) -> Result<Loaded, Vec<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let map = SourceMap::of(text);
    let mut problems = template_problems(file, text);
    let de = serde_yaml::Deserializer::from_str(text);
    let mut scenario: Scenario = match serde_path_to_error::deserialize(de) {
        Ok(s) => s,
        Err(e) => {
            let at = node_path(e.path());
            problems.insert(0, yaml_problem(file, text, &map, &at, e.inner()));
            return Err(problems);
        }
    };
    // The typed parse lets a repeated key in a free-form map win silently.
    if let Err(e) = serde_yaml::from_str::<serde_yaml::Value>(text) {
        problems.insert(0, yaml_problem(file, text, &map, &NodePath::root(), &e));
        return Err(problems);
    }
    scenario.place(&map);
    let at = |path: NodePath| Diagnostic::spanned(file, text, map.key(&path), String::new());
    let root = NodePath::root();
    if scenario.name.trim().is_empty() {
        problems.push(Diagnostic {
            message: "name must not be empty".into(),
            ..at(root.key("name"))
        });
    }
    if scenario.steps.is_empty() {
        problems.push(Diagnostic {
            message: "a scenario needs at least one step".into(),
            ..at(root.key("steps"))
        });
    }
    let dir = file.parent().unwrap_or(Path::new("."));
    for (i, step) in scenario.steps.iter_mut().enumerate() {
        let at = root.key("steps").index(i);
        let fail_if = step.retry.as_mut().and_then(|r| r.fail_if.as_mut());
        let expects = [(&mut step.expect, at.key("expect"))]
            .into_iter()
            .chain(fail_if.map(|e| (e, at.key("retry").key("fail_if"))));
        for (expect, path) in expects {
            let Expect::Http(HttpExpect {
                json_schema: Some(schema),
                ..
            }) = expect
            else {
                continue;
            };
            let span = map.value(&path.key("json_schema"));
            match load_schema(&dir.join(&schema.file)) {
                Ok(validator) => schema.compiled(validator, span),
                Err(why) => problems.push(Diagnostic::spanned(
                    file,
                    text,
                    span,
                    format!("json_schema {:?}: {why}", schema.file),
                )),
            }
        }
    }
    problems.extend(references::problems(file, text, &map, &scenario, context));
    if problems.is_empty() {
        Ok(Loaded {
            file: file.to_path_buf(),
            source: Arc::from(text),
            scenario,
        })
    } else {
        Err(problems)
    }
}

/// The document path serde_path_to_error followed to an error.
fn node_path(path: &serde_path_to_error::Path) -> NodePath {
    use serde_path_to_error::Segment as S;
    path.iter()
        .fold(NodePath::root(), |at, segment| match segment {
            S::Seq { index } => at.index(*index),
            S::Map { key } => at.key(key.clone()),
            S::Enum { .. } | S::Unknown => at,
        })
}

/// A YAML or model error at its position; errors serde_yaml reports without
/// one are placed where their cause is written, else at 1:1.
fn yaml_problem(
    file: &Path,
    text: &str,
    map: &SourceMap,
    at: &NodePath,
    e: &serde_yaml::Error,
) -> Diagnostic {
    let message = strip_position(&e.to_string());
    // Where the deserializer was when it failed; serde's own location is the
    // fallback for errors outside the model (syntax).
    let location = if *at != NodePath::root() && map.has(at) {
        let span = culprit(map, at, &message).unwrap_or_else(|| map.key(at));
        Some((span.line, span.column))
    } else {
        e.location().map(|l| (l.line(), l.column()))
    };
    let (line, column, message) = match location {
        // libyaml's reader gives a byte offset, not a line: 1:1 would mislead.
        _ if message.starts_with("control characters are not allowed") => {
            control_character(text, &message)
        }
        Some((l, _)) if message.contains("duplicate entry with key") => {
            duplicate(text, &message, l)
        }
        Some((l, c)) => (Some(l), Some(c), message),
        None if message.contains("more than one document") => {
            let (line, column) = second_document(text);
            (
                line,
                column,
                "a scenario file holds one YAML document, but a second one starts here".into(),
            )
        }
        None if message.contains("repetition limit") || message.contains("recursion limit") => {
            let (line, column) = first_alias(text);
            (
                line,
                column,
                format!("{message}: the aliases (*name) expand to too many values"),
            )
        }
        None => (Some(1), Some(1), message),
    };
    Diagnostic::at(file, text, line, column, message)
}

/// A repeated key: serde_yaml points at its mapping; point at the repetition.
fn duplicate(text: &str, message: &str, from: usize) -> (Option<usize>, Option<usize>, String) {
    let (path, key) = message
        .split_once("duplicate entry with key ")
        .map(|(p, k)| (p.trim_end_matches(": "), k))
        .unwrap_or(("", message));
    let bare = key.trim_matches('"');
    let shown = if path.is_empty() {
        format!("duplicate key {key}: each key may appear once in a mapping")
    } else {
        format!("{path}: duplicate key {key}: each key may appear once in a mapping")
    };
    let quoted = regex::escape(bare);
    let re = regex::Regex::new(&format!(
        r#"(?:"{quoted}"|'{quoted}'|(?:^|[\s{{,])({quoted}))\s*:"#
    ))
    .expect("an escaped pattern");
    let mut seen = 0;
    for (i, line) in text.lines().enumerate().skip(from.saturating_sub(1)) {
        for m in re.captures_iter(line) {
            seen += 1;
            if seen == 2 {
                let start = m
                    .get(1)
                    .map_or(m.get(0).map_or(0, |g| g.start()), |g| g.start());
                return (Some(i + 1), Some(line[..start].chars().count() + 1), shown);
            }
        }
    }
    (Some(from), Some(1), shown)
}

/// The `---` (or `...`) that ends the first document.
fn second_document(text: &str) -> (Option<usize>, Option<usize>) {
    let mut content = false;
    for (i, line) in text.lines().enumerate() {
        let marker = line.starts_with("---") || line.starts_with("...");
        if marker && content {
            return (Some(i + 1), Some(1));
        }
        let trimmed = line.trim();
        if !marker && !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('%')
        {
            content = true;
        }
    }
    (Some(1), Some(1))
}

/// A character YAML does not allow (a NUL byte, an escape, …): libyaml
/// tells its byte offset (" at position N") and no line; point at it and
/// name it. The offset is checked against the text, and the first such
/// character found instead when it does not match.
fn control_character(text: &str, message: &str) -> (Option<usize>, Option<usize>, String) {
    let said = message
        .rsplit_once(" at position ")
        .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        .filter(|&offset| {
            text.get(offset..)
                .and_then(|t| t.chars().next())
                .is_some_and(forbidden)
        });
    let found = said.or_else(|| {
        text.char_indices()
            .find(|(_, c)| forbidden(*c))
            .map(|(i, _)| i)
    });
    let Some(offset) = found else {
        return (Some(1), Some(1), message.to_owned());
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let c = text[offset..]
        .chars()
        .next()
        .expect("a character at the offset");
    let shown = format!(
        "control characters are not allowed in a scenario file: U+{:04X} here",
        u32::from(c)
    );
    (Some(line), Some(column), shown)
}

/// What YAML 1.1's reader refuses (libyaml's printable set, inverted).
fn forbidden(c: char) -> bool {
    !matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// The first alias `*name` in the file.
fn first_alias(text: &str) -> (Option<usize>, Option<usize>) {
    let re = regex::Regex::new(r"(^|[\s\[{,:-])(\*[^\s,\]}]+)").expect("valid regex");
    for (i, line) in text.lines().enumerate() {
        if let Some(m) = re.captures(line).and_then(|c| c.get(2)) {
            return (Some(i + 1), Some(line[..m.start()].chars().count() + 1));
        }
    }
    (Some(1), Some(1))
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
    use crate::model::Action;

    fn problems(text: &str) -> Vec<Diagnostic> {
        parse(Path::new("s.yaml"), text, &Context::default()).expect_err("should be rejected")
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
        let loaded = parse(Path::new("s.yaml"), GOOD, &Context::default()).unwrap();
        let s = loaded.scenario;
        assert_eq!(s.steps.len(), 6);
        assert!(
            s.needs_own_stack(),
            "a docker step implies a stack of its own"
        );
        let Expect::Http(e) = &s.steps[0].expect else {
            panic!("an http step has http expectations")
        };
        assert_eq!(e.json.0.len(), 2);
        assert_eq!(s.steps[1].name, "docker stop gometr");
        let Expect::Metrics(e) = &s.steps[3].expect else {
            panic!("a metrics step has series expectations")
        };
        assert_eq!(e.series.len(), 2);
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
    fn statuses_are_checked_but_comparison_bounds_are_free() {
        let step = |expect: &str| {
            format!(
                "name: x\nsteps:\n  - http: {{ path: /a }}\n    expect: {{ status: {expect} }}\n"
            )
        };
        for good in [
            "200",
            "\"201\"",
            "{ lt: 600, gte: 99 }",
            "{ one_of: [200, 503] }",
            "\"{{ env.S }}\"",
        ] {
            assert!(
                parse(Path::new("s.yaml"), &step(good), &Context::default()).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "two hundred",
            "{ not_equals: 700 }",
            "{ one_of: [200, ok] }",
            "true",
        ] {
            let (_, _, message) = first(&step(bad));
            assert!(message.contains("not an HTTP status"), "{bad}: {message}");
        }
    }

    #[test]
    fn a_nul_byte_is_shown_at_its_own_line_and_column() {
        let text = "name: x\nsteps:\n  - sleep: 1s\n  - na\0me: y\n";
        assert_eq!(
            first(text),
            (
                Some(4),
                Some(7),
                "control characters are not allowed in a scenario file: U+0000 here".into()
            )
        );
        // After a character of several bytes the column still counts characters.
        let text = "name: café\u{1b}\nsteps: []\n";
        assert_eq!(first(text).0, Some(1));
        assert_eq!(first(text).1, Some(11));
    }

    #[test]
    fn a_diagnostic_shows_the_line_and_a_caret() {
        let p = problems("name: x\nsteps:\n  - sleep: soon\n").remove(0);
        let shown = p.to_string();
        assert!(shown.starts_with("s.yaml:3:"), "{shown}");
        assert!(shown.contains("3 |   - sleep: soon"), "{shown}");
        assert!(shown.contains('^'), "{shown}");
    }

    #[test]
    fn a_capture_used_before_its_step_runs_is_a_load_error_at_the_use() {
        let text = "name: x\nsteps:\n  - http: { path: '/a/{{ id }}' }\n  - http: { path: /b }\n    capture: { id: $.id }\n  - http: { path: '/c/{{ id }}' }\n";
        let all = problems(text);
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!((all[0].line, all[0].column), (Some(3), Some(23)));
        assert!(
            all[0].message.contains("used before it is captured"),
            "{}",
            all[0].message
        );
    }

    #[test]
    fn fail_if_takes_the_expectations_of_its_step_kind() {
        let step = |fail_if: &str| {
            format!(
                "name: x\nsteps:\n  - http: {{ path: /a }}\n    retry: {{ timeout: 5s, fail_if: {fail_if} }}\n    expect: {{ status: 200 }}\n"
            )
        };
        let loaded = parse(
            Path::new("s.yaml"),
            &step("{ json: { \"$.state\": down } }"),
            &Context::default(),
        )
        .expect("a valid fail_if");
        let retry = loaded.scenario.steps[0].retry.clone().expect("retry");
        assert_eq!(retry.fail_if.expect("fail_if").first_span().line, 4);
        for (bad, word) in [
            (
                "{ json: { \"$.state\": { greater: 1 } } }",
                "unknown matcher",
            ),
            ("{ rows: { \"0.n\": 1 } }", "does not apply to a http step"),
            ("{}", "at least one expectation"),
        ] {
            let (line, _, message) = first(&step(bad));
            assert_eq!(line, Some(4), "{bad}: {message}");
            assert!(message.contains(word), "{bad}: {message}");
        }
    }

    #[test]
    fn an_http_method_is_a_known_method_in_any_case() {
        let text = |m: &str| format!("name: x\nsteps:\n  - http: {{ path: /a, method: {m} }}\n");
        let loaded = parse(Path::new("s.yaml"), &text("post"), &Context::default()).unwrap();
        let Action::Http(h) = &loaded.scenario.steps[0].action else {
            panic!("an http step")
        };
        assert_eq!(h.method.as_str(), "POST");
        let (line, _, message) = first(&text("FETCH"));
        assert_eq!(line, Some(3));
        assert!(message.contains("\"FETCH\" is not one of GET"), "{message}");
    }

    #[test]
    fn every_step_matcher_and_capture_knows_its_line() {
        let s = parse(Path::new("s.yaml"), GOOD, &Context::default())
            .unwrap()
            .scenario;
        let lines: Vec<usize> = s.steps.iter().map(|st| st.span.line).collect();
        assert_eq!(lines, [5, 18, 19, 21, 25, 27]);
        let spans: Vec<usize> = s.steps[0]
            .expect
            .matchers()
            .iter()
            .map(|m| m.span.line)
            .collect();
        assert_eq!(spans, [11, 12, 14, 15]);
        assert_eq!(s.steps[0].capture[0].span.line, 17);
    }
}
