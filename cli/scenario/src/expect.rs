//! Expectations on a step's result, typed per step kind: what an `http` step
//! can check differs from what an `sql` or `metrics` step can.

use std::fmt;

use crate::matcher::Matcher;
use crate::model::{Cell, Ordered, Path};
use crate::selector::Selector;
use crate::span::Span;

/// What an `http` step checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpExpect {
    pub status: Option<Matcher>,
    pub headers: Ordered<String, Matcher>,
    pub json: Ordered<Path, Matcher>,
    pub body: Option<Matcher>,
    pub duration_ms: Option<Matcher>,
    pub json_schema: Option<JsonSchema>,
}

/// A `json_schema` expectation: the file as written, where it is written, and
/// the schema compiled once when the scenario is loaded.
#[derive(Clone, Default)]
pub struct JsonSchema {
    pub file: String,
    pub span: Span,
    validator: Option<std::sync::Arc<jsonschema::Validator>>,
}

impl JsonSchema {
    /// A schema named `file` at `span`, not yet compiled.
    pub(crate) fn new(file: String, span: Span) -> JsonSchema {
        JsonSchema {
            file,
            span,
            validator: None,
        }
    }

    /// The compiled schema; `None` until the loader has compiled it.
    pub fn validator(&self) -> Option<&jsonschema::Validator> {
        self.validator.as_deref()
    }

    /// Keeps the schema the loader compiled from [`JsonSchema::file`].
    pub(crate) fn compiled(&mut self, validator: jsonschema::Validator) {
        self.validator = Some(std::sync::Arc::new(validator));
    }
}

impl fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonSchema")
            .field("file", &self.file)
            .field("compiled", &self.validator.is_some())
            .finish()
    }
}

/// Two expectations are equal when they name the same file.
impl PartialEq for JsonSchema {
    fn eq(&self, other: &Self) -> bool {
        self.file == other.file
    }
}

/// What an `sql` step checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlExpect {
    pub rows: Ordered<Cell, Matcher>,
    pub row_count: Option<Matcher>,
}

/// What a `metrics` step checks: the sum of each selected series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsExpect {
    pub series: Vec<(Selector, Matcher)>,
}

/// A step's expectations.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Expect {
    Http(HttpExpect),
    Sql(SqlExpect),
    Metrics(MetricsExpect),
    /// Steps of other kinds check nothing but that they ran.
    #[default]
    Nothing,
}

impl Expect {
    /// Every matcher, in the order the checks run.
    pub fn matchers(&self) -> Vec<&Matcher> {
        match self {
            Expect::Http(e) => e
                .status
                .iter()
                .chain(e.headers.0.iter().map(|(_, m)| m))
                .chain(&e.body)
                .chain(&e.duration_ms)
                .chain(e.json.0.iter().map(|(_, m)| m))
                .collect(),
            Expect::Sql(e) => e
                .row_count
                .iter()
                .chain(e.rows.0.iter().map(|(_, m)| m))
                .collect(),
            Expect::Metrics(e) => e.series.iter().map(|(_, m)| m).collect(),
            Expect::Nothing => Vec::new(),
        }
    }

    /// Where the first of these expectations is written (unknown when none is).
    pub fn first_span(&self) -> Span {
        self.matchers()
            .into_iter()
            .map(|m| m.span)
            .find(|s| s.is_known())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Expect::Http(e) => *e == HttpExpect::default(),
            Expect::Sql(e) => *e == SqlExpect::default(),
            Expect::Metrics(e) => e.series.is_empty(),
            Expect::Nothing => true,
        }
    }
}

/// The keys of an `http` step's expectations.
pub(crate) const HTTP_KEYS: &[&str] = &[
    "status",
    "headers",
    "json",
    "body",
    "duration_ms",
    "json_schema",
];

/// The keys of an `sql` step's expectations.
pub(crate) const SQL_KEYS: &[&str] = &["rows", "row_count"];
