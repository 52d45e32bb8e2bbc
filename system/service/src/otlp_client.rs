//! The HTTP client the OTLP exporter sends through: the services' own reqwest
//! (no second HTTP stack), driven by their tokio runtime.
//!
//! The SDK's batch processor exports from a thread of its own, outside any
//! runtime, while reqwest needs one: each request is spawned on the runtime
//! the client was built in, and the exporter awaits its handle.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// A reqwest client bound to a tokio runtime.
#[derive(Debug, Clone)]
pub struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    /// A client whose every request gives up after `timeout`.
    pub fn new(runtime: tokio::runtime::Handle, timeout: Duration) -> reqwest::Result<Self> {
        let client = crate::http_client::builder()
            .timeout(timeout)
            .no_proxy()
            .user_agent(concat!("metr-otlp/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ExportClient { client, runtime })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body))
        });
        let (status, headers, body) = sent.await??;
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}
