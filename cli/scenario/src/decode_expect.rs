//! Reading a step's `expect` (and `retry.fail_if`), its matchers and its
//! captures from the parsed tree, each problem at its own key or value.

use serde_json::Value;

use crate::capture::Capture;
use crate::decode::{Decoder, to_json};
use crate::error::{LoadError, Problem};
use crate::expect::{
    Expect, HTTP_KEYS, HttpExpect, JsonSchema, MetricsExpect, SQL_KEYS, SqlExpect,
};
use crate::matcher::{Check, KEYWORDS, Matcher};
use crate::model::{Action, Cell, Ordered, Path};
use crate::selector::Selector;
use crate::span::{NodePath, Span};
use crate::suggest::{self, quoted};
use crate::template;
use crate::yaml::{Kind, Node};

/// Expectations as written, before the step kind says which keys apply; in
/// a `metrics` step every other key is a series selector.
#[derive(Debug, Default)]
pub(crate) struct RawExpect {
    pub status: Option<Matcher>,
    headers: Ordered<String, Matcher>,
    json: Ordered<Path, Matcher>,
    body: Option<Matcher>,
    duration_ms: Option<Matcher>,
    json_schema: Option<JsonSchema>,
    rows: Ordered<Cell, Matcher>,
    row_count: Option<Matcher>,
    series: Vec<(Selector, Matcher)>,
    /// The known keys written, where.
    keys: Vec<(&'static str, Span)>,
    /// Where each series selector is written.
    series_at: Vec<(String, Span)>,
    /// Whether a part could not be read (its problems are told already).
    pub broken: bool,
}

impl RawExpect {
    /// Where `key` is written, if it is.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, s)| *s)
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.series.is_empty()
    }
}

impl Decoder<'_> {
    /// The expectations of `node` (absent or null: none).
    pub(crate) fn raw_expect(&mut self, node: Option<&Node>, path: &NodePath) -> RawExpect {
        let mut e = RawExpect::default();
        let Some(node) = node.filter(|n| !n.is_null()) else {
            return e;
        };
        let Kind::Map(entries) = &node.kind else {
            self.invalid_type(node, path, "a map of expectations");
            e.broken = true;
            return e;
        };
        let before = self.problems.len();
        for (key, value) in entries {
            let name = key.text().unwrap_or_default();
            let at = key.span;
            let known = HTTP_KEYS.iter().chain(SQL_KEYS).find(|k| **k == name);
            if let Some(known) = known {
                e.keys.push((known, at));
            }
            match name {
                "status" => e.status = self.matcher(value, path, at),
                "body" => e.body = self.matcher(value, path, at),
                "duration_ms" => e.duration_ms = self.matcher(value, path, at),
                "row_count" => e.row_count = self.matcher(value, path, at),
                "headers" => e.headers = self.matchers(value, &path.key(name), Self::header),
                "json" => e.json = self.matchers(value, &path.key(name), Self::json_path),
                "rows" => e.rows = self.matchers(value, &path.key(name), Self::cell),
                "json_schema" => {
                    e.json_schema = self
                        .string(value, &path.key(name))
                        .map(|file| JsonSchema::new(file, value.span));
                }
                other => match Selector::parse(other) {
                    Ok(selector) => {
                        if let Some(m) = self.matcher(value, path, at) {
                            e.series.push((selector, m));
                            e.series_at.push((other.to_owned(), at));
                        }
                    }
                    Err(_) => {
                        let keys = HTTP_KEYS.iter().chain(SQL_KEYS).copied();
                        let help = suggest::did_you_mean(other, keys, quoted);
                        let error = LoadError::UnknownExpectation {
                            key: other.to_owned(),
                        };
                        self.report(Problem::new(at, error).under(path).with_help(help));
                    }
                },
            }
        }
        e.broken = self.problems.len() > before;
        e
    }

    /// A mapping whose keys `key` reads and whose values are matchers.
    fn matchers<K>(
        &mut self,
        node: &Node,
        path: &NodePath,
        key: impl Fn(&mut Self, &Node, &NodePath) -> Option<K>,
    ) -> Ordered<K, Matcher> {
        let mut out = Vec::new();
        for (k, v) in self.entries(node, path) {
            let parsed = key(self, k, path);
            if let (Some(k), Some(m)) = (parsed, self.matcher(v, path, k.span)) {
                out.push((k, m));
            }
        }
        Ordered(out)
    }

    fn header(&mut self, key: &Node, path: &NodePath) -> Option<String> {
        self.string(key, path)
    }

    fn json_path(&mut self, key: &Node, path: &NodePath) -> Option<Path> {
        let text = key.text().unwrap_or_default();
        Path::parse(text)
            .map_err(|e| self.error(key.span, path, LoadError::JsonPath(e)))
            .ok()
    }

    fn cell(&mut self, key: &Node, path: &NodePath) -> Option<Cell> {
        let text = key.text().unwrap_or_default();
        let cell = Cell::parse(text);
        if cell.is_none() {
            self.error(key.span, path, LoadError::Cell(text.to_owned()));
        }
        cell
    }

    /// A matcher: a plain value (equals) or a mapping of checks. Refused under
    /// `parent`, the mapping that holds it; `at` is where it is named.
    pub(crate) fn matcher(&mut self, node: &Node, parent: &NodePath, at: Span) -> Option<Matcher> {
        let Kind::Map(entries) = &node.kind else {
            let mut m = Matcher::equals(to_json(node));
            m.span = at;
            return Some(m);
        };
        if entries.is_empty() {
            self.error(node.span, parent, crate::matcher::MatcherError::Empty);
            return None;
        }
        let mut checks = Vec::new();
        for (op, operand) in entries {
            let name = op.text().unwrap_or_default();
            match Check::parse(name, to_json(operand)) {
                Ok(check) => checks.push(check),
                Err(e @ crate::matcher::MatcherError::Unknown { .. }) => {
                    let help = suggest::did_you_mean(name, KEYWORDS.iter().copied(), quoted);
                    self.report(Problem::new(op.span, e).under(parent).with_help(help));
                }
                Err(e) => self.error(operand.span, parent, e),
            }
        }
        (checks.len() == entries.len()).then_some(Matcher { checks, span: at })
    }
}

/// A problem with its place and hint, before the step it is in is named.
pub(crate) type Misplaced = (Span, LoadError, Option<String>);

/// Every expectation written that a step of `kind` cannot check, at its key,
/// and a `status` that no HTTP status can match.
pub(crate) fn misplaced(raw: &RawExpect, kind: &'static str) -> Vec<Misplaced> {
    let allowed: &[&str] = match kind {
        "http" => HTTP_KEYS,
        "sql" => SQL_KEYS,
        _ => &[],
    };
    let mut problems = Vec::new();
    for (key, at) in raw.keys.iter().filter(|(k, _)| !allowed.contains(k)) {
        problems.push((*at, LoadError::NotForKind { key, kind }, None));
    }
    if kind != "metrics" {
        for (key, at) in &raw.series_at {
            let help = suggest::did_you_mean(key, allowed.iter().copied(), quoted);
            let error = LoadError::SeriesOutsideMetrics {
                key: key.clone(),
                kind,
            };
            problems.push((*at, error, help));
        }
    }
    if let (Some(m), Some(at)) = (&raw.status, raw.key_span("status"))
        && let Some(why) = status_problem(m)
    {
        problems.push((at, LoadError::Status(why), None));
    }
    problems
}

/// The expectations of a step of `action`'s kind, once [`misplaced`] found
/// nothing wrong.
pub(crate) fn typed(raw: RawExpect, action: &Action) -> Expect {
    match action {
        _ if raw.is_empty() => Expect::Nothing,
        Action::Http(_) => Expect::Http(HttpExpect {
            status: raw.status,
            headers: raw.headers,
            json: raw.json,
            body: raw.body,
            duration_ms: raw.duration_ms,
            json_schema: raw.json_schema,
        }),
        Action::Sql(_) => Expect::Sql(SqlExpect {
            rows: raw.rows,
            row_count: raw.row_count,
        }),
        Action::Metrics(_) => Expect::Metrics(MetricsExpect { series: raw.series }),
        _ => Expect::Nothing,
    }
}

/// Why a `status` expectation cannot match any HTTP status, if it cannot:
/// the offending operand as written.
fn status_problem(matcher: &Matcher) -> Option<String> {
    let is_status = |v: &Value| match v {
        Value::Number(n) => n.as_u64().is_some_and(|n| (100..=599).contains(&n)),
        Value::String(s) => {
            template::has_template(s)
                || s.trim()
                    .parse::<u64>()
                    .is_ok_and(|n| (100..=599).contains(&n))
        }
        _ => false,
    };
    for check in &matcher.checks {
        let operands: Vec<&Value> = match check {
            // Bounds of a comparison (`lt: 600`) need not be statuses themselves.
            Check::Equals(v) | Check::NotEquals(v) => vec![v],
            Check::OneOf(items) => items.iter().collect(),
            _ => continue,
        };
        if let Some(bad) = operands.into_iter().find(|v| !is_status(v)) {
            return Some(match bad {
                Value::String(s) => format!("{s:?}"),
                other => other.to_string(),
            });
        }
    }
    None
}

impl Decoder<'_> {
    /// The captures of a step of `action`'s kind; problems go to `step_error`.
    pub(crate) fn captures(
        &mut self,
        node: Option<&Node>,
        path: &NodePath,
        action: &Action,
        mut step_error: impl FnMut(&mut Self, Span, LoadError),
    ) -> Option<Vec<Capture>> {
        let Some(node) = node else {
            return Some(Vec::new());
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (name_node, source_node) in self.entries(node, path) {
            let name = name_node.text().unwrap_or_default().to_owned();
            let Some(source) = self.string(source_node, &path.key(&name)) else {
                ok = false;
                continue;
            };
            match Capture::parse(action, &name, &source, name_node.span) {
                Ok(c) => out.push(c),
                Err(error) => {
                    ok = false;
                    let at = if error.is_about_the_name() {
                        name_node.span
                    } else {
                        source_node.span
                    };
                    step_error(self, at, LoadError::Capture { name, error });
                }
            }
        }
        ok.then_some(out)
    }
}
