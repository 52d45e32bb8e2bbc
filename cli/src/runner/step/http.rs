//! `http`: one request to a service of the stack.

use std::time::Instant;

use reqwest::Method;

use crate::runner::observation::{HttpObservation, Observation};
use crate::runner::step::{Seen, StepContext, Trouble};
use crate::scenario::matcher::scalar_text;
use crate::scenario::model::{HttpAction, QueryValue};
use crate::scenario::template;

/// Sends the request; any response is an observation, only no response is trouble.
pub(super) async fn observe(h: &HttpAction, ctx: &StepContext<'_>) -> Result<Seen, Trouble> {
    let vars = &*ctx.vars;
    let base = ctx.stack.url_of(&h.service).map_err(Trouble::new)?;
    let path = template::render_str(&h.path, vars).map_err(Trouble::new)?;
    let mut query: Vec<(String, String)> = Vec::new();
    for (key, value) in &h.query.0 {
        let values = match value {
            QueryValue::One(v) => std::slice::from_ref(v),
            QueryValue::Many(vs) => vs.as_slice(),
        };
        for v in values {
            let rendered = template::render_value(v, vars).map_err(Trouble::new)?;
            query.push((key.clone(), scalar_text(&rendered)));
        }
    }
    let method = Method::from_bytes(h.method.as_str().as_bytes()).map_err(Trouble::new)?;
    let mut builder = ctx
        .http
        .request(method, format!("{base}{path}"))
        .query(&query)
        .timeout(ctx.request_timeout);
    for (name, value) in &h.headers.0 {
        builder = builder.header(
            name,
            template::render_str(value, vars).map_err(Trouble::new)?,
        );
    }
    if let Some(body) = &h.json {
        builder = builder.json(&template::render_value(body, vars).map_err(Trouble::new)?);
    }
    let request = builder
        .build()
        .map_err(|e| Trouble::new(format!("build the request: {e}")))?;
    let shown = format!("{} {}", request.method(), request.url());
    let sent = Instant::now();
    let response = ctx
        .http
        .execute(request)
        .await
        .map_err(|e| Trouble::no_response(&e, &shown))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = response.text().await.unwrap_or_default();
    Ok(Seen {
        request: shown,
        observation: Observation::Http(HttpObservation {
            status,
            headers,
            body,
            elapsed_ms: sent.elapsed().as_secs_f64() * 1000.0,
        }),
    })
}
