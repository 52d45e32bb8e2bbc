//! The scenario format, as typed values; [`crate::decode`] builds them from
//! the parsed file, checking each node where it is written.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use serde_json_path::JsonPath;

use crate::capture::Capture;
use crate::expect::Expect;
use crate::network::NetworkAction;
use crate::span::Span;

/// A map that keeps the file's order (assertions run and report in that order).
#[derive(Debug, Clone, PartialEq)]
pub struct Ordered<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for Ordered<K, V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

/// A duration written as `30s`, `500ms`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Duration);

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

/// Why text is not a JSONPath.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a JSONPath (RFC 9535) such as $.data[0].status: {why}")]
pub struct JsonPathError {
    pub text: String,
    pub why: String,
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, JsonPathError> {
        JsonPath::parse(text)
            .map(|path| Path {
                text: text.to_owned(),
                path,
            })
            .map_err(|e| JsonPathError {
                text: text.to_owned(),
                why: e.to_string(),
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

/// `row.column` in an SQL expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub row: usize,
    pub column: String,
}

impl Cell {
    /// Parses `ROW.COLUMN`; `None` when `text` is not one.
    pub fn parse(text: &str) -> Option<Cell> {
        text.split_once('.')
            .and_then(|(row, column)| {
                Some(Cell {
                    row: row.parse().ok()?,
                    column: column.to_owned(),
                })
            })
            .filter(|c| !c.column.is_empty())
    }
}

/// A scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub timeout: Option<Interval>,
    /// `isolated:` as written: `None` lets the steps decide (see [`crate::isolation`]).
    pub isolated: Option<bool>,
    /// How many of the run's job slots it takes while it runs.
    pub slots: Slots,
    pub steps: Vec<Step>,
}

/// How much of the machine a scenario needs, in the run's job slots
/// (`--jobs`), as nextest's `threads-required`: a scenario that loads the
/// machine (a target of 200,000 series) takes several, or `all` to run with
/// no other scenario beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    Count(u32),
    All,
}

impl Default for Slots {
    fn default() -> Self {
        Slots::Count(1)
    }
}

impl Slots {
    /// The slots taken in a run of `jobs`: never more than there are.
    pub fn of(self, jobs: usize) -> usize {
        let jobs = jobs.max(1);
        match self {
            Slots::Count(n) => (n as usize).clamp(1, jobs),
            Slots::All => jobs,
        }
    }
}

impl Scenario {
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

/// The retry interval when none is given.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_millis(500);

/// The shortest retry interval: shorter ones only hammer the system under test.
pub const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(50);

/// A query parameter value: one value or several (repeated parameter).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Many(Vec<Value>),
    One(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpAction {
    pub service: String,
    pub method: HttpMethod,
    pub path: String,
    pub query: Ordered<String, QueryValue>,
    pub headers: Ordered<String, String>,
    pub json: Option<Value>,
}

/// The service an `http` step calls when it names none.
pub const DEFAULT_HTTP_SERVICE: &str = "api";

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

    /// The method written `text`, in any case.
    pub fn parse(text: &str) -> Option<HttpMethod> {
        HttpMethod::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(text))
    }

    /// Every method, as messages list them.
    pub fn names() -> String {
        let names: Vec<&str> = HttpMethod::ALL.iter().map(|m| m.as_str()).collect();
        names.join(", ")
    }

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
    /// Every verb, in the order messages list them.
    pub const ALL: [DockerVerb; 6] = [
        DockerVerb::Stop,
        DockerVerb::Start,
        DockerVerb::Restart,
        DockerVerb::Kill,
        DockerVerb::Pause,
        DockerVerb::Unpause,
    ];

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

#[derive(Debug, Clone, PartialEq)]
pub struct DockerAction {
    pub verb: DockerVerb,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsAction {
    pub service: String,
    pub path: String,
}

/// The page a `metrics` step reads when it names none.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

#[derive(Debug, Clone, PartialEq)]
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

    /// How the step is shown when it has no name.
    pub fn describe(&self) -> String {
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
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub retry: Option<Retry>,
    pub expect: Expect,
    pub capture: Vec<Capture>,
    /// Where the step starts in its file.
    pub span: Span,
}
