//! `docker`: stop, start, restart, kill, pause or unpause a service.

use crate::runner::observation::Observation;
use crate::runner::step::{Seen, StepContext, Trouble};
use crate::scenario::model::DockerAction;

pub(super) async fn act(d: &DockerAction, ctx: &mut StepContext<'_>) -> Result<Seen, Trouble> {
    let shown = format!("docker {} {}", d.verb.key(), d.service);
    ctx.stack
        .apply(d)
        .await
        .map_err(|e| Trouble::new(e).request(&shown))?;
    ctx.stack.export_vars(ctx.vars);
    Ok(Seen {
        request: shown,
        observation: Observation::Nothing,
    })
}
