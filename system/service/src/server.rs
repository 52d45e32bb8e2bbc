//! A bound HTTP listener: binding first lets tests use port 0 and read it back.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

use crate::error::StartError;

/// A listener bound and ready to serve a router.
pub struct Server {
    listener: TcpListener,
}

impl Server {
    pub async fn bind(addr: SocketAddr) -> Result<Server, StartError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(Server { listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves `router` until `shutdown` resolves, finishing requests in flight.
    pub async fn serve(
        self,
        service: &'static str,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), version = env!("CARGO_PKG_VERSION"), "{service} listening");
        axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
