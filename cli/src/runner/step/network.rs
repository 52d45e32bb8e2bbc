//! `network`: partition or heal a service; faults on links through the
//! stack's fault proxy (`stack::faults::proxy_client`).

use crate::runner::observation::Observation;
use crate::runner::step::{Seen, StepContext, Trouble};
use crate::scenario::network::NetworkAction;

pub(super) async fn act(n: &NetworkAction, ctx: &mut StepContext<'_>) -> Result<Seen, Trouble> {
    let trouble = |e: &dyn ToString| Trouble::new(e.to_string()).request(&n.describe());
    match n {
        NetworkAction::Partition(service) => ctx
            .stack
            .partition(service)
            .await
            .map_err(|e| trouble(&e))?,
        NetworkAction::Heal(service) => ctx.stack.heal(service).await.map_err(|e| trouble(&e))?,
        NetworkAction::Link { link, faults } => {
            crate::stack::faults::proxy_client::set_link_faults(ctx.stack, ctx.http, link, faults)
                .await
                .map_err(|e| trouble(&e))?
        }
    }
    ctx.stack.export_vars(ctx.vars);
    Ok(Seen {
        request: n.describe(),
        observation: Observation::Nothing,
    })
}
