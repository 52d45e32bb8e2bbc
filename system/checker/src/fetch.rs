//! HTTP GET with a deadline and a body size limit.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

/// A response read completely within the limits.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub elapsed: Duration,
}

/// Why a fetch produced no usable response.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("response body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize, status: u16 },
    #[error("{0}")]
    Request(String),
}

fn describe(err: &reqwest::Error) -> String {
    // reqwest's top-level message is generic; the innermost cause says what happened.
    let mut source: &dyn std::error::Error = err;
    while let Some(next) = source.source() {
        source = next;
    }
    if err.is_connect() {
        format!("connection failed: {source}")
    } else if err.is_decode() || err.is_body() {
        format!("reading the body failed: {source}")
    } else {
        source.to_string()
    }
}

/// GETs `url`, giving up after `timeout` and refusing bodies over `limit` bytes
/// (counted after gzip decoding, so a small compressed bomb is refused too).
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    limit: usize,
) -> Result<Fetched, FetchError> {
    read(traced(client.get(url)), timeout, limit).await
}

/// GETs an exposition as [`get`] does, asking for OpenMetrics first, then
/// Prometheus text, as Prometheus does; the response's `content_type` says
/// which one came.
pub async fn get_exposition(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    limit: usize,
) -> Result<Fetched, FetchError> {
    let request = client
        .get(url)
        .header(reqwest::header::ACCEPT, metr_domain::format::SCRAPE_ACCEPT);
    read(traced(request), timeout, limit).await
}

/// The request with the current span's `traceparent`, so that the target's
/// own spans join the check's trace.
fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let span = tracing::Span::current();
    if span.is_disabled() {
        return request;
    }
    let mut headers = reqwest::header::HeaderMap::new();
    metr_service::trace_context::inject(&span, &mut headers);
    request.headers(headers)
}

async fn read(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    limit: usize,
) -> Result<Fetched, FetchError> {
    let start = Instant::now();
    let work = async {
        let mut response = request
            .send()
            .await
            .map_err(|e| FetchError::Request(describe(&e)))?;
        let status = response.status().as_u16();
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge { limit, status });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Request(describe(&e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge { limit, status });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            content_type,
            body: body.freeze(),
            elapsed: start.elapsed(),
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(FetchError::Timeout(timeout)),
    }
}

/// The client every check shares: gzip accepted, redirects not followed (a probe
/// judges the URL it was given), no proxy from the environment.
pub fn client() -> reqwest::Result<reqwest::Client> {
    metr_service::http_client::builder()
        .gzip(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("metr-checker/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
}
