//! Connecting to the Docker engine through bollard, with version negotiation.

use std::time::Duration;

use bollard::Docker;

use crate::docker::endpoint;
use crate::exit::{Failure, Result};

/// Connects to the engine [`endpoint::current`] names, negotiates the API version (so old engines such as API 1.41 work)
/// and pings, all within two seconds; failure is an environment error (exit 3).
pub async fn connect() -> Result<Docker> {
    let endpoint = endpoint::current().map_err(|why| {
        Failure::environment(format!("cannot tell where the Docker engine is: {why}"))
    })?;
    let target = &endpoint.source;
    let fail = |why: String| {
        Failure::environment(format!(
            "cannot reach the Docker engine at {target}: {why}\n\
             hint: start the engine (e.g. `sudo systemctl start docker`), check that you may use its socket, \
             or point DOCKER_HOST (or a Docker context) at a running engine"
        ))
    };
    let attempt = async {
        let docker = Docker::connect_with_host(&endpoint.host).map_err(|e| fail(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| fail(root_cause(&e)))?;
        docker.ping().await.map_err(|e| fail(root_cause(&e)))?;
        Ok(docker.with_timeout(Duration::from_secs(120)))
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(result) => result,
        Err(_) => Err(fail("no answer within 2 s".into())),
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
