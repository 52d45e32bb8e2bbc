//! A kube `Client` over a `tower-test` mock service whose answers come from a
//! function of each request's head and JSON body.

use std::pin::pin;

use bytes::Bytes;
use http::{Request, Response, request::Parts};
use kube::client::Body;
use serde_json::Value;

/// A client whose requests `answer` serves, one at a time, in a task.
pub fn client<B, F>(mut answer: F) -> kube::Client
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: FnMut(&Parts, Value) -> Response<B> + Send + 'static,
{
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<B>>();
    tokio::spawn(async move {
        let mut handle = pin!(handle);
        while let Some((request, respond)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&body).unwrap_or_default();
            respond.send_response(answer(&parts, body));
        }
    });
    kube::Client::new(service, "default")
}
