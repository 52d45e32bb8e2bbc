//! Runs one step: its action (one module per step kind, each returning what it
//! observed), then the expectations and captures on that observation
//! (`runner::expect`, pure), repeated under `retry`.

mod docker;
mod http;
mod logs;
mod metrics;
mod network;
mod sleep;
mod sql;

use std::time::{Duration, Instant};

use crate::runner::expect::{self, Finding};
use crate::runner::observation::Observation;
use crate::runner::report::{FailureDetail, Outcome, StepReport};
use crate::runner::target::StackHandle;
use crate::scenario::load::Loaded;
use crate::scenario::matcher::short;
use crate::scenario::model::{Action, MIN_RETRY_INTERVAL, Retry, Step};
use crate::scenario::span::Span;
use crate::scenario::template::Vars;

/// What a step runs against.
pub struct StepContext<'a> {
    pub stack: &'a mut StackHandle,
    pub vars: &'a mut Vars,
    pub http: &'a reqwest::Client,
    /// The scenario: its folder (JSON Schemas are relative to it) and its text
    /// (failures show their line).
    pub loaded: &'a Loaded,
    pub request_timeout: Duration,
}

/// What an action observed, and the request that observed it, as shown in reports.
pub(crate) struct Seen {
    pub request: String,
    pub observation: Observation,
}

/// An action that could not observe anything (no response, unknown service, …).
#[derive(Debug)]
pub(crate) struct Trouble {
    pub request: Option<String>,
    /// An http request that got no response, as a `curl` command line.
    pub curl: Option<String>,
    pub status: Option<u16>,
    pub error: String,
}

impl Trouble {
    pub fn new(error: impl ToString) -> Trouble {
        Trouble {
            request: None,
            curl: None,
            status: None,
            error: error.to_string(),
        }
    }

    /// A request that got no response, with the root cause of why.
    pub fn no_response(e: &reqwest::Error, shown: &str) -> Trouble {
        let why = crate::engine::root_cause(e);
        Trouble::new(format!("no response: {why}")).request(shown)
    }

    #[must_use]
    pub fn request(mut self, shown: &str) -> Trouble {
        self.request = Some(shown.to_owned());
        self
    }

    #[must_use]
    pub fn curl(mut self, curl: String) -> Trouble {
        self.curl = Some(curl);
        self
    }
}

type Captures = Vec<(String, serde_json::Value)>;

/// A failed attempt, and whether another attempt can still help.
struct Failed {
    detail: FailureDetail,
    /// `fail_if` held: make no more attempts.
    final_: bool,
}

/// Runs a step, attempting it again under `retry:` until its expectations
/// hold, `retry.timeout` passes, or its `fail_if` holds.
pub async fn run(step: &Step, ctx: &mut StepContext<'_>) -> StepReport {
    let started = Instant::now();
    let deadline = step.retry.as_ref().map(|r| started + r.timeout.0);
    let mut backoff = Backoff::new(step.retry.as_ref());
    let mut attempts = 0;
    loop {
        attempts += 1;
        let failed = match attempt(step, ctx).await {
            Ok(captures) => {
                for (name, value) in captures {
                    ctx.vars.set(name, value);
                }
                return report(step, Outcome::Passed, started, None);
            }
            Err(failed) => failed,
        };
        let wait = backoff.next();
        if !failed.final_ && deadline.is_some_and(|d| Instant::now() + wait < d) {
            tokio::time::sleep(wait).await;
            continue;
        }
        let mut detail = failed.detail;
        detail.attempts = attempts;
        return report(step, Outcome::Failed, started, Some(detail));
    }
}

/// Poll intervals under `retry`: the first poll comes soon, later ones back
/// off by doubling up to the step's `interval`, so a condition that is about
/// to hold is seen quickly and a slow one is not hammered.
struct Backoff {
    next: Duration,
    max: Duration,
}

/// The first wait of a retried step (or its interval, when shorter).
const FIRST_POLL: Duration = Duration::from_millis(100);

impl Backoff {
    fn new(retry: Option<&Retry>) -> Backoff {
        let max = retry.map(|r| r.interval.0).unwrap_or_default();
        Backoff {
            next: FIRST_POLL.max(MIN_RETRY_INTERVAL).min(max),
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }
}

/// A step's report, located where its first failure points (else at the step).
pub(crate) fn report(
    step: &Step,
    outcome: Outcome,
    started: Instant,
    failure: Option<FailureDetail>,
) -> StepReport {
    // A failure is located where its first diagnostic points (the matcher
    // that did not hold); a step that passed, at the step.
    let at = failure
        .as_ref()
        .and_then(|f| f.diagnostics.first())
        .and_then(|d| Some(Span::new(d.line?, d.column.unwrap_or(0))))
        .unwrap_or(step.span);
    let (line, column) = position(at);
    StepReport {
        name: step.name.clone(),
        kind: step.action.kind().into(),
        outcome,
        duration: started.elapsed(),
        line,
        column,
        failure,
    }
}

/// A span as a report's line and column (none where unknown).
fn position(span: Span) -> (Option<u32>, Option<u32>) {
    let known = |n: usize| u32::try_from(n).ok().filter(|n| *n > 0);
    (known(span.line), known(span.column))
}

async fn observe(step: &Step, ctx: &mut StepContext<'_>) -> Result<Seen, Trouble> {
    match &step.action {
        Action::Http(h) => http::observe(h, ctx).await,
        Action::Sql(query) => sql::observe(query, ctx).await,
        Action::Metrics(m) => metrics::observe(m, ctx).await,
        Action::Logs(l) => logs::observe(l, ctx).await,
        Action::Docker(d) => docker::act(d, ctx).await,
        Action::Network(n) => network::act(n, ctx).await,
        Action::Sleep(d) => Ok(sleep::act(*d).await),
    }
}

/// One attempt: act, check, capture.
async fn attempt(step: &Step, ctx: &mut StepContext<'_>) -> Result<Captures, Failed> {
    let seen = observe(step, ctx).await.map_err(|t| Failed {
        detail: trouble(step, ctx.loaded, t),
        final_: false,
    })?;
    let checked = match (&step.action, &seen.observation) {
        (Action::Logs(l), Observation::Logs(text)) => logs::check(l, text, ctx.vars),
        _ => expect::check(&step.expect, &seen.observation, ctx.vars),
    };
    let findings = checked.map_err(|e| Failed {
        detail: observed(step, ctx.loaded, &seen, vec![], Some(e.to_string())),
        final_: false,
    })?;
    if !findings.is_empty() {
        return Err(give_up_if(step, ctx, &seen, findings));
    }
    expect::capture(&step.capture, &seen.observation).map_err(|f| Failed {
        detail: observed(step, ctx.loaded, &seen, vec![f], None),
        final_: false,
    })
}

/// The failure of an attempt whose expectations did not hold; final when the
/// step's `fail_if` holds on the same observation.
fn give_up_if(step: &Step, ctx: &StepContext<'_>, seen: &Seen, findings: Vec<Finding>) -> Failed {
    let mut detail = observed(step, ctx.loaded, seen, findings, None);
    let Some(fail_if) = step.retry.as_ref().and_then(|r| r.fail_if.as_ref()) else {
        return Failed {
            detail,
            final_: false,
        };
    };
    let held =
        expect::check(fail_if, &seen.observation, ctx.vars).is_ok_and(|unmet| unmet.is_empty());
    if held {
        let why = "retry stopped early: fail_if holds, so waiting longer cannot help";
        detail.error = Some(why.into());
        detail
            .diagnostics
            .push(ctx.loaded.diagnostic(fail_if.first_span(), why.into()));
    }
    Failed {
        detail,
        final_: held,
    }
}

/// The failure of an action that observed nothing, positioned at the step.
fn trouble(step: &Step, loaded: &Loaded, t: Trouble) -> FailureDetail {
    let message = format!("step {:?} failed: {}", step.name, t.error);
    FailureDetail {
        request: t.request,
        curl: t.curl,
        status: t.status,
        diagnostics: vec![loaded.diagnostic(step.span, message)],
        error: Some(t.error),
        attempts: 1,
        ..Default::default()
    }
}

/// The failure of an attempt that observed something: every finding at its
/// own line, with the observation's status and body.
fn observed(
    step: &Step,
    loaded: &Loaded,
    seen: &Seen,
    findings: Vec<Finding>,
    error: Option<String>,
) -> FailureDetail {
    let (status, body) = match &seen.observation {
        Observation::Http(h) => (Some(h.status), Some(excerpt(&h.body))),
        Observation::Sql(table) => (None, Some(excerpt(&short(table)))),
        Observation::Logs(text) => (None, Some(logs::tail(text))),
        Observation::Metrics(_) | Observation::Nothing => (None, None),
    };
    let curl = match &seen.observation {
        Observation::Http(h) => Some(h.curl.clone()),
        _ => None,
    };
    let at = |span: Span| if span.is_known() { span } else { step.span };
    let mut diagnostics: Vec<_> = findings
        .iter()
        .map(|f| {
            loaded
                .diagnostic(at(f.span), format!("{} did not hold", f.what))
                .with_label(f.text.clone())
        })
        .collect();
    if let Some(e) = &error {
        diagnostics.push(loaded.diagnostic(step.span, format!("step {:?} failed: {e}", step.name)));
    }
    FailureDetail {
        request: Some(seen.request.clone()),
        curl,
        status,
        body,
        mismatches: findings.iter().map(Finding::line).collect(),
        diagnostics,
        error,
        attempts: 1,
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 2000;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Interval;

    #[test]
    fn polling_starts_fast_and_backs_off_to_the_interval() {
        let retry = Retry {
            timeout: Interval(Duration::from_secs(30)),
            interval: Interval(Duration::from_millis(500)),
            fail_if: None,
        };
        let mut b = Backoff::new(Some(&retry));
        let waits: Vec<u128> = (0..5).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn an_interval_shorter_than_the_first_poll_is_kept() {
        let retry = Retry {
            timeout: Interval(Duration::from_secs(1)),
            interval: Interval(Duration::from_millis(60)),
            fail_if: None,
        };
        let mut b = Backoff::new(Some(&retry));
        assert_eq!(b.next(), Duration::from_millis(60));
        assert_eq!(b.next(), Duration::from_millis(60));
    }
}
