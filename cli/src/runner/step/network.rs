//! `network`: partition or heal a service; faults on links through the
//! stack's fault proxy (`stack::faults::proxy_client`).

use crate::runner::observation::Observation;
use crate::runner::step::{Seen, StepContext, Trouble};
use crate::scenario::network::NetworkAction;

pub(super) async fn act(n: &NetworkAction, ctx: &mut StepContext<'_>) -> Result<Seen, Trouble> {
    let result = match n {
        NetworkAction::Partition(service) => ctx.stack.partition(service).await,
        NetworkAction::Heal(service) => ctx.stack.heal(service).await,
        NetworkAction::Link { link, faults } => {
            crate::stack::faults::proxy_client::set_link_faults(ctx.stack, ctx.http, link, faults)
                .await
        }
    };
    result.map_err(|e| Trouble::new(e).request(&n.describe()))?;
    ctx.stack.export_vars(ctx.vars);
    Ok(Seen {
        request: n.describe(),
        observation: Observation::Nothing,
    })
}
