//! What can be wrong with a scenario file, typed: each problem is a
//! [`LoadError`] at the [`Span`] of the node it is about, read while parsing.

use std::fmt;
use std::time::Duration;

use crate::capture::CaptureError;
use crate::decode_network::NetworkError;
use crate::matcher::MatcherError;
use crate::network::{LinkError, RateError, UnknownLink};
use crate::selector::SelectorError;
use crate::span::{NodePath, Span};
use crate::template::TemplateError;

/// One problem of a scenario file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read at all (missing, not a regular file, too large).
    #[error("{0}")]
    Unreadable(String),
    #[error("the file is not UTF-8 text: the first bad byte is here")]
    NotUtf8,
    #[error("control characters are not allowed in a scenario file: U+{:04X} here", u32::from(*.0))]
    ControlCharacter(char),
    #[error("{0}")]
    Syntax(String),
    #[error("a scenario file holds one YAML document, but a second one starts here")]
    SecondDocument,
    #[error("repetition limit exceeded: the aliases (*name) expand to too many values")]
    AliasBomb,
    #[error("unknown anchor: an alias (*name) names no anchor (&name) written before it")]
    UnknownAnchor,
    #[error("recursion limit exceeded: the document nests more than {max} levels deep")]
    TooDeep { max: usize },
    #[error("duplicate key {0:?}: each key may appear once in a mapping")]
    DuplicateKey(String),
    #[error("unknown field `{field}`, {}", one_of(.expected))]
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("invalid type: {found}, expected {expected}")]
    InvalidType {
        found: String,
        expected: &'static str,
    },
    #[error("invalid value: {found}, expected {expected}")]
    InvalidValue {
        found: String,
        expected: &'static str,
    },
    #[error("{text:?} is not a duration such as 30s or 500ms ({why})")]
    Duration { text: String, why: String },
    #[error("{0}")]
    JsonPath(#[from] crate::model::JsonPathError),
    #[error("{0:?} is not ROW.COLUMN such as 0.n")]
    Cell(String),
    #[error(
        "http.method {text:?} is not one of {}",
        crate::model::HttpMethod::names()
    )]
    Method { text: String },
    #[error("{0}")]
    Matcher(#[from] MatcherError),
    #[error("{0}")]
    Selector(#[from] SelectorError),
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("{0}")]
    Rate(#[from] RateError),
    #[error("{0}")]
    Network(#[from] NetworkError),
    #[error("{0}")]
    UnknownLink(#[from] UnknownLink),
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error("step {name:?}: {error}")]
    InStep { name: String, error: Box<LoadError> },
    #[error(
        "a step needs exactly one action (http, docker, network, sql, metrics, logs or sleep), found {0}"
    )]
    ActionCount(usize),
    #[error(
        "a docker step takes exactly one of stop, start, restart, kill, pause, unpause with a service name"
    )]
    DockerVerbs,
    #[error("a logs step takes one of contains or matches")]
    LogsNeedle,
    #[error("logs.matches: invalid regex: {0}")]
    LogsRegex(String),
    #[error("http.path {0:?} must start with /")]
    PathSlash(String),
    #[error(
        "unknown expectation {key:?}: expected one of {}, {} or (in a metrics step) a series selector",
        crate::expect::HTTP_KEYS.join(", "),
        crate::expect::SQL_KEYS.join(", ")
    )]
    UnknownExpectation { key: String },
    #[error("unknown expectation {key:?} for a {kind} step")]
    SeriesOutsideMetrics { key: String, kind: &'static str },
    #[error("expectation \"{key}\" does not apply to a {kind} step")]
    NotForKind {
        key: &'static str,
        kind: &'static str,
    },
    #[error("expectation \"status\": {0} is not an HTTP status code (a number from 100 to 599)")]
    Status(String),
    #[error("retry \"interval\" must be at least {}, got {}", humantime::format_duration(*.min), humantime::format_duration(*.got))]
    RetryInterval { min: Duration, got: Duration },
    #[error("retry.fail_if: {0}")]
    FailIf(Box<LoadError>),
    #[error("retry \"fail_if\" needs at least one expectation a {0} step can check")]
    FailIfEmpty(&'static str),
    #[error("capture.{name}: {error}")]
    Capture { name: String, error: CaptureError },
    #[error("name must not be empty")]
    EmptyName,
    #[error("a scenario needs at least one step")]
    NoSteps,
    #[error("json_schema {file:?}: {error}")]
    JsonSchema { file: String, error: SchemaError },
    #[error("unknown service {service:?} (the stack has {services})")]
    UnknownService { service: String, services: String },
    #[error(
        "template variable {name:?} is used before it is captured: step {step} ({step_name:?}) \
         captures it, and a capture is only set for the steps after its own"
    )]
    UsedBeforeCaptured {
        name: String,
        step: usize,
        step_name: String,
    },
    #[error(
        "unknown template variable {0:?}: no step captures it, and it is not \
         run.id, env.NAME, services.<service>.url or a --var"
    )]
    UnknownVariable(String),
}

/// Why a JSON Schema file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read {path}: {why}")]
    Read { path: String, why: String },
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a valid JSON Schema: {0}")]
    Invalid(String),
}

/// serde's words for the fields a mapping takes.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "there are no fields".into(),
        [one] => format!("expected `{one}`"),
        [a, b] => format!("expected `{a}` or `{b}`"),
        _ => {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("expected one of {}", quoted.join(", "))
        }
    }
}

/// A [`LoadError`] where it is written: the span of its node, the path of
/// the mapping it was found in (shown before the message, as
/// `steps[0].retry: …`), and a "did you mean" when a near name exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub span: Span,
    pub path: NodePath,
    pub error: Box<LoadError>,
    pub help: Option<String>,
}

impl Problem {
    /// A problem at `span`, shown without a path.
    pub fn new(span: Span, error: impl Into<LoadError>) -> Problem {
        Problem {
            span,
            path: NodePath::root(),
            error: Box::new(error.into()),
            help: None,
        }
    }

    /// The same problem, shown under `path`.
    #[must_use]
    pub fn under(mut self, path: &NodePath) -> Problem {
        self.path = path.clone();
        self
    }

    /// The same problem with a hint.
    #[must_use]
    pub fn with_help(mut self, help: Option<String>) -> Problem {
        self.help = help;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_root() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.error)
    }
}
