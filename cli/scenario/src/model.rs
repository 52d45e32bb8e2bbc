//! The scenario format, as typed values. Deserialising validates: unknown keys,
//! bad matchers, JSONPaths, selectors and durations are errors at their position.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::matcher::Matcher;
use crate::network::NetworkAction;
use crate::selector::Selector;
use crate::template;

/// A map that keeps the file's order (assertions run and report in that order).
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for Ordered<K, V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Ordered<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<K, V> {
            type Value = Ordered<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

/// A duration written as `30s`, `500ms`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Span).map_err(|e| {
            de::Error::custom(format!(
                "{text:?} is not a duration such as 30s or 500ms ({e})"
            ))
        })
    }
}

/// A JSONPath (RFC 9535) with its source text.
#[derive(Debug, Clone)]
pub struct Path {
    pub text: String,
    pub path: JsonPath,
}

impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        JsonPath::parse(text)
            .map(|path| Path {
                text: text.to_owned(),
                path,
            })
            .map_err(|e| {
                format!("{text:?} is not a JSONPath (RFC 9535) such as $.data[0].status: {e}")
            })
    }

    /// One node as itself, several as an array of them, none as `None`.
    pub fn select(&self, value: &Value) -> Option<Value> {
        let nodes = self.path.query(value).all();
        match nodes.len() {
            0 => None,
            1 => Some(nodes[0].clone()),
            _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
        }
    }
}

impl<'de> Deserialize<'de> for Path {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Path::parse(&text).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Selector::parse(&text).map_err(de::Error::custom)
    }
}

/// `row.column` in an SQL expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub row: usize,
    pub column: String,
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed = text
            .split_once('.')
            .and_then(|(row, column)| {
                Some(Cell {
                    row: row.parse().ok()?,
                    column: column.to_owned(),
                })
            })
            .filter(|c| !c.column.is_empty());
        parsed.ok_or_else(|| de::Error::custom(format!("{text:?} is not ROW.COLUMN such as 0.n")))
    }
}

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub timeout: Option<Span>,
    #[serde(default)]
    pub isolated: bool,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// A fresh stack of its own: asked for, or implied by any docker or network step.
    pub fn needs_own_stack(&self) -> bool {
        self.isolated
            || self
                .steps
                .iter()
                .any(|s| matches!(s.action, Action::Docker(_) | Action::Network(_)))
    }

    /// The network steps, in order: what the stack must be prepared for.
    pub fn network_actions(&self) -> impl Iterator<Item = &NetworkAction> {
        self.steps.iter().filter_map(|s| match &s.action {
            Action::Network(n) => Some(n),
            _ => None,
        })
    }
}

/// `retry: { timeout, interval }`: repeat the step until its expectations hold.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub timeout: Span,
    #[serde(default = "default_interval")]
    pub interval: Span,
}

fn default_interval() -> Span {
    Span(Duration::from_millis(500))
}

/// The shortest retry interval: shorter ones only hammer the system under test.
pub const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// Why a `status` expectation cannot match any HTTP status, if it cannot.
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
        let operands: Vec<&Value> = match (check.op.as_str(), &check.expected) {
            // Bounds of a comparison (`lt: 600`) need not be statuses themselves.
            ("equals" | "not_equals", v) => vec![v],
            ("one_of", Value::Array(items)) => items.iter().collect(),
            _ => continue,
        };
        if let Some(bad) = operands.into_iter().find(|v| !is_status(v)) {
            let shown = match bad {
                Value::String(s) => format!("{s:?}"),
                other => other.to_string(),
            };
            return Some(format!(
                "{shown} is not an HTTP status code (a number from 100 to 599)"
            ));
        }
    }
    None
}

/// A query parameter value: one value or several (repeated parameter).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum QueryValue {
    Many(Vec<Value>),
    One(Value),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAction {
    #[serde(default = "default_service")]
    pub service: String,
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: Ordered<String, QueryValue>,
    #[serde(default)]
    pub headers: Ordered<String, String>,
    #[serde(default)]
    pub json: Option<Value>,
}

fn default_service() -> String {
    "api".into()
}
fn default_method() -> String {
    "GET".into()
}

/// What a docker step does to a service's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerVerb {
    Stop,
    Start,
    Restart,
    Kill,
    Pause,
    Unpause,
}

impl DockerVerb {
    /// The key that names this verb in a docker step.
    pub fn key(self) -> &'static str {
        match self {
            DockerVerb::Stop => "stop",
            DockerVerb::Start => "start",
            DockerVerb::Restart => "restart",
            DockerVerb::Kill => "kill",
            DockerVerb::Pause => "pause",
            DockerVerb::Unpause => "unpause",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocker {
    stop: Option<String>,
    start: Option<String>,
    restart: Option<String>,
    kill: Option<String>,
    pause: Option<String>,
    unpause: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DockerAction {
    pub verb: DockerVerb,
    pub service: String,
}

impl<'de> Deserialize<'de> for DockerAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawDocker::deserialize(deserializer)?;
        let given: Vec<(DockerVerb, String)> = [
            (DockerVerb::Stop, raw.stop),
            (DockerVerb::Start, raw.start),
            (DockerVerb::Restart, raw.restart),
            (DockerVerb::Kill, raw.kill),
            (DockerVerb::Pause, raw.pause),
            (DockerVerb::Unpause, raw.unpause),
        ]
        .into_iter()
        .filter_map(|(verb, service)| Some((verb, service?)))
        .collect();
        match given.as_slice() {
            [(verb, service)] => Ok(DockerAction {
                verb: *verb,
                service: service.clone(),
            }),
            _ => Err(de::Error::custom(
                "a docker step takes exactly one of stop, start, restart, kill, pause, unpause with a service name",
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsAction {
    pub service: String,
    #[serde(default = "default_metrics_path")]
    pub path: String,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsAction {
    pub service: String,
    pub contains: Option<String>,
    pub matches: Option<String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Http(HttpAction),
    Docker(DockerAction),
    Network(NetworkAction),
    Sql(String),
    Metrics(MetricsAction),
    Logs(LogsAction),
    Sleep(Duration),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Http(_) => "http",
            Action::Docker(_) => "docker",
            Action::Network(_) => "network",
            Action::Sql(_) => "sql",
            Action::Metrics(_) => "metrics",
            Action::Logs(_) => "logs",
            Action::Sleep(_) => "sleep",
        }
    }

    fn describe(&self) -> String {
        match self {
            Action::Http(h) => format!("{} {} on {}", h.method, h.path, h.service),
            Action::Docker(d) => format!("docker {:?} {}", d.verb, d.service).to_lowercase(),
            Action::Network(n) => n.describe(),
            Action::Sql(q) => format!("sql {}", q.chars().take(40).collect::<String>()),
            Action::Metrics(m) => format!("metrics of {}", m.service),
            Action::Logs(l) => format!("logs of {}", l.service),
            Action::Sleep(d) => format!("sleep {}", humantime::format_duration(*d)),
        }
    }
}

/// Expectations on a step's result. Which keys apply depends on the step kind;
/// in a `metrics` step every key is a series selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    pub status: Option<Matcher>,
    pub headers: Ordered<String, Matcher>,
    pub json: Ordered<Path, Matcher>,
    pub body: Option<Matcher>,
    pub duration_ms: Option<Matcher>,
    pub json_schema: Option<String>,
    pub rows: Ordered<Cell, Matcher>,
    pub row_count: Option<Matcher>,
    pub series: Vec<(Selector, Matcher)>,
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

impl Expect {
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

    pub fn is_empty(&self) -> bool {
        self.keys().is_empty() && self.series.is_empty()
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpectVisitor;
        impl<'de> Visitor<'de> for ExpectVisitor {
            type Value = Expect;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of expectations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expect, A::Error> {
                let mut e = Expect::default();
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

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub retry: Option<Retry>,
    pub expect: Expect,
    pub capture: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Option<String>,
    http: Option<HttpAction>,
    docker: Option<DockerAction>,
    network: Option<NetworkAction>,
    sql: Option<String>,
    metrics: Option<MetricsAction>,
    logs: Option<LogsAction>,
    sleep: Option<Span>,
    retry: Option<Retry>,
    #[serde(default)]
    expect: Expect,
    #[serde(default)]
    capture: Ordered<String, String>,
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(raw: RawStep) -> Result<Step, String> {
        let mut actions = Vec::new();
        if let Some(h) = raw.http {
            actions.push(Action::Http(h));
        }
        if let Some(d) = raw.docker {
            actions.push(Action::Docker(d));
        }
        if let Some(n) = raw.network {
            actions.push(Action::Network(n));
        }
        if let Some(q) = raw.sql {
            actions.push(Action::Sql(q));
        }
        if let Some(m) = raw.metrics {
            actions.push(Action::Metrics(m));
        }
        if let Some(l) = raw.logs {
            actions.push(Action::Logs(l));
        }
        if let Some(s) = raw.sleep {
            actions.push(Action::Sleep(s.0));
        }
        let step_name = raw.name.clone().unwrap_or_default();
        let label = if step_name.is_empty() {
            String::new()
        } else {
            format!("step {step_name:?}: ")
        };
        if actions.len() != 1 {
            return Err(format!(
                "{label}a step needs exactly one action (http, docker, network, sql, metrics, logs or sleep), found {}",
                actions.len()
            ));
        }
        let action = actions.remove(0);
        let allowed: &[&str] = match &action {
            Action::Http(_) => HTTP_KEYS,
            Action::Sql(_) => SQL_KEYS,
            _ => &[],
        };
        if let Some(bad) = raw.expect.keys().into_iter().find(|k| !allowed.contains(k)) {
            return Err(format!(
                "{label}expectation \"{bad}\" does not apply to a {} step",
                action.kind()
            ));
        }
        if !raw.expect.series.is_empty() && !matches!(action, Action::Metrics(_)) {
            let key = &raw.expect.series[0].0.name;
            return Err(format!(
                "{label}unknown expectation {key:?} for a {} step",
                action.kind()
            ));
        }
        if let Action::Logs(l) = &action {
            match (&l.contains, &l.matches) {
                (None, None) | (Some(_), Some(_)) => {
                    return Err(format!(
                        "{label}a logs step takes one of contains or matches"
                    ));
                }
                (_, Some(re)) if !template::has_template(re) => {
                    regex::Regex::new(re)
                        .map_err(|e| format!("{label}logs.matches: invalid regex: {e}"))?;
                }
                _ => {}
            }
        }
        if let Some(retry) = &raw.retry
            && retry.interval.0 < MIN_RETRY_INTERVAL
        {
            return Err(format!(
                "{label}retry \"interval\" must be at least {}, got {}",
                humantime::format_duration(MIN_RETRY_INTERVAL),
                humantime::format_duration(retry.interval.0)
            ));
        }
        if let Some(why) = raw.expect.status.as_ref().and_then(status_problem) {
            return Err(format!("{label}expectation \"status\": {why}"));
        }
        if let Action::Http(h) = &action {
            const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
            if !METHODS.contains(&h.method.to_ascii_uppercase().as_str()) {
                return Err(format!(
                    "{label}http.method {:?} is not one of {}",
                    h.method,
                    METHODS.join(", ")
                ));
            }
            if !h.path.starts_with('/') && !template::has_template(&h.path) {
                return Err(format!("{label}http.path {:?} must start with /", h.path));
            }
        }
        for (name, source) in &raw.capture.0 {
            validate_capture(&action, name, source)
                .map_err(|e| format!("{label}capture.{name}: {e}"))?;
        }
        let name = raw.name.unwrap_or_else(|| action.describe());
        Ok(Step {
            name,
            action,
            retry: raw.retry,
            expect: raw.expect,
            capture: raw.capture.0,
        })
    }
}

/// Capture sources: a JSONPath (http, sql), `header:NAME` (http), a selector (metrics).
fn validate_capture(action: &Action, name: &str, source: &str) -> Result<(), String> {
    if name.contains(char::is_whitespace) || name.contains("{{") {
        return Err("a capture name is a plain word".into());
    }
    match action {
        Action::Http(_) if source.starts_with("header:") => Ok(()),
        Action::Http(_) | Action::Sql(_) => Path::parse(source).map(|_| ()),
        Action::Metrics(_) => Selector::parse(source).map(|_| ()),
        other => Err(format!("a {} step has nothing to capture", other.kind())),
    }
}
