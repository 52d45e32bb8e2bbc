//! Reading the scenario and its steps from the parsed tree: the top-level
//! keys, each step's action, retry, expectations and captures.

use crate::decode::{Decoder, Fields};
use crate::decode_expect::{self, RawExpect};
use crate::error::{LoadError, Problem};
use crate::model::{
    Action, DEFAULT_HTTP_SERVICE, DEFAULT_METRICS_PATH, DEFAULT_RETRY_INTERVAL, DockerAction,
    DockerVerb, HttpAction, HttpMethod, Interval, LogsAction, MIN_RETRY_INTERVAL, MetricsAction,
    Ordered, QueryValue, Retry, Scenario, Step,
};
use crate::span::{NodePath, Span};
use crate::suggest::{self, quoted};
use crate::template;
use crate::yaml::{Kind, Node};

const SCENARIO_KEYS: &[&str] = &[
    "name",
    "description",
    "tags",
    "timeout",
    "isolated",
    "slots",
    "steps",
];
const ACTION_KEYS: &[&str] = &[
    "http", "docker", "network", "sql", "metrics", "logs", "sleep",
];
const STEP_KEYS: &[&str] = &[
    "name", "http", "docker", "network", "sql", "metrics", "logs", "sleep", "retry", "expect",
    "capture",
];
const RETRY_KEYS: &[&str] = &["timeout", "interval", "fail_if"];
const HTTP_KEYS: &[&str] = &["service", "method", "path", "query", "headers", "json"];
const DOCKER_KEYS: &[&str] = &["stop", "start", "restart", "kill", "pause", "unpause"];
const METRICS_KEYS: &[&str] = &["service", "path"];
const LOGS_KEYS: &[&str] = &["service", "contains", "matches"];

/// A step being read: where step-level problems are shown (under `steps`,
/// after the step's name when it has one, as they always were).
pub(crate) struct StepAt {
    pub path: NodePath,
    name: Option<String>,
}

impl StepAt {
    fn problem(&self, span: Span, error: LoadError) -> Problem {
        let error = match &self.name {
            Some(name) => LoadError::InStep {
                name: name.clone(),
                error: Box::new(error),
            },
            None => error,
        };
        Problem::new(span, error).under(&self.path.parent())
    }
}

impl Decoder<'_> {
    /// The scenario of the document's root, if every part of it could be read.
    pub(crate) fn scenario(&mut self, root: &Node) -> Option<Scenario> {
        let path = NodePath::root();
        let f = self.fields(root, &path, root.span, SCENARIO_KEYS, "a mapping")?;
        let name = self
            .required(&f, "name")
            .and_then(|n| self.string(n, &f.path_of("name")));
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            self.error(f.key_span("name"), &path, LoadError::EmptyName);
        }
        let description = f
            .given("description")
            .and_then(|n| self.string(n, &f.path_of("description")));
        let tags = match f.given("tags") {
            Some(n) => self.strings(n, &f.path_of("tags")),
            None => Some(Vec::new()),
        };
        let timeout = f
            .given("timeout")
            .map(|n| self.interval(n, &f.path_of("timeout")));
        let isolated = f
            .given("isolated")
            .map(|n| self.bool(n, &f.path_of("isolated")));
        let slots = f.given("slots").map(|n| self.slots(n, &f.path_of("slots")));
        let steps = self.required(&f, "steps").and_then(|n| self.steps(n, &f));
        Some(Scenario {
            name: name?,
            description,
            tags: tags?,
            timeout: read(timeout)?,
            isolated: read(isolated)?,
            slots: read(slots)?.unwrap_or_default(),
            steps: steps?,
        })
    }

    fn steps(&mut self, node: &Node, f: &Fields<'_>) -> Option<Vec<Step>> {
        let path = f.path_of("steps");
        let Kind::Seq(items) = &node.kind else {
            self.invalid_type(node, &path, "a sequence");
            return None;
        };
        if items.is_empty() {
            self.error(f.key_span("steps"), &NodePath::root(), LoadError::NoSteps);
        }
        let steps: Vec<Option<Step>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.step(item, &path.index(i)))
            .collect();
        steps.into_iter().collect()
    }

    fn step(&mut self, node: &Node, path: &NodePath) -> Option<Step> {
        let f = self.fields(node, path, node.span, STEP_KEYS, "a mapping")?;
        let name = f
            .given("name")
            .and_then(|n| self.string(n, &f.path_of("name")));
        let at = StepAt {
            path: path.clone(),
            name: name.clone().filter(|n| !n.is_empty()),
        };
        let written: Vec<&str> = ACTION_KEYS
            .iter()
            .copied()
            .filter(|k| f.given(k).is_some())
            .collect();
        let actions: Vec<Option<Action>> =
            written.iter().map(|k| self.action(k, &f, &at)).collect();
        if written.len() != 1 && !(written.is_empty() && f.unknown) {
            self.report(at.problem(node.span, LoadError::ActionCount(written.len())));
        }
        let expect = self.raw_expect(f.get("expect"), &f.path_of("expect"));
        let retry = f.given("retry").map(|n| self.raw_retry(n, &f));
        let action = match (actions.as_slice(), written.as_slice()) {
            ([Some(action)], _) => action.clone(),
            ([None], [kind]) => {
                // The action is told already; its kind still says what the
                // step may expect.
                self.misplaced(&expect, kind, &at, |e| e);
                return None;
            }
            _ => return None,
        };
        let expect = self.typed_expect(expect, &action, &at, |e| e);
        let retry = match retry {
            None => Some(None),
            Some(raw) => raw.and_then(|raw| self.retry(raw, &action, &at)).map(Some),
        };
        let capture = self.captures(
            f.get("capture"),
            &f.path_of("capture"),
            &action,
            |d, span, e| {
                d.report(at.problem(span, e));
            },
        );
        Some(Step {
            name: name.unwrap_or_else(|| action.describe()),
            action,
            retry: retry?,
            expect: expect?,
            capture: capture?,
            span: node.span,
        })
    }

    /// Expectations typed for the action, each misplaced key told at itself.
    fn typed_expect(
        &mut self,
        raw: RawExpect,
        action: &Action,
        at: &StepAt,
        wrap: impl Fn(LoadError) -> LoadError,
    ) -> Option<crate::expect::Expect> {
        let told = self.misplaced(&raw, action.kind(), at, wrap);
        // A part that could not be read is told already; what is left was
        // still checked against the step's kind, but is not built.
        (!told && !raw.broken).then(|| decode_expect::typed(raw, action))
    }

    /// Tells what a step of `kind` cannot expect; whether anything was told.
    fn misplaced(
        &mut self,
        raw: &RawExpect,
        kind: &'static str,
        at: &StepAt,
        wrap: impl Fn(LoadError) -> LoadError,
    ) -> bool {
        let problems = decode_expect::misplaced(raw, kind);
        let told = !problems.is_empty();
        for (span, error, help) in problems {
            self.report(at.problem(span, wrap(error)).with_help(help));
        }
        told
    }

    fn action(&mut self, key: &str, f: &Fields<'_>, at: &StepAt) -> Option<Action> {
        let node = f.get(key)?;
        let path = f.path_of(key);
        let named = f.key_span(key);
        match key {
            "http" => self.http(node, &path, named, at).map(Action::Http),
            "docker" => self.docker(node, &path, named).map(Action::Docker),
            "network" => self.network(node, &path, named).map(Action::Network),
            "sql" => self.string(node, &path).map(Action::Sql),
            "metrics" => self.metrics(node, &path, named).map(Action::Metrics),
            "logs" => self.logs(node, &path, named, at).map(Action::Logs),
            _ => self.interval(node, &path).map(|i| Action::Sleep(i.0)),
        }
    }

    /// A service the stack must have, checked where it is written.
    pub(crate) fn service(
        &mut self,
        node: Option<&Node>,
        path: &NodePath,
        at: Span,
    ) -> Option<String> {
        let (name, span) = match node {
            Some(n) => (self.string(n, path)?, n.span),
            None => (DEFAULT_HTTP_SERVICE.to_owned(), at),
        };
        if let Some(services) = &self.context.services
            && !services.contains(&name)
        {
            let help = suggest::did_you_mean(&name, services.iter().map(String::as_str), quoted);
            let error = LoadError::UnknownService {
                service: name.clone(),
                services: services.join(", "),
            };
            self.report(Problem::new(span, error).with_help(help));
        }
        Some(name)
    }

    fn http(
        &mut self,
        node: &Node,
        path: &NodePath,
        named: Span,
        at: &StepAt,
    ) -> Option<HttpAction> {
        let f = self.fields(node, path, named, HTTP_KEYS, "a mapping")?;
        let service = self.service(f.given("service"), &f.path_of("service"), named);
        let method = match f.given("method") {
            None => Some(HttpMethod::default()),
            Some(n) => self.string(n, &f.path_of("method")).and_then(|text| {
                let method = HttpMethod::parse(&text);
                if method.is_none() {
                    self.error(n.span, path, LoadError::Method { text });
                }
                method
            }),
        };
        let target = self.required(&f, "path").and_then(|n| {
            let text = self.string(n, &f.path_of("path"))?;
            if !text.starts_with('/') && !template::has_template(&text) {
                self.report(at.problem(n.span, LoadError::PathSlash(text)));
                return None;
            }
            Some(text)
        });
        let query = f.given("query").map(|n| self.query(n, &f.path_of("query")));
        let headers = f.given("headers").map(|n| {
            let path = f.path_of("headers");
            let mut out = Vec::new();
            for (k, v) in self.entries(n, &path) {
                let key = k.text().unwrap_or_default().to_owned();
                out.push((key.clone(), self.string(v, &path.key(key))?));
            }
            Some(Ordered(out))
        });
        Some(HttpAction {
            service: service?,
            method: method?,
            path: target?,
            query: query.unwrap_or_default(),
            headers: headers.unwrap_or(Some(Ordered::default()))?,
            json: f.given("json").map(crate::decode::to_json),
        })
    }

    fn query(&mut self, node: &Node, path: &NodePath) -> Ordered<String, QueryValue> {
        let entries = self.entries(node, path);
        Ordered(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = k.text().unwrap_or_default().to_owned();
                    let value = match crate::decode::to_json(v) {
                        serde_json::Value::Array(items) => QueryValue::Many(items),
                        one => QueryValue::One(one),
                    };
                    (key, value)
                })
                .collect(),
        )
    }

    fn docker(&mut self, node: &Node, path: &NodePath, named: Span) -> Option<DockerAction> {
        let f = self.fields(node, path, named, DOCKER_KEYS, "a mapping")?;
        let given: Vec<DockerVerb> = DockerVerb::ALL
            .into_iter()
            .filter(|v| f.given(v.key()).is_some())
            .collect();
        let [verb] = given.as_slice() else {
            self.error(named, &path.parent(), LoadError::DockerVerbs);
            return None;
        };
        let service = self.service(f.get(verb.key()), &f.path_of(verb.key()), named)?;
        Some(DockerAction {
            verb: *verb,
            service,
        })
    }

    fn metrics(&mut self, node: &Node, path: &NodePath, named: Span) -> Option<MetricsAction> {
        let f = self.fields(node, path, named, METRICS_KEYS, "a mapping")?;
        let service = self
            .required(&f, "service")
            .and_then(|n| self.service(Some(n), &f.path_of("service"), named));
        let page = match f.given("path") {
            Some(n) => self.string(n, &f.path_of("path")),
            None => Some(DEFAULT_METRICS_PATH.to_owned()),
        };
        Some(MetricsAction {
            service: service?,
            path: page?,
        })
    }

    fn logs(
        &mut self,
        node: &Node,
        path: &NodePath,
        named: Span,
        at: &StepAt,
    ) -> Option<LogsAction> {
        let f = self.fields(node, path, named, LOGS_KEYS, "a mapping")?;
        let service = self
            .required(&f, "service")
            .and_then(|n| self.service(Some(n), &f.path_of("service"), named));
        let contains = f
            .given("contains")
            .map(|n| self.string(n, &f.path_of("contains")));
        let matches = f.given("matches").map(|n| {
            let text = self.string(n, &f.path_of("matches"));
            text.map(|t| (n.span, t))
        });
        let (contains, matches) = (read(contains)?, read(matches)?);
        match (&contains, &matches) {
            (None, None) | (Some(_), Some(_)) => {
                self.report(at.problem(named, LoadError::LogsNeedle));
                return None;
            }
            (_, Some((span, re))) if !template::has_template(re) => {
                if let Err(e) = regex::Regex::new(re) {
                    self.report(at.problem(*span, LoadError::LogsRegex(e.to_string())));
                    return None;
                }
            }
            _ => {}
        }
        Some(LogsAction {
            service: service?,
            contains,
            matches: matches.map(|(_, m)| m),
        })
    }
}

/// An optional value as read: absent is `Some(None)`, unreadable `None`.
fn read<T>(value: Option<Option<T>>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(Some(v)) => Some(Some(v)),
        Some(None) => None,
    }
}

/// `retry:` as written, before the step's kind types its `fail_if`.
pub(crate) struct RawRetry {
    timeout: Interval,
    interval: Interval,
    interval_at: Span,
    fail_if: Option<(Span, RawExpect)>,
}

impl Decoder<'_> {
    fn raw_retry(&mut self, node: &Node, step: &Fields<'_>) -> Option<RawRetry> {
        let path = step.path_of("retry");
        let f = self.fields(node, &path, step.key_span("retry"), RETRY_KEYS, "a mapping")?;
        let timeout = self
            .required(&f, "timeout")
            .and_then(|n| self.interval(n, &f.path_of("timeout")));
        let interval = match f.given("interval") {
            Some(n) => self.interval(n, &f.path_of("interval")),
            None => Some(Interval(DEFAULT_RETRY_INTERVAL)),
        };
        let fail_if = f.given("fail_if").map(|n| {
            (
                f.key_span("fail_if"),
                self.raw_expect(Some(n), &f.path_of("fail_if")),
            )
        });
        Some(RawRetry {
            timeout: timeout?,
            interval: interval?,
            interval_at: f.key_span("interval"),
            fail_if,
        })
    }

    fn retry(&mut self, raw: RawRetry, action: &Action, at: &StepAt) -> Option<Retry> {
        if raw.interval.0 < MIN_RETRY_INTERVAL {
            let error = LoadError::RetryInterval {
                min: MIN_RETRY_INTERVAL,
                got: raw.interval.0,
            };
            self.report(at.problem(raw.interval_at, error));
            return None;
        }
        let fail_if = match raw.fail_if {
            None => None,
            Some((span, raw)) => {
                let expect =
                    self.typed_expect(raw, action, at, |e| LoadError::FailIf(Box::new(e)))?;
                if expect.is_empty() {
                    self.report(at.problem(span, LoadError::FailIfEmpty(action.kind())));
                    return None;
                }
                Some(expect)
            }
        };
        Some(Retry {
            timeout: raw.timeout,
            interval: raw.interval,
            fail_if,
        })
    }
}
