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

use bollard::Docker;
use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};

use crate::engine::error::{EngineError, Result};
use crate::engine::labels;
use crate::engine::root_cause;

/// Attempts to pin a subnet before settling for a network without one.
const ATTEMPTS: usize = 4;

/// Creates `run_id`'s network, with a pinned subnet if `pinned` and the
/// engine allows it. Returns the network's name.
pub async fn create(docker: &Docker, run_id: &str, pinned: bool) -> Result<String> {
    let name = labels::network_name(run_id);
    let fail = |source| EngineError::CreateNetwork {
        network: name.clone(),
        source,
    };
    let attempts = if pinned { ATTEMPTS } else { 0 };
    for _ in 0..attempts {
        docker
            .create_network(request(&name, run_id, None))
            .await
            .map_err(fail)?;
        let Some(pool) = assigned(docker, &name).await else {
            // An engine or driver that reports no subnet: keep what it made.
            return Ok(name);
        };
        docker
            .remove_network(&name)
            .await
            .map_err(|source| EngineError::RemoveNetwork {
                network: name.clone(),
                source,
            })?;
        match docker
            .create_network(request(&name, run_id, Some(pool)))
            .await
        {
            Ok(_) => return Ok(name),
            Err(e) if overlaps(&e) => continue,
            Err(e) => return Err(fail(e)),
        }
    }
    // Not asked to pin, or others keep taking the pool the engine offers: a
    // network without a pinned subnet works; only a healed service would get
    // a new address.
    docker
        .create_network(request(&name, run_id, None))
        .await
        .map_err(fail)?;
    Ok(name)
}

fn request(name: &str, run_id: &str, pool: Option<IpamConfig>) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.to_owned(),
        driver: Some("bridge".into()),
        labels: Some(labels::run_labels(run_id, None)),
        ipam: pool.map(|config| Ipam {
            config: Some(vec![config]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The IPv4 subnet and gateway the engine gave `network`.
async fn assigned(docker: &Docker, network: &str) -> Option<IpamConfig> {
    let inspect = docker.inspect_network(network, None).await.ok()?;
    let config = inspect.ipam?.config?;
    let v4 = config
        .into_iter()
        .find(|c| c.subnet.as_deref().is_some_and(|s| s.contains('.')))?;
    Some(IpamConfig {
        subnet: v4.subnet,
        gateway: v4.gateway,
        ..Default::default()
    })
}

fn overlaps(e: &bollard::errors::Error) -> bool {
    let cause = root_cause(e).to_ascii_lowercase();
    cause.contains("overlap") || cause.contains("already in use")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_pool_is_sent_as_the_networks_only_ipam_config() {
        let pool = IpamConfig {
            subnet: Some("172.30.0.0/16".into()),
            gateway: Some("172.30.0.1".into()),
            ..Default::default()
        };
        let req = request("metrtest-abc", "abc", Some(pool.clone()));
        assert_eq!(req.ipam.and_then(|i| i.config), Some(vec![pool]));
        assert_eq!(
            req.labels.unwrap().get(labels::RUN).map(String::as_str),
            Some("abc")
        );
        assert!(request("metrtest-abc", "abc", None).ipam.is_none());
    }

    #[test]
    fn an_overlapping_pool_is_recognised_from_the_engines_words() {
        use crate::engine::error::engine_says;
        assert!(overlaps(&engine_says(
            "Pool overlaps with other one on this address space"
        )));
        assert!(!overlaps(&engine_says("driver failed")));
    }
}
