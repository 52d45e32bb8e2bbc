//! The scenario format, as typed values. Deserialising validates: unknown keys,
//! bad matchers, JSONPaths, selectors and durations are errors at their position.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json_path::JsonPath;

use crate::capture::Capture;
use crate::expect::{Expect, RawExpect};
use crate::matcher::{Check, Matcher};
use crate::network::NetworkAction;
use crate::selector::Selector;
use crate::span::{NodePath, SourceMap, Span};
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
pub struct Interval(pub Duration);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map(Interval).map_err(|e| {
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
    pub timeout: Option<Interval>,
    /// `isolated:` as written: `None` lets the steps decide (see [`crate::isolation`]).
    #[serde(default)]
    pub isolated: Option<bool>,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// Gives every step, matcher and capture its position in the file.
    pub(crate) fn place(&mut self, map: &SourceMap) {
        let steps = NodePath::root().key("steps");
        for (i, step) in self.steps.iter_mut().enumerate() {
            step.place(map, &steps.index(i));
        }
    }

    /// The network steps, in order: what the stack must be prepared for.
    pub fn network_actions(&self) -> impl Iterator<Item = &NetworkAction> {
        self.steps.iter().filter_map(|s| match &s.action {
            Action::Network(n) => Some(n),
            _ => None,
        })
    }
}

/// `retry: { timeout, interval, fail_if }`: repeat the step until its
/// expectations hold, or stop at once, failed, when `fail_if` holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub timeout: Interval,
    pub interval: Interval,
    /// Expectations (of the step's kind) that mean waiting longer is pointless.
    pub fail_if: Option<Expect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    timeout: Interval,
    #[serde(default = "default_interval")]
    interval: Interval,
    #[serde(default)]
    fail_if: Option<RawExpect>,
}

impl RawRetry {
    fn typed(self, action: &Action) -> Result<Retry, String> {
        if self.interval.0 < MIN_RETRY_INTERVAL {
            return Err(format!(
                "retry \"interval\" must be at least {}, got {}",
                humantime::format_duration(MIN_RETRY_INTERVAL),
                humantime::format_duration(self.interval.0)
            ));
        }
        let fail_if = match self.fail_if {
            None => None,
            Some(raw) => {
                let expect = raw
                    .typed(action)
                    .map_err(|e| format!("retry.fail_if: {e}"))?;
                if expect.is_empty() {
                    return Err(format!(
                        "retry \"fail_if\" needs at least one expectation a {} step can check",
                        action.kind()
                    ));
                }
                Some(expect)
            }
        };
        Ok(Retry {
            timeout: self.timeout,
            interval: self.interval,
            fail_if,
        })
    }
}

fn default_interval() -> Interval {
    Interval(Duration::from_millis(500))
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
        let operands: Vec<&Value> = match check {
            // Bounds of a comparison (`lt: 600`) need not be statuses themselves.
            Check::Equals(v) | Check::NotEquals(v) => vec![v],
            Check::OneOf(items) => items.iter().collect(),
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
    #[serde(default)]
    pub method: HttpMethod,
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
/// The HTTP methods an `http` step can send; written in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
}

impl HttpMethod {
    const ALL: [HttpMethod; 7] = [
        HttpMethod::Get,
        HttpMethod::Head,
        HttpMethod::Post,
        HttpMethod::Put,
        HttpMethod::Patch,
        HttpMethod::Delete,
        HttpMethod::Options,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HttpMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HttpMethod::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(&text))
            .ok_or_else(|| {
                let names: Vec<&str> = HttpMethod::ALL.iter().map(|m| m.as_str()).collect();
                de::Error::custom(format!(
                    "http.method {text:?} is not one of {}",
                    names.join(", ")
                ))
            })
    }
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

/// One step: an action, what its result must show, what it saves for later.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawStep")]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub retry: Option<Retry>,
    pub expect: Expect,
    pub capture: Vec<Capture>,
    /// Where the step starts in its file.
    pub span: Span,
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
    sleep: Option<Interval>,
    retry: Option<RawRetry>,
    #[serde(default)]
    expect: RawExpect,
    #[serde(default)]
    capture: Ordered<String, String>,
}

impl RawStep {
    fn actions(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        actions.extend(self.http.take().map(Action::Http));
        actions.extend(self.docker.take().map(Action::Docker));
        actions.extend(self.network.take().map(Action::Network));
        actions.extend(self.sql.take().map(Action::Sql));
        actions.extend(self.metrics.take().map(Action::Metrics));
        actions.extend(self.logs.take().map(Action::Logs));
        actions.extend(self.sleep.take().map(|s| Action::Sleep(s.0)));
        actions
    }
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(mut raw: RawStep) -> Result<Step, String> {
        let label = match raw.name.as_deref() {
            None | Some("") => String::new(),
            Some(name) => format!("step {name:?}: "),
        };
        let mut actions = raw.actions();
        if actions.len() != 1 {
            return Err(format!(
                "{label}a step needs exactly one action (http, docker, network, sql, metrics, logs or sleep), found {}",
                actions.len()
            ));
        }
        let action = actions.remove(0);
        let labelled = |e: String| format!("{label}{e}");
        check_action(&action).map_err(labelled)?;
        if let Some(why) = raw.expect.status.as_ref().and_then(status_problem) {
            return Err(format!("{label}expectation \"status\": {why}"));
        }
        let expect = raw.expect.typed(&action).map_err(labelled)?;
        let retry = raw
            .retry
            .map(|r| r.typed(&action))
            .transpose()
            .map_err(labelled)?;
        let capture = raw
            .capture
            .0
            .iter()
            .map(|(name, source)| {
                Capture::parse(&action, name, source)
                    .map_err(|e| format!("{label}capture.{name}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        let name = raw.name.unwrap_or_else(|| action.describe());
        Ok(Step {
            name,
            action,
            retry,
            expect,
            capture,
            span: Span::default(),
        })
    }
}

/// Checks of an action that need more than its own fields' types.
fn check_action(action: &Action) -> Result<(), String> {
    match action {
        Action::Logs(l) => match (&l.contains, &l.matches) {
            (None, None) | (Some(_), Some(_)) => {
                Err("a logs step takes one of contains or matches".into())
            }
            (_, Some(re)) if !template::has_template(re) => regex::Regex::new(re)
                .map(|_| ())
                .map_err(|e| format!("logs.matches: invalid regex: {e}")),
            _ => Ok(()),
        },
        Action::Http(h) if !h.path.starts_with('/') && !template::has_template(&h.path) => {
            Err(format!("http.path {:?} must start with /", h.path))
        }
        _ => Ok(()),
    }
}

impl Step {
    /// Gives the step, its matchers and its captures their positions; `at` is
    /// the step's path in the document.
    pub(crate) fn place(&mut self, map: &SourceMap, at: &NodePath) {
        self.span = map.key(at);
        self.expect.place(map, &at.key("expect"));
        if let Some(retry) = &mut self.retry
            && let Some(fail_if) = &mut retry.fail_if
        {
            fail_if.place(map, &at.key("retry").key("fail_if"));
        }
        let captures = at.key("capture");
        for (i, capture) in self.capture.iter_mut().enumerate() {
            capture.span = map.entry(&captures, i);
        }
    }
}
