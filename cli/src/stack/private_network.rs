//! A run's network. For a stack whose scenario cuts services off (`partition`),
//! it is created with a configured subnet so that a partitioned service can be
//! healed with the address it had: the engine accepts a chosen address only on
//! networks whose subnet was given at creation.
//!
//! The subnet is the one the engine itself picks from its address pools (so
//! the daemon's `default-address-pools` stay respected and no host route is
//! shadowed): a first network is created to learn it, then replaced by one
//! that names it. Another client can take the subnet in between; the engine
//! then refuses with an overlap, and the dance starts again.

use crate::engine::error::{EngineError, Result};
use crate::engine::{Client, labels};

/// Attempts to pin a subnet before settling for a network without one.
const ATTEMPTS: usize = 4;

/// Creates `run_id`'s network, with a pinned subnet if `pinned` and the
/// engine allows it. Returns the network's name.
pub async fn create(engine: &Client, run_id: &str, pinned: bool) -> Result<String> {
    let name = labels::network_name(run_id);
    let labels = || labels::run_labels(run_id, None);
    let attempts = if pinned { ATTEMPTS } else { 0 };
    for _ in 0..attempts {
        engine.create_network(&name, labels(), None).await?;
        let Some(subnet) = engine.network_subnet(&name).await else {
            // An engine or driver that reports no subnet: keep what it made.
            return Ok(name);
        };
        engine.remove_network(&name).await?;
        match engine.create_network(&name, labels(), Some(&subnet)).await {
            Ok(()) => return Ok(name),
            Err(e) if overlaps(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    // Not asked to pin, or others keep taking the pool the engine offers: a
    // network without a pinned subnet works; only a healed service would get
    // a new address.
    engine.create_network(&name, labels(), None).await?;
    Ok(name)
}

fn overlaps(e: &EngineError) -> bool {
    e.engine_says(&["overlap", "already in use"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlapping_pool_is_recognised_from_the_engines_words() {
        use crate::engine::error::engine_says;
        let failed = |message: &str| EngineError::CreateNetwork {
            network: "metrtest-abc".into(),
            source: engine_says(message),
        };
        assert!(overlaps(&failed(
            "Pool overlaps with other one on this address space"
        )));
        assert!(!overlaps(&failed("driver failed")));
    }
}
