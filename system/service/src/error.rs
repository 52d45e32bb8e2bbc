//! Why a service could not start.

use std::net::SocketAddr;

/// A start-up failure of any of the system's services.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("build the HTTP client: {0}")]
    HttpClient(String),
}
