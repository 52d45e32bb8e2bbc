//! A step's expectations and captures checked against what it observed. Pure:
//! no engine, no network, so every rule is unit-tested here.

use serde_json::Value;

use crate::runner::observation::{HttpObservation, Observation};
use crate::scenario::capture::{Capture, CaptureSource};
use crate::scenario::expect::{Expect, HttpExpect, MetricsExpect, SqlExpect};
use crate::scenario::matcher::Matcher;
use crate::scenario::span::Span;
use crate::scenario::template::{TemplateError, Vars};

/// Why expectations could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum ExpectError {
    /// A template in a matcher names a value that does not exist.
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("json_schema {file}: not compiled at load")]
    SchemaNotCompiled { file: String },
    /// A `logs` step's `matches`, once its templates are rendered.
    #[error("invalid regex: {0}")]
    Regex(#[from] regex::Error),
    #[error("a logs step takes contains or matches")]
    NoLogsPattern,
}

/// An expectation that did not hold, or a capture that found nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What was checked: `status`, `json $.data[0]`, `capture first`.
    pub what: String,
    /// Expected against actual, or why nothing could be checked.
    pub text: String,
    /// Where the expectation is written (unknown: the step's position is used).
    pub span: Span,
}

impl Finding {
    fn new(what: impl Into<String>, text: impl Into<String>, span: Span) -> Finding {
        Finding {
            what: what.into(),
            text: text.into(),
            span,
        }
    }

    /// `what: text`, the one-line form.
    pub fn line(&self) -> String {
        format!("{}: {}", self.what, self.text)
    }
}

/// Every expectation of `expect` that `seen` does not meet. `Err` is a problem
/// that prevented checking (a template naming an unknown value).
pub fn check(
    expect: &Expect,
    seen: &Observation,
    vars: &Vars,
) -> Result<Vec<Finding>, ExpectError> {
    let mut out = Vec::new();
    match (expect, seen) {
        (Expect::Nothing, _) => {}
        (Expect::Http(e), Observation::Http(h)) => http(e, h, vars, &mut out)?,
        (Expect::Sql(e), Observation::Sql(table)) => sql(e, table, vars, &mut out)?,
        (Expect::Metrics(e), Observation::Metrics(samples)) => {
            metrics(e, samples, vars, &mut out)?;
        }
        (_, _) => out.push(Finding::new(
            "expect",
            "these expectations do not apply to what the step observed",
            expect.first_span(),
        )),
    }
    Ok(out)
}

/// Checks one matcher, adding a finding for each check that failed.
fn matcher(
    what: &str,
    m: &Matcher,
    actual: Option<&Value>,
    vars: &Vars,
    out: &mut Vec<Finding>,
) -> Result<(), ExpectError> {
    for mismatch in m.evaluate(actual, vars)? {
        out.push(Finding::new(what, mismatch.to_string(), m.span));
    }
    Ok(())
}

fn http(
    e: &HttpExpect,
    h: &HttpObservation,
    vars: &Vars,
    out: &mut Vec<Finding>,
) -> Result<(), ExpectError> {
    if let Some(m) = &e.status {
        matcher("status", m, Some(&Value::from(h.status)), vars, out)?;
    }
    for (name, m) in &e.headers.0 {
        let actual = h.header(name).map(|v| Value::String(v.to_owned()));
        matcher(&format!("header {name}"), m, actual.as_ref(), vars, out)?;
    }
    if let Some(m) = &e.body {
        matcher("body", m, Some(&Value::String(h.body.clone())), vars, out)?;
    }
    if let Some(m) = &e.duration_ms {
        let ms = Value::from(h.elapsed_ms.round());
        matcher("duration_ms", m, Some(&ms), vars, out)?;
    }
    if e.json.0.is_empty() && e.json_schema.is_none() {
        return Ok(());
    }
    let doc = match h.json() {
        Ok(doc) => doc,
        Err(why) => {
            let span = e.json.0.first().map(|(_, m)| m.span).unwrap_or_default();
            out.push(Finding::new("json", why.to_string(), span));
            return Ok(());
        }
    };
    for (path, m) in &e.json.0 {
        let what = format!("json {}", path.text);
        matcher(&what, m, path.select(&doc).as_ref(), vars, out)?;
    }
    if let Some(schema) = &e.json_schema {
        let validator = schema
            .validator()
            .ok_or_else(|| ExpectError::SchemaNotCompiled {
                file: schema.file.clone(),
            })?;
        for problem in validator.iter_errors(&doc).take(5) {
            let text = format!("{problem} at {}", problem.instance_path);
            out.push(Finding::new(
                format!("json_schema {}", schema.file),
                text,
                schema.span,
            ));
        }
    }
    Ok(())
}

fn sql(
    e: &SqlExpect,
    table: &Value,
    vars: &Vars,
    out: &mut Vec<Finding>,
) -> Result<(), ExpectError> {
    if let Some(m) = &e.row_count {
        let count = table.as_array().map_or(0, Vec::len);
        matcher("row_count", m, Some(&Value::from(count)), vars, out)?;
    }
    for (c, m) in &e.rows.0 {
        let actual = table.get(c.row).and_then(|r| r.get(&c.column));
        matcher(
            &format!("rows {}.{}", c.row, c.column),
            m,
            actual,
            vars,
            out,
        )?;
    }
    Ok(())
}

fn metrics(
    e: &MetricsExpect,
    samples: &[metr_domain::exposition::ParsedSample],
    vars: &Vars,
    out: &mut Vec<Finding>,
) -> Result<(), ExpectError> {
    for (selector, m) in &e.series {
        let what = selector.to_string();
        match selector.sum(samples) {
            Ok(sum) => matcher(&what, m, Some(&Value::from(sum)), vars, out)?,
            Err(why) => out.push(Finding::new(what, why.to_string(), m.span)),
        }
    }
    Ok(())
}

/// The values the step's captures select, or the first capture that found nothing.
pub fn capture(captures: &[Capture], seen: &Observation) -> Result<Vec<(String, Value)>, Finding> {
    let mut out = Vec::new();
    for c in captures {
        let nothing = |why: String| Finding::new(format!("capture {}", c.name), why, c.span);
        let value = match (&c.source, seen) {
            (CaptureSource::Header(name), Observation::Http(h)) => {
                h.header(name).map(|v| Value::String(v.to_owned()))
            }
            (CaptureSource::Json(path), Observation::Http(h)) => {
                path.select(&h.json().map_err(|e| nothing(e.to_string()))?)
            }
            (CaptureSource::Json(path), Observation::Sql(table)) => path.select(table),
            (CaptureSource::Series(selector), Observation::Metrics(samples)) => {
                let sum = selector.sum(samples).map_err(|e| nothing(e.to_string()))?;
                Some(Value::from(sum))
            }
            _ => return Err(nothing("this step observed nothing to capture from".into())),
        };
        let value =
            value.ok_or_else(|| nothing(format!("{} selected nothing", c.source_text())))?;
        out.push((c.name.clone(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::scenario::load::parse;
    use crate::scenario::model::Step;
    use crate::scenario::references::Context;

    /// The first step of a scenario whose steps are `steps` (YAML, indented by 2).
    fn step(steps: &str) -> Step {
        let text = format!("name: t\nsteps:\n{steps}");
        let loaded = parse(Path::new("t.yaml"), &text, &Context::default()).expect("valid");
        loaded.scenario.steps.into_iter().next().expect("a step")
    }

    fn response(status: u16, body: &str) -> Observation {
        Observation::Http(HttpObservation {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            elapsed_ms: 12.4,
            ..HttpObservation::default()
        })
    }

    fn findings(step: &Step, seen: &Observation) -> Vec<Finding> {
        check(&step.expect, seen, &Vars::default()).expect("checkable")
    }

    const HTTP: &str = "  - http: { path: /a }\n    expect:\n      status: 200\n      headers: { Content-Type: { contains: json } }\n      json:\n        \"$.data[0].status\": up\n        \"$.data\": { length_gte: 1 }\n";

    #[test]
    fn a_response_that_meets_every_expectation_has_no_findings() {
        let s = step(HTTP);
        let seen = response(200, r#"{"data":[{"status":"up"}]}"#);
        assert_eq!(findings(&s, &seen), vec![]);
    }

    #[test]
    fn each_failed_expectation_points_at_its_own_line() {
        let s = step(HTTP);
        let seen = response(503, r#"{"data":[{"status":"down"}]}"#);
        let found = findings(&s, &seen);
        let at: Vec<(String, usize)> = found
            .iter()
            .map(|f| (f.what.clone(), f.span.line))
            .collect();
        assert_eq!(
            at,
            vec![("status".into(), 5), ("json $.data[0].status".into(), 8)]
        );
        assert_eq!(found[0].text, "expected equals 200, actual 503");
        assert_eq!(found[1].span.column, 9);
    }

    #[test]
    fn a_body_that_is_not_json_is_one_finding_at_the_json_expectations() {
        let s = step(HTTP);
        let found = findings(&s, &response(200, "<html>"));
        assert_eq!(found.len(), 1);
        assert!(found[0].text.contains("not JSON"), "{found:?}");
        assert_eq!(found[0].span.line, 8);
    }

    #[test]
    fn a_schema_compiled_at_load_is_checked_at_its_line_even_once_its_file_is_gone() {
        let dir = std::env::temp_dir().join(format!("metrtest-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let schema = dir.join("page.json");
        std::fs::write(&schema, r#"{"type":"object","required":["data"]}"#).unwrap();
        let text =
            "name: t\nsteps:\n  - http: { path: /a }\n    expect:\n      json_schema: page.json\n";
        let loaded = parse(&dir.join("t.yaml"), text, &Context::default()).expect("valid");
        std::fs::remove_dir_all(&dir).unwrap();
        let s = &loaded.scenario.steps[0];
        assert_eq!(findings(s, &response(200, r#"{"data":[]}"#)), vec![]);
        let found = findings(s, &response(200, r#"{"items":[]}"#));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].what, "json_schema page.json");
        assert!(
            found[0].text.contains("\"data\" is a required property"),
            "{found:?}"
        );
        assert_eq!((found[0].span.line, found[0].span.column), (5, 20));
    }

    #[test]
    fn sql_rows_and_counts_are_checked_by_cell() {
        let s =
            step("  - sql: SELECT 1\n    expect: { row_count: 1, rows: { \"0.n\": { gt: 2 } } }\n");
        assert_eq!(findings(&s, &Observation::Sql(json!([{"n": 3}]))), vec![]);
        let found = findings(&s, &Observation::Sql(json!([{"n": 1}, {"n": 5}])));
        let what: Vec<&str> = found.iter().map(|f| f.what.as_str()).collect();
        assert_eq!(what, ["row_count", "rows 0.n"]);
    }

    #[test]
    fn series_are_summed_and_a_missing_series_says_so() {
        let s = step(
            "  - metrics: { service: checker }\n    expect:\n      'up{job=\"a\"}': 2\n      missing_total: { gt: 0 }\n",
        );
        let samples =
            metr_domain::exposition::parse("up{job=\"a\",i=\"1\"} 1\nup{job=\"a\",i=\"2\"} 1\n")
                .expect("exposition");
        let found = findings(&s, &Observation::Metrics(samples));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].what, "missing_total");
        assert_eq!(found[0].span.line, 6);
    }

    #[test]
    fn captures_take_headers_json_and_report_what_selected_nothing() {
        let s = step(
            "  - http: { path: /a }\n    capture: { id: $.id, kind: 'header:Content-Type', gone: $.none }\n",
        );
        let seen = response(200, r#"{"id": 7}"#);
        let err = capture(&s.capture, &seen).expect_err("$.none selects nothing");
        assert_eq!(err.what, "capture gone");
        assert_eq!(err.span.line, 4);
        let ok = capture(&s.capture[..2], &seen).expect("both found");
        assert_eq!(
            ok,
            vec![
                ("id".into(), json!(7)),
                ("kind".into(), json!("application/json"))
            ]
        );
    }
}
