//! Executes one step: its action, its expectations, its captures, with retry.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::runner::report::{FailureDetail, Outcome, StepReport};
use crate::runner::target::StackHandle;
use crate::scenario::load::load_schema;
use crate::scenario::matcher::{Matcher, Mismatch, scalar_text, short};
use crate::scenario::model::{
    Action, DockerAction, HttpAction, LogsAction, MetricsAction, Path as JsonPath, QueryValue, Step,
};
use crate::scenario::network::NetworkAction;
use crate::scenario::selector::Selector;
use crate::scenario::template::{self, Vars};

/// What a step runs against.
pub struct StepContext<'a> {
    pub stack: &'a mut StackHandle,
    pub vars: &'a mut Vars,
    pub http: &'a reqwest::Client,
    /// Folder of the scenario file (JSON Schemas are relative to it).
    pub dir: &'a Path,
    pub request_timeout: Duration,
}

type Captures = Vec<(String, Value)>;
type Attempt = Result<Captures, FailureDetail>;

/// Runs a step, repeating it under `retry` until its expectations hold.
pub async fn run(step: &Step, ctx: &mut StepContext<'_>) -> StepReport {
    let started = Instant::now();
    let deadline = step.retry.map(|r| started + r.timeout.0);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(step, ctx).await {
            Ok(captures) => {
                for (name, value) in captures {
                    ctx.vars.set(name, value);
                }
                return report(step, Outcome::Passed, started, None);
            }
            Err(mut detail) => {
                let interval = step.retry.map(|r| r.interval.0).unwrap_or_default();
                if deadline.is_some_and(|d| Instant::now() + interval < d) {
                    tokio::time::sleep(interval).await;
                    continue;
                }
                detail.attempts = attempts;
                return report(step, Outcome::Failed, started, Some(detail));
            }
        }
    }
}

fn report(
    step: &Step,
    outcome: Outcome,
    started: Instant,
    failure: Option<FailureDetail>,
) -> StepReport {
    StepReport {
        name: step.name.clone(),
        kind: step.action.kind().into(),
        outcome,
        duration: started.elapsed(),
        failure,
    }
}

fn error(message: impl Into<String>) -> FailureDetail {
    FailureDetail {
        error: Some(message.into()),
        ..Default::default()
    }
}

async fn attempt(step: &Step, ctx: &mut StepContext<'_>) -> Attempt {
    match &step.action {
        Action::Http(h) => http(h, step, ctx).await,
        Action::Sql(query) => sql(query, step, ctx).await,
        Action::Metrics(m) => metrics(m, step, ctx).await,
        Action::Logs(l) => logs(l, ctx).await,
        Action::Docker(d) => docker(d, ctx).await,
        Action::Network(n) => network(n, ctx).await,
        Action::Sleep(d) => {
            tokio::time::sleep(*d).await;
            Ok(vec![])
        }
    }
}

/// Checks one matcher and words each failure as `what: expected …, actual …`.
fn check(
    what: &str,
    matcher: &Matcher,
    actual: Option<&Value>,
    vars: &Vars,
    out: &mut Vec<String>,
) -> Result<(), FailureDetail> {
    let failed: Vec<Mismatch> = matcher.evaluate(actual, vars).map_err(error)?;
    out.extend(failed.into_iter().map(|m| format!("{what}: {m}")));
    Ok(())
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 2000;
    if text.len() <= MAX {
        text.to_owned()
    } else {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes in all)", &text[..end], text.len())
    }
}

async fn http(h: &HttpAction, step: &Step, ctx: &mut StepContext<'_>) -> Attempt {
    let vars = &*ctx.vars;
    let base = ctx.stack.url_of(&h.service).map_err(error)?;
    let path = template::render_str(&h.path, vars).map_err(error)?;
    let mut query: Vec<(String, String)> = Vec::new();
    for (key, value) in &h.query.0 {
        let values = match value {
            QueryValue::One(v) => vec![v.clone()],
            QueryValue::Many(vs) => vs.clone(),
        };
        for v in values {
            query.push((
                key.clone(),
                scalar_text(&template::render_value(&v, vars).map_err(error)?),
            ));
        }
    }
    let method = reqwest::Method::from_bytes(h.method.to_ascii_uppercase().as_bytes())
        .map_err(|e| error(e.to_string()))?;
    let mut builder = ctx
        .http
        .request(method.clone(), format!("{base}{path}"))
        .query(&query)
        .timeout(ctx.request_timeout);
    for (name, value) in &h.headers.0 {
        builder = builder.header(name, template::render_str(value, vars).map_err(error)?);
    }
    if let Some(body) = &h.json {
        builder = builder.json(&template::render_value(body, vars).map_err(error)?);
    }
    let request = builder
        .build()
        .map_err(|e| error(format!("build the request: {e}")))?;
    let shown = format!("{} {}", request.method(), request.url());
    let sent = Instant::now();
    let response = ctx.http.execute(request).await.map_err(|e| FailureDetail {
        request: Some(shown.clone()),
        error: Some(format!(
            "no response: {}",
            crate::docker::engine::root_cause(&e)
        )),
        ..Default::default()
    })?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    let elapsed_ms = sent.elapsed().as_secs_f64() * 1000.0;
    let json: Result<Value, String> =
        serde_json::from_str(&body).map_err(|e| format!("the body is not JSON ({e})"));
    let fail = |mismatches: Vec<String>, error: Option<String>| FailureDetail {
        request: Some(shown.clone()),
        status: Some(status),
        body: Some(excerpt(&body)),
        mismatches,
        error,
        attempts: 1,
    };

    let e = &step.expect;
    let mut mismatches = Vec::new();
    if let Some(m) = &e.status {
        check(
            "status",
            m,
            Some(&Value::from(status)),
            vars,
            &mut mismatches,
        )?;
    }
    for (name, m) in &e.headers.0 {
        let actual = headers
            .get(name.as_str())
            .map(|v| Value::String(v.to_str().unwrap_or("").to_owned()));
        check(
            &format!("header {name}"),
            m,
            actual.as_ref(),
            vars,
            &mut mismatches,
        )?;
    }
    if let Some(m) = &e.body {
        check(
            "body",
            m,
            Some(&Value::String(body.clone())),
            vars,
            &mut mismatches,
        )?;
    }
    if let Some(m) = &e.duration_ms {
        check(
            "duration_ms",
            m,
            Some(&Value::from(elapsed_ms.round())),
            vars,
            &mut mismatches,
        )?;
    }
    if !e.json.0.is_empty() || e.json_schema.is_some() {
        match &json {
            Ok(doc) => {
                for (path, m) in &e.json.0 {
                    check(
                        &format!("json {}", path.text),
                        m,
                        path.select(doc).as_ref(),
                        vars,
                        &mut mismatches,
                    )?;
                }
                if let Some(schema) = &e.json_schema {
                    let validator = load_schema(&ctx.dir.join(schema)).map_err(error)?;
                    for problem in validator.iter_errors(doc).take(5) {
                        mismatches.push(format!(
                            "json_schema {schema}: {} at {}",
                            problem, problem.instance_path
                        ));
                    }
                }
            }
            Err(why) => mismatches.push(why.clone()),
        }
    }
    if !mismatches.is_empty() {
        return Err(fail(mismatches, None));
    }
    let mut captures = Vec::new();
    for (name, source) in &step.capture {
        let value = match source.strip_prefix("header:") {
            Some(header) => headers
                .get(header.trim())
                .map(|v| Value::String(v.to_str().unwrap_or("").to_owned())),
            None => match &json {
                Ok(doc) => JsonPath::parse(source).map_err(error)?.select(doc),
                Err(why) => return Err(fail(vec![], Some(format!("capture {name}: {why}")))),
            },
        };
        let value = value.ok_or_else(|| {
            fail(
                vec![],
                Some(format!("capture {name}: {source} selected nothing")),
            )
        })?;
        captures.push((name.clone(), value));
    }
    Ok(captures)
}

/// A column value as JSON, for the common PostgreSQL types.
fn cell(row: &tokio_postgres::Row, i: usize) -> Result<Value, String> {
    use tokio_postgres::types::Type;
    let column = &row.columns()[i];
    let ty = column.type_().clone();
    let v = match ty {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map(|v| v.map(Value::from)),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(Value::from)),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(Value::from)),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::from)),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map(|v| v.map(|f| Value::from(f64::from(f)))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::from)),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => row
            .try_get::<_, Option<String>>(i)
            .map(|v| v.map(Value::from)),
        Type::JSON | Type::JSONB => row.try_get::<_, Option<Value>>(i),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
            .map(|v| v.map(|t| Value::from(t.to_rfc3339()))),
        other => {
            return Err(format!(
                "column {:?} has type {other}, which metrtest does not convert; cast it in the query (e.g. ::text or ::float8)",
                column.name()
            ));
        }
    };
    Ok(v.map_err(|e| e.to_string())?.unwrap_or(Value::Null))
}

async fn sql(query: &str, step: &Step, ctx: &mut StepContext<'_>) -> Attempt {
    let vars = &*ctx.vars;
    let query = template::render_str(query, vars).map_err(error)?;
    let shown = format!("SQL {query}");
    let with_request = |mut d: FailureDetail| {
        d.request = Some(shown.clone());
        d
    };
    let url = ctx.stack.stack.postgres_url.clone();
    let connect = tokio::time::timeout(
        ctx.request_timeout,
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    );
    let (client, connection) = match connect.await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(with_request(error(format!("connect to postgres: {e}")))),
        Err(_) => return Err(with_request(error("connect to postgres: timed out"))),
    };
    let task = tokio::spawn(connection);
    let result = tokio::time::timeout(ctx.request_timeout, client.query(query.as_str(), &[])).await;
    drop(client);
    task.abort();
    let rows = match result {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            return Err(with_request(error(format!(
                "query failed: {}",
                e.as_db_error()
                    .map(|d| d.message().to_owned())
                    .unwrap_or(e.to_string())
            ))));
        }
        Err(_) => return Err(with_request(error("query timed out"))),
    };
    let mut table = Vec::new();
    for row in &rows {
        let mut object = Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            object.insert(
                column.name().to_owned(),
                cell(row, i).map_err(|e| with_request(error(e)))?,
            );
        }
        table.push(Value::Object(object));
    }
    let table = Value::Array(table);
    let e = &step.expect;
    let mut mismatches = Vec::new();
    if let Some(m) = &e.row_count {
        check(
            "row_count",
            m,
            Some(&Value::from(rows.len())),
            vars,
            &mut mismatches,
        )?;
    }
    for (c, m) in &e.rows.0 {
        let actual = table.get(c.row).and_then(|r| r.get(&c.column)).cloned();
        check(
            &format!("rows {}.{}", c.row, c.column),
            m,
            actual.as_ref(),
            vars,
            &mut mismatches,
        )?;
    }
    if !mismatches.is_empty() {
        return Err(FailureDetail {
            request: Some(shown),
            body: Some(excerpt(&short(&table))),
            mismatches,
            ..Default::default()
        });
    }
    let mut captures = Vec::new();
    for (name, source) in &step.capture {
        let value = JsonPath::parse(source).map_err(error)?.select(&table);
        let value = value.ok_or_else(|| {
            with_request(error(format!("capture {name}: {source} selected nothing")))
        })?;
        captures.push((name.clone(), value));
    }
    Ok(captures)
}

async fn metrics(m: &MetricsAction, step: &Step, ctx: &mut StepContext<'_>) -> Attempt {
    let vars = &*ctx.vars;
    let url = format!("{}{}", ctx.stack.url_of(&m.service).map_err(error)?, m.path);
    let shown = format!("GET {url}");
    let with_request = |mut d: FailureDetail| {
        d.request = Some(shown.clone());
        d
    };
    let response = ctx.http.get(&url).timeout(ctx.request_timeout).send().await;
    let response = response.map_err(|e| {
        with_request(error(format!(
            "no response: {}",
            crate::docker::engine::root_cause(&e)
        )))
    })?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let samples = metr_domain::exposition::parse(&text).map_err(|e| {
        with_request(FailureDetail {
            status: Some(status),
            error: Some(format!("malformed exposition: {e}")),
            ..Default::default()
        })
    })?;
    let mut mismatches = Vec::new();
    for (selector, matcher) in &step.expect.series {
        let shown_selector = format_selector(selector);
        match selector.sum(&samples) {
            Ok(sum) => check(
                &shown_selector,
                matcher,
                Some(&Value::from(sum)),
                vars,
                &mut mismatches,
            )?,
            Err(why) => mismatches.push(format!("{shown_selector}: {why}")),
        }
    }
    if !mismatches.is_empty() {
        return Err(with_request(FailureDetail {
            status: Some(status),
            mismatches,
            ..Default::default()
        }));
    }
    let mut captures = Vec::new();
    for (name, source) in &step.capture {
        let selector = Selector::parse(source).map_err(error)?;
        let sum = selector
            .sum(&samples)
            .map_err(|why| with_request(error(format!("capture {name}: {why}"))))?;
        captures.push((name.clone(), Value::from(sum)));
    }
    Ok(captures)
}

fn format_selector(s: &Selector) -> String {
    if s.labels.is_empty() {
        s.name.clone()
    } else {
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{}{{{}}}", s.name, labels.join(","))
    }
}

async fn logs(l: &LogsAction, ctx: &mut StepContext<'_>) -> Attempt {
    let vars = &*ctx.vars;
    let container = ctx.stack.container_of(&l.service).map_err(error)?;
    let text = crate::docker::stack::tail_logs(&ctx.stack.docker, &container, 100_000).await;
    let (found, wanted) = match (&l.contains, &l.matches) {
        (Some(needle), _) => {
            let needle = template::render_str(needle, vars).map_err(error)?;
            (text.contains(&needle), format!("contains {needle:?}"))
        }
        (_, Some(pattern)) => {
            let pattern = template::render_str(pattern, vars).map_err(error)?;
            let re =
                regex::Regex::new(&pattern).map_err(|e| error(format!("invalid regex: {e}")))?;
            (re.is_match(&text), format!("matches {pattern:?}"))
        }
        _ => return Err(error("a logs step takes contains or matches")),
    };
    if found {
        return Ok(vec![]);
    }
    let last: Vec<&str> = text
        .lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(FailureDetail {
        request: Some(format!("logs of {}", l.service)),
        mismatches: vec![format!(
            "logs: expected a line that {wanted}, found none in {} lines",
            text.lines().count()
        )],
        body: Some(last.join("\n")),
        ..Default::default()
    })
}

async fn docker(d: &DockerAction, ctx: &mut StepContext<'_>) -> Attempt {
    let shown = format!("docker {:?} {}", d.verb, d.service).to_lowercase();
    ctx.stack.apply(d).await.map_err(|e| FailureDetail {
        request: Some(shown),
        error: Some(e),
        ..Default::default()
    })?;
    ctx.stack.export_vars(ctx.vars);
    Ok(vec![])
}

async fn network(n: &NetworkAction, ctx: &mut StepContext<'_>) -> Attempt {
    let result = match n {
        NetworkAction::Partition(service) => ctx.stack.partition(service).await,
        NetworkAction::Heal(service) => ctx.stack.heal(service).await,
        NetworkAction::Link { link, faults } => {
            crate::runner::network::set_link_faults(ctx.stack, ctx.http, link, faults).await
        }
    };
    result.map_err(|e| FailureDetail {
        request: Some(n.describe()),
        error: Some(e),
        ..Default::default()
    })?;
    ctx.stack.export_vars(ctx.vars);
    Ok(vec![])
}
