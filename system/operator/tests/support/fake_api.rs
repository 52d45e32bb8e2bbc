//! A fake API server behind kube's `Client`: a `tower-test` mock service that
//! answers what the reconciler asks (Secret metadata and creation, server-side
//! applies, gets and deletes of objects to prune, the status patch) and
//! records every request for the test to inspect.

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
    /// What a `get` of any other object finds.
    pub leftovers: Leftovers,
    /// Whether server-side applies fail with a 500.
    pub applies_fail: bool,
}

/// Objects found by name, beyond the Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftovers {
    /// Nothing: every `get` is a 404.
    None,
    /// An object controlled by the Metr (created by an earlier spec).
    Ours,
    /// An object of the same name that the Metr does not control.
    Theirs,
}

/// A cluster where the Secret exists and workloads are still starting.
pub const STARTING: Cluster = Cluster {
    secret_exists: true,
    workloads_ready: false,
    leftovers: Leftovers::None,
    applies_fail: false,
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
    let not_found = (
        StatusCode::NOT_FOUND,
        status_body(404, "NotFound", "not found"),
    );
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", path) if path.contains("/secrets/") => {
            if cluster.secret_exists {
                (StatusCode::OK, metadata(json!({"name": "postgres"})))
            } else {
                not_found
            }
        }
        ("GET", _) => match cluster.leftovers {
            Leftovers::None => not_found,
            Leftovers::Ours => {
                let owner = json!([{"apiVersion": "metr.dev/v1alpha1", "kind": "Metr",
                    "name": metr["metadata"]["name"], "uid": metr["metadata"]["uid"],
                    "controller": true}]);
                let meta =
                    json!({"name": "leftover", "uid": LEFTOVER_UID, "ownerReferences": owner});
                (StatusCode::OK, metadata(meta))
            }
            Leftovers::Theirs => (
                StatusCode::OK,
                metadata(json!({"name": "leftover", "uid": LEFTOVER_UID})),
            ),
        },
        ("POST", _) => (StatusCode::CREATED, request.body.clone()),
        ("DELETE", _) => (StatusCode::OK, status_body(200, "", "deleted")),
        (_, path) if path.ends_with("/status") => {
            let mut updated = metr.clone();
            updated["status"] = request.body["status"].clone();
            (StatusCode::OK, updated)
        }
        _ if cluster.applies_fail => (
            StatusCode::INTERNAL_SERVER_ERROR,
            status_body(500, "InternalError", "etcd is away"),
        ),
        _ => {
            let mut applied = request.body.clone();
            if cluster.workloads_ready {
                let replicas = applied["spec"]["replicas"].clone();
                applied["status"] = json!({"replicas": replicas, "readyReplicas": replicas,
                                           "availableReplicas": replicas, "updatedReplicas": replicas});
            }
            (StatusCode::OK, applied)
        }
    }
}

/// The uid of every object a `get` finds.
pub const LEFTOVER_UID: &str = "0b1e0000-0000-4000-8000-00000000000f";

fn metadata(meta: Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": meta})
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    let status = if code < 400 { "Success" } else { "Failure" };
    json!({"apiVersion": "v1", "kind": "Status", "status": status, "reason": reason,
           "code": code, "message": message})
}
