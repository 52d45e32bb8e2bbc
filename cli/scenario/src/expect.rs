//! Expectations on a step's result, typed per step kind: what an `http` step
//! can check differs from what an `sql` or `metrics` step can.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::matcher::Matcher;
use crate::model::{Action, Cell, Ordered, Path};
use crate::selector::Selector;
use crate::span::{NodePath, SourceMap, Span};

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
    /// The compiled schema; `None` until the loader has compiled it.
    pub fn validator(&self) -> Option<&jsonschema::Validator> {
        self.validator.as_deref()
    }

    /// Keeps the schema the loader compiled from [`JsonSchema::file`].
    pub(crate) fn compiled(&mut self, validator: jsonschema::Validator, span: Span) {
        self.validator = Some(std::sync::Arc::new(validator));
        self.span = span;
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

impl<'de> Deserialize<'de> for JsonSchema {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(JsonSchema {
            file: String::deserialize(d)?,
            ..Default::default()
        })
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
    /// Gives every matcher the position of its key under `at`.
    pub(crate) fn place(&mut self, map: &SourceMap, at: &NodePath) {
        match self {
            Expect::Http(e) => {
                for (key, m) in [
                    ("status", &mut e.status),
                    ("body", &mut e.body),
                    ("duration_ms", &mut e.duration_ms),
                ] {
                    if let Some(m) = m {
                        m.span = map.key(&at.key(key));
                    }
                }
                place_entries(
                    map,
                    &at.key("headers"),
                    e.headers.0.iter_mut().map(|(_, m)| m),
                );
                place_entries(map, &at.key("json"), e.json.0.iter_mut().map(|(_, m)| m));
            }
            Expect::Sql(e) => {
                if let Some(m) = &mut e.row_count {
                    m.span = map.key(&at.key("row_count"));
                }
                place_entries(map, &at.key("rows"), e.rows.0.iter_mut().map(|(_, m)| m));
            }
            Expect::Metrics(e) => place_entries(map, at, e.series.iter_mut().map(|(_, m)| m)),
            Expect::Nothing => {}
        }
    }

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

/// Matchers of a mapping, in file order, get the positions of its keys.
fn place_entries<'a>(
    map: &SourceMap,
    at: &NodePath,
    matchers: impl Iterator<Item = &'a mut Matcher>,
) {
    for (i, m) in matchers.enumerate() {
        m.span = map.entry(at, i);
    }
}

/// Expectations as written, before the step kind says which keys apply; in a
/// `metrics` step every key is a series selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RawExpect {
    pub(crate) status: Option<Matcher>,
    headers: Ordered<String, Matcher>,
    json: Ordered<Path, Matcher>,
    body: Option<Matcher>,
    duration_ms: Option<Matcher>,
    json_schema: Option<JsonSchema>,
    rows: Ordered<Cell, Matcher>,
    row_count: Option<Matcher>,
    series: Vec<(Selector, Matcher)>,
}

const HTTP_KEYS: &[&str] = &[
    "status",
    "headers",
    "json",
    "body",
    "duration_ms",
    "json_schema",
];
const SQL_KEYS: &[&str] = &["rows", "row_count"];

impl RawExpect {
    fn keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        let present = [
            ("status", self.status.is_some()),
            ("headers", !self.headers.0.is_empty()),
            ("json", !self.json.0.is_empty()),
            ("body", self.body.is_some()),
            ("duration_ms", self.duration_ms.is_some()),
            ("json_schema", self.json_schema.is_some()),
            ("rows", !self.rows.0.is_empty()),
            ("row_count", self.row_count.is_some()),
        ];
        for (key, is) in present {
            if is {
                keys.push(key);
            }
        }
        keys
    }

    fn is_empty(&self) -> bool {
        self.keys().is_empty() && self.series.is_empty()
    }
}

impl<'de> Deserialize<'de> for RawExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpectVisitor;
        impl<'de> Visitor<'de> for ExpectVisitor {
            type Value = RawExpect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of expectations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawExpect, A::Error> {
                let mut e = RawExpect::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "status" => e.status = Some(map.next_value()?),
                        "headers" => e.headers = map.next_value()?,
                        "json" => e.json = map.next_value()?,
                        "body" => e.body = Some(map.next_value()?),
                        "duration_ms" => e.duration_ms = Some(map.next_value()?),
                        "json_schema" => e.json_schema = Some(map.next_value()?),
                        "rows" => e.rows = map.next_value()?,
                        "row_count" => e.row_count = Some(map.next_value()?),
                        other => {
                            let selector = Selector::parse(other).map_err(|_| {
                                de::Error::custom(format!(
                                    "unknown expectation {other:?}: expected one of {}, {} or (in a metrics step) a series selector",
                                    HTTP_KEYS.join(", "),
                                    SQL_KEYS.join(", ")
                                ))
                            })?;
                            e.series.push((selector, map.next_value()?));
                        }
                    }
                }
                Ok(e)
            }
        }
        deserializer.deserialize_map(ExpectVisitor)
    }
}

impl RawExpect {
    /// The expectations a step of `action`'s kind can have; another kind's
    /// key is an error naming it.
    pub(crate) fn typed(self, action: &Action) -> Result<Expect, String> {
        let allowed: &[&str] = match action {
            Action::Http(_) => HTTP_KEYS,
            Action::Sql(_) => SQL_KEYS,
            _ => &[],
        };
        if let Some(bad) = self.keys().into_iter().find(|k| !allowed.contains(k)) {
            return Err(format!(
                "expectation \"{bad}\" does not apply to a {} step",
                action.kind()
            ));
        }
        if !self.series.is_empty() && !matches!(action, Action::Metrics(_)) {
            let key = &self.series[0].0.name;
            return Err(format!(
                "unknown expectation {key:?} for a {} step",
                action.kind()
            ));
        }
        Ok(match action {
            _ if self.is_empty() => Expect::Nothing,
            Action::Http(_) => Expect::Http(HttpExpect {
                status: self.status,
                headers: self.headers,
                json: self.json,
                body: self.body,
                duration_ms: self.duration_ms,
                json_schema: self.json_schema,
            }),
            Action::Sql(_) => Expect::Sql(SqlExpect {
                rows: self.rows,
                row_count: self.row_count,
            }),
            Action::Metrics(_) => Expect::Metrics(MetricsExpect {
                series: self.series,
            }),
            _ => Expect::Nothing,
        })
    }
}
