//! Cutting a container off its stack's network and reconnecting it as it was:
//! the same aliases (its service name) and, where the engine allows, the same address.

use bollard::Docker;
use bollard::models::{
    ContainerInspectResponse, EndpointIpamConfig, EndpointSettings, NetworkConnectRequest,
    NetworkDisconnectRequest,
};

use crate::engine::error::{EngineError, Result};
use crate::engine::root_cause;
use crate::stack::inspect_container;

/// How a container was attached, kept to reconnect it the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub aliases: Vec<String>,
    pub ipv4: Option<String>,
}

/// Disconnects `container` from `network` and returns how it was attached.
pub async fn disconnect(docker: &Docker, network: &str, container: &str) -> Result<Endpoint> {
    let info = inspect_container(docker, container).await?;
    let settings = on_network(&info, network).ok_or_else(|| EngineError::NotOnNetwork {
        container: container.to_owned(),
        network: network.to_owned(),
    })?;
    let endpoint = Endpoint {
        // The engine lists the container's own short id among the aliases on
        // old API versions; connecting again adds it by itself.
        aliases: settings
            .aliases
            .unwrap_or_default()
            .into_iter()
            .filter(|a| {
                !info
                    .id
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with(a.as_str())
            })
            .collect(),
        ipv4: settings.ip_address.filter(|ip| !ip.is_empty()),
    };
    let request = NetworkDisconnectRequest {
        container: container.to_owned(),
        force: Some(true),
    };
    docker
        .disconnect_network(network, request)
        .await
        .map_err(|source| EngineError::DisconnectNetwork {
            container: container.to_owned(),
            network: network.to_owned(),
            source,
        })?;
    Ok(endpoint)
}

/// Connects `container` to `network` again with its former aliases and address.
/// Stack networks have a pinned subnet ([`crate::stack::private_network`]), so the
/// engine gives the address back; on a network without one (a stack whose
/// subnet could not be pinned) it refuses a chosen address, and the container
/// then gets a fresh one while peers still find it by name.
pub async fn reconnect(
    docker: &Docker,
    network: &str,
    container: &str,
    endpoint: &Endpoint,
) -> Result<()> {
    let connect = |ipv4: Option<String>| {
        let request = NetworkConnectRequest {
            container: container.to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(endpoint.aliases.clone()),
                ipam_config: ipv4.map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        docker.connect_network(network, request)
    };
    let fail = |source| EngineError::ConnectNetwork {
        container: container.to_owned(),
        network: network.to_owned(),
        source,
    };
    match connect(endpoint.ipv4.clone()).await {
        Ok(()) => {}
        Err(e) if endpoint.ipv4.is_some() && root_cause(&e).contains("user specified IP") => {
            return connect(None).await.map_err(fail);
        }
        Err(e) => return Err(fail(e)),
    }
    // The engine took the chosen address: check that it is the one in use.
    let Some(former) = &endpoint.ipv4 else {
        return Ok(());
    };
    let now = address(docker, network, container).await?;
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

/// The IPv4 address `container` has on `network`, if it is attached.
async fn address(docker: &Docker, network: &str, container: &str) -> Result<Option<String>> {
    let info = inspect_container(docker, container).await?;
    Ok(on_network(&info, network)
        .and_then(|settings| settings.ip_address)
        .filter(|ip| !ip.is_empty()))
}

/// How an inspected container is attached to `network`, if it is.
fn on_network(info: &ContainerInspectResponse, network: &str) -> Option<EndpointSettings> {
    info.network_settings
        .as_ref()?
        .networks
        .as_ref()?
        .get(network)
        .cloned()
}
