//! `metrics`: one scrape of a service's own Prometheus page.

use crate::runner::observation::Observation;
use crate::runner::step::{Seen, StepContext, Trouble};
use crate::scenario::model::MetricsAction;

pub(super) async fn observe(m: &MetricsAction, ctx: &StepContext<'_>) -> Result<Seen, Trouble> {
    let url = format!(
        "{}{}",
        ctx.stack.url_of(&m.service).map_err(Trouble::new)?,
        m.path
    );
    let shown = format!("GET {url}");
    let response = ctx.http.get(&url).timeout(ctx.request_timeout).send().await;
    let response = response.map_err(|e| Trouble::no_response(&e, &shown))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let samples = metr_domain::exposition::parse(&text).map_err(|e| {
        let mut t = Trouble::new(format!("malformed exposition: {e}")).request(&shown);
        t.status = Some(status);
        t
    })?;
    Ok(Seen {
        request: shown,
        observation: Observation::Metrics(samples),
    })
}
