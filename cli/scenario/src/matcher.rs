//! Matchers: a plain value means equals; a map holds one or more named checks,
//! all of which must hold.

use std::fmt;

use serde_json::Value;

pub use crate::compare::{Unmeasurable, loosely_equal, scalar_text, short};
use crate::compare::{compare, contains};
use crate::span::Span;
use crate::template::{self, TemplateError, Vars};

/// The matcher keywords, in the order the documentation lists them.
pub const KEYWORDS: &[&str] = &[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "length",
    "length_gte",
    "length_lte",
    "exists",
    "type",
    "one_of",
];

/// Why a matcher as written cannot check anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("unknown matcher {name:?}: expected one of {}", KEYWORDS.join(", "))]
    Unknown { name: String },
    #[error("empty matcher: expected a value or one of {}", KEYWORDS.join(", "))]
    Empty,
    #[error("{0} takes a number")]
    NotANumber(String),
    #[error("matches takes a regular expression string")]
    PatternNotText,
    #[error("matches: invalid regex: {0}")]
    Regex(String),
    #[error("exists takes true or false")]
    ExistsNotBool,
    #[error("type takes one of {}", JsonType::names())]
    UnknownType,
    #[error("one_of takes a list of values")]
    OneOfNotList,
}

/// The value types `type:` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    String,
    Number,
    Bool,
    Null,
    Array,
    Object,
}

impl JsonType {
    const ALL: [JsonType; 6] = [
        JsonType::String,
        JsonType::Number,
        JsonType::Bool,
        JsonType::Null,
        JsonType::Array,
        JsonType::Object,
    ];

    fn names() -> String {
        let names: Vec<&str> = JsonType::ALL.iter().map(|t| t.name()).collect();
        names.join(", ")
    }

    pub fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Bool => "bool",
            JsonType::Null => "null",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }

    pub(crate) fn of(value: &Value) -> JsonType {
        match value {
            Value::Null => JsonType::Null,
            Value::Bool(_) => JsonType::Bool,
            Value::Number(_) => JsonType::Number,
            Value::String(_) => JsonType::String,
            Value::Array(_) => JsonType::Array,
            Value::Object(_) => JsonType::Object,
        }
    }
}

/// A `matches:` pattern: compiled once at load, or, when it holds a template,
/// compiled after the template is rendered.
#[derive(Debug, Clone)]
pub enum Pattern {
    Compiled(regex::Regex),
    Templated(String),
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, MatcherError> {
        if template::has_template(text) {
            return Ok(Pattern::Templated(text.to_owned()));
        }
        regex::Regex::new(text)
            .map(Pattern::Compiled)
            .map_err(|e| MatcherError::Regex(e.to_string()))
    }

    fn text(&self) -> &str {
        match self {
            Pattern::Compiled(re) => re.as_str(),
            Pattern::Templated(t) => t,
        }
    }
}

/// How a comparison reads the actual value: as a number or by its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Value,
    Length,
}

/// The order a comparison asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

/// A check's rendered operand, and whether it held (`Err`: why it could not).
type Decision = (Value, Result<bool, Unmeasurable>);

/// One named check with its expected value (templates not yet rendered).
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Equals(Value),
    NotEquals(Value),
    Contains(Value),
    NotContains(Value),
    Matches(Pattern),
    Compare(Measure, Order, Value),
    Exists(bool),
    Type(JsonType),
    OneOf(Vec<Value>),
}

impl Check {
    /// Parses `op: expected`, validating the operand's type.
    pub(crate) fn parse(op: &str, expected: Value) -> Result<Check, MatcherError> {
        let templated = expected.as_str().is_some_and(template::has_template);
        let numeric = |order, measure| {
            let ok = expected.is_number()
                || templated
                || expected.as_str().is_some_and(|s| s.parse::<f64>().is_ok());
            if ok {
                Ok(Check::Compare(measure, order, expected.clone()))
            } else {
                Err(MatcherError::NotANumber(op.to_owned()))
            }
        };
        match op {
            "equals" => Ok(Check::Equals(expected)),
            "not_equals" => Ok(Check::NotEquals(expected)),
            "contains" => Ok(Check::Contains(expected)),
            "not_contains" => Ok(Check::NotContains(expected)),
            "matches" => match expected.as_str() {
                Some(text) => Pattern::parse(text).map(Check::Matches),
                None => Err(MatcherError::PatternNotText),
            },
            "gt" => numeric(Order::Gt, Measure::Value),
            "gte" => numeric(Order::Gte, Measure::Value),
            "lt" => numeric(Order::Lt, Measure::Value),
            "lte" => numeric(Order::Lte, Measure::Value),
            "length" => numeric(Order::Eq, Measure::Length),
            "length_gte" => numeric(Order::Gte, Measure::Length),
            "length_lte" => numeric(Order::Lte, Measure::Length),
            "exists" => expected
                .as_bool()
                .map(Check::Exists)
                .ok_or(MatcherError::ExistsNotBool),
            "type" => JsonType::ALL
                .into_iter()
                .find(|t| expected.as_str() == Some(t.name()))
                .map(Check::Type)
                .ok_or(MatcherError::UnknownType),
            "one_of" => match expected {
                Value::Array(items) => Ok(Check::OneOf(items)),
                _ => Err(MatcherError::OneOfNotList),
            },
            other => Err(MatcherError::Unknown {
                name: other.to_owned(),
            }),
        }
    }

    /// The keyword this check is written with.
    pub fn keyword(&self) -> &'static str {
        match self {
            Check::Equals(_) => "equals",
            Check::NotEquals(_) => "not_equals",
            Check::Contains(_) => "contains",
            Check::NotContains(_) => "not_contains",
            Check::Matches(_) => "matches",
            Check::Compare(Measure::Value, Order::Gt, _) => "gt",
            Check::Compare(Measure::Value, Order::Gte, _) => "gte",
            Check::Compare(Measure::Value, Order::Lt, _) => "lt",
            Check::Compare(Measure::Value, Order::Lte, _) => "lte",
            Check::Compare(Measure::Value, Order::Eq, _) => "equals",
            Check::Compare(Measure::Length, Order::Eq, _) => "length",
            Check::Compare(Measure::Length, Order::Gte | Order::Gt, _) => "length_gte",
            Check::Compare(Measure::Length, Order::Lte | Order::Lt, _) => "length_lte",
            Check::Exists(_) => "exists",
            Check::Type(_) => "type",
            Check::OneOf(_) => "one_of",
        }
    }

    /// The expected value as written (templates not rendered).
    pub fn operand(&self) -> Value {
        match self {
            Check::Equals(v)
            | Check::NotEquals(v)
            | Check::Contains(v)
            | Check::NotContains(v)
            | Check::Compare(_, _, v) => v.clone(),
            Check::Matches(p) => Value::String(p.text().to_owned()),
            Check::Exists(b) => Value::Bool(*b),
            Check::Type(t) => Value::String(t.name().to_owned()),
            Check::OneOf(items) => Value::Array(items.clone()),
        }
    }

    /// Renders the operand's templates, then decides; `Err` notes why the
    /// check could not hold. Returns the rendered operand for the report.
    fn decide(&self, actual: Option<&Value>, vars: &Vars) -> Result<Decision, TemplateError> {
        let expected = template::render_value(&self.operand(), vars)?;
        let outcome = match (self, actual) {
            (Check::Exists(want), actual) => Ok(actual.is_some() == *want),
            (_, None) => Ok(false),
            (Check::Equals(_), Some(actual)) => Ok(loosely_equal(actual, &expected)),
            (Check::NotEquals(_), Some(actual)) => Ok(!loosely_equal(actual, &expected)),
            (Check::Contains(_), Some(actual)) => contains(actual, &expected),
            (Check::NotContains(_), Some(actual)) => contains(actual, &expected).map(|f| !f),
            (Check::Matches(Pattern::Compiled(re)), Some(actual)) => {
                Ok(re.is_match(&scalar_text(actual)))
            }
            (Check::Matches(Pattern::Templated(_)), Some(actual)) => {
                regex::Regex::new(expected.as_str().unwrap_or_default())
                    .map(|re| re.is_match(&scalar_text(actual)))
                    .map_err(|e| Unmeasurable::Regex(e.to_string()))
            }
            (Check::Compare(measure, order, _), Some(actual)) => {
                compare(*measure, *order, actual, &expected)
            }
            (Check::Type(t), Some(actual)) => Ok(JsonType::of(actual) == *t),
            (Check::OneOf(_), Some(actual)) => Ok(expected
                .as_array()
                .is_some_and(|opts| opts.iter().any(|o| loosely_equal(actual, o)))),
        };
        Ok((expected, outcome))
    }
}

/// All the checks on one value, and where they are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub checks: Vec<Check>,
    pub span: Span,
}

/// A check that did not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub op: &'static str,
    pub expected: Value,
    pub actual: Option<Value>,
    pub note: Option<Unmeasurable>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actual = match &self.actual {
            None => "nothing (the path selected no value)".to_owned(),
            Some(v) => short(v),
        };
        write!(
            f,
            "expected {} {}, actual {actual}",
            self.op,
            short(&self.expected)
        )?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

impl Matcher {
    pub fn equals(value: Value) -> Matcher {
        Matcher {
            checks: vec![Check::Equals(value)],
            span: Span::default(),
        }
    }

    /// Builds a matcher from its YAML form, validating keywords and operand
    /// types and compiling regexes.
    pub fn from_value(value: Value) -> Result<Matcher, MatcherError> {
        let Value::Object(map) = value else {
            return Ok(Matcher::equals(value));
        };
        if map.is_empty() {
            return Err(MatcherError::Empty);
        }
        let checks = map
            .into_iter()
            .map(|(op, expected)| Check::parse(&op, expected))
            .collect::<Result<_, _>>()?;
        Ok(Matcher {
            checks,
            span: Span::default(),
        })
    }

    /// Renders templates in the expected values, then checks `actual` (`None`
    /// when a JSONPath selected nothing). Returns every check that failed.
    pub fn evaluate(
        &self,
        actual: Option<&Value>,
        vars: &Vars,
    ) -> Result<Vec<Mismatch>, TemplateError> {
        let mut failed = Vec::new();
        for check in &self.checks {
            let (expected, outcome) = check.decide(actual, vars)?;
            let (ok, note) = match outcome {
                Ok(ok) => (ok, None),
                Err(note) => (false, Some(note)),
            };
            if !ok {
                failed.push(Mismatch {
                    op: check.keyword(),
                    expected,
                    actual: actual.cloned(),
                    note,
                });
            }
        }
        Ok(failed)
    }
}
