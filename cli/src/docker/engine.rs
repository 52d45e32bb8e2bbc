//! Connecting to the Docker engine through bollard, with version negotiation.

use std::time::Duration;

use bollard::Docker;

use crate::docker::endpoint;
use crate::docker::error::{EngineError, Result};

/// How long connecting, negotiating and pinging may take together.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);

/// Connects to the engine [`endpoint::current`] names, negotiates the API version (so old engines such as API 1.41 work)
/// and pings, all within two seconds; failure is an environment error (exit 3).
pub async fn connect() -> Result<Docker> {
    let endpoint = endpoint::current().map_err(|reason| EngineError::Locate { reason })?;
    let target = || endpoint.source.to_string();
    let attempt = async {
        let docker =
            Docker::connect_with_host(&endpoint.host).map_err(|source| EngineError::Connect {
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
    match tokio::time::timeout(CONNECT_WITHIN, attempt).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::NoAnswer {
            target: target(),
            within: CONNECT_WITHIN,
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
