//! A fake API server behind kube's `Client`: a `tower-test` mock service that
//! answers what the reconciler asks (Secret metadata, server-side applies, the
//! status patch) and records every request for the test to inspect.

use std::pin::pin;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use metr_operator::Metr;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// One request the reconciler made.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
}

impl Recorded {
    /// The `kind` of an applied object.
    pub fn kind(&self) -> &str {
        self.body["kind"].as_str().unwrap_or_default()
    }
}

/// How the fake cluster behaves.
#[derive(Debug, Clone, Copy)]
pub struct Cluster {
    /// Whether the Metr's Secret exists.
    pub secret_exists: bool,
    /// Whether applied workloads report every replica ready.
    pub workloads_ready: bool,
}

/// A cluster where the Secret exists and workloads are still starting.
pub const STARTING: Cluster = Cluster {
    secret_exists: true,
    workloads_ready: false,
};

/// Starts the fake server; the returned task ends with the requests once
/// the client is dropped.
pub fn start(cluster: Cluster, metr: &Metr) -> (kube::Client, JoinHandle<Vec<Recorded>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let metr = serde_json::to_value(metr).unwrap();
    let task = tokio::spawn(async move {
        let mut handle = pin!(handle);
        let mut seen = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let recorded = record(request).await;
            let (status, body) = answer(cluster, &metr, &recorded);
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            respond.send_response(response);
            seen.push(recorded);
        }
        seen
    });
    (kube::Client::new(service, "default"), task)
}

async fn record(request: Request<Body>) -> Recorded {
    let (parts, body) = request.into_parts();
    let bytes = body.collect_bytes().await.unwrap();
    Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn answer(cluster: Cluster, metr: &Value, request: &Recorded) -> (StatusCode, Value) {
    if request.path.contains("/secrets/") {
        return if cluster.secret_exists {
            let meta = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                              "metadata": {"name": "postgres", "namespace": "metr"}});
            (StatusCode::OK, meta)
        } else {
            let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                "reason": "NotFound", "code": 404, "message": "secrets \"postgres\" not found"});
            (StatusCode::NOT_FOUND, status)
        };
    }
    if request.path.ends_with("/status") {
        let mut updated = metr.clone();
        updated["status"] = request.body["status"].clone();
        return (StatusCode::OK, updated);
    }
    let mut applied = request.body.clone();
    if cluster.workloads_ready {
        let replicas = applied["spec"]["replicas"].clone();
        applied["status"] = json!({"replicas": replicas, "readyReplicas": replicas,
                                   "availableReplicas": replicas, "updatedReplicas": replicas});
    }
    (StatusCode::OK, applied)
}
