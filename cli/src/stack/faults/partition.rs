//! Cutting a container off its stack's network and reconnecting it as it was:
//! the same aliases (its service name) and, where the engine allows, the same address.

use crate::engine::error::{EngineError, Result};
use crate::engine::{Client, NetworkEndpoint};

/// How a container was attached, kept to reconnect it the same way.
pub type Endpoint = NetworkEndpoint;

/// Disconnects `container` from `network` and returns how it was attached.
pub async fn disconnect(engine: &Client, network: &str, container: &str) -> Result<Endpoint> {
    let info = engine.inspect_container(container).await?;
    let attached = info
        .networks
        .get(network)
        .ok_or_else(|| EngineError::NotOnNetwork {
            container: container.to_owned(),
            network: network.to_owned(),
        })?;
    let endpoint = Endpoint {
        // The engine lists the container's own short id among the aliases on
        // old API versions; connecting again adds it by itself.
        aliases: attached
            .aliases
            .iter()
            .filter(|a| !info.id.starts_with(a.as_str()))
            .cloned()
            .collect(),
        ipv4: attached.ipv4.clone(),
    };
    engine.disconnect_network(network, container).await?;
    Ok(endpoint)
}

/// Connects `container` to `network` again with its former aliases and address.
/// Stack networks have a pinned subnet ([`crate::stack::private_network`]), so the
/// engine gives the address back; on a network without one (a stack whose
/// subnet could not be pinned) it refuses a chosen address, and the container
/// then gets a fresh one while peers still find it by name.
pub async fn reconnect(
    engine: &Client,
    network: &str,
    container: &str,
    endpoint: &Endpoint,
) -> Result<()> {
    let aliases = &endpoint.aliases;
    let Some(former) = &endpoint.ipv4 else {
        return engine
            .connect_network(network, container, aliases, None)
            .await;
    };
    match engine
        .connect_network(network, container, aliases, Some(former))
        .await
    {
        Ok(()) => {}
        Err(e) if e.engine_says(&["user specified ip"]) => {
            return engine
                .connect_network(network, container, aliases, None)
                .await;
        }
        Err(e) => return Err(e),
    }
    // The engine took the chosen address: check that it is the one in use.
    let info = engine.inspect_container(container).await?;
    let now = info.networks.get(network).and_then(|e| e.ipv4.clone());
    if now.as_deref() == Some(former.as_str()) {
        Ok(())
    } else {
        Err(EngineError::AddressChanged {
            container: container.to_owned(),
            network: network.to_owned(),
            former: former.clone(),
            now: now.unwrap_or_else(|| "no address".into()),
        })
    }
}
