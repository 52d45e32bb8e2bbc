//! Connecting to the Docker engine through bollard, with version negotiation.

use std::time::Duration;

use bollard::Docker;

use crate::engine::endpoint;
use crate::engine::error::{EngineError, Result};
use crate::engine::ssh;

/// The engine's client as the layers above hold it: they name it through
/// here, never bollard itself (a client with one method per operation the
/// stack needs is the next step).
pub type Client = Docker;

/// How long connecting, negotiating and pinging may take together.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);
/// The same through ssh, which first logs in to the engine's host.
const SSH_CONNECT_WITHIN: Duration = Duration::from_secs(15);

/// Connects to the engine [`endpoint::current`] names, negotiates the API version (so old engines such as API 1.41 work)
/// and pings, all within two seconds; failure is an environment error (exit 3).
pub async fn connect() -> Result<Docker> {
    let endpoint = endpoint::current().map_err(|reason| EngineError::Locate { reason })?;
    let target = || endpoint.source.to_string();
    let over_ssh = endpoint.host.starts_with("ssh://");
    let attempt = async {
        let docker = if over_ssh {
            let socket = ssh::bridge(&endpoint.host).map_err(|reason| EngineError::SshBridge {
                target: target(),
                reason,
            })?;
            Docker::connect_with_unix(&socket.to_string_lossy(), 120, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_host(&endpoint.host)
        }
        .map_err(|source| EngineError::Connect {
            target: target(),
            source,
        })?;
        let docker =
            docker
                .negotiate_version()
                .await
                .map_err(|source| EngineError::NegotiateVersion {
                    target: target(),
                    source,
                })?;
        docker.ping().await.map_err(|source| EngineError::Ping {
            target: target(),
            source,
        })?;
        Ok(docker.with_timeout(Duration::from_secs(120)))
    };
    let within = if over_ssh {
        SSH_CONNECT_WITHIN
    } else {
        CONNECT_WITHIN
    };
    match tokio::time::timeout(within, attempt).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::NoAnswer {
            target: target(),
            within,
        }),
    }
}

/// The innermost cause of an error: engine errors wrap the useful part deep down.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut source = err;
    while let Some(next) = source.source() {
        source = next;
    }
    let inner = source.to_string();
    let outer = err.to_string();
    if inner == outer {
        outer
    } else {
        format!("{outer} ({inner})")
    }
}
