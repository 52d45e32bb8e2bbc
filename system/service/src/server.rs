//! A bound HTTP listener: binding first lets tests use port 0 and read it back.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

use crate::error::StartError;
use crate::parse_errors::{self, BodyFor};

/// A listener bound and ready to serve a router.
pub struct Server {
    listener: TcpListener,
    parse_error_body: Option<BodyFor>,
}

impl Server {
    pub async fn bind(addr: SocketAddr) -> Result<Server, StartError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(Server {
            listener,
            parse_error_body: None,
        })
    }

    /// Gives the answers hyper writes on its own to unparsable requests (400,
    /// 414, 431) this JSON body instead of an empty one.
    pub fn with_parse_error_body(mut self, body: BodyFor) -> Server {
        self.parse_error_body = Some(body);
        self
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
        match self.parse_error_body {
            Some(body) => {
                let listener = parse_errors::Listener {
                    inner: self.listener,
                    body,
                };
                axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(self.listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        }
    }
}
