//! The running controller (`reconcile::controller`) against a fake API server
//! that answers lists and keeps watches open: a change of an owned object
//! reconciles its `Metr` again, and a failing reconcile is retried after
//! growing pauses. Time is tokio's paused clock, so the 5-minute resync and
//! the back-off pauses pass at once and their lengths can be measured.

#[path = "support/mock_server.rs"]
mod mock_server;
mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use http::{Response, StatusCode};
use http_body::Frame;
use http_body_util::StreamBody;
use http_body_util::combinators::UnsyncBoxBody;
use metr_operator::reconcile::{Context, controller, error_policy, reconcile};
use metr_operator::telemetry::Metrics;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

type Chunks = mpsc::UnboundedSender<Result<Frame<Bytes>, Infallible>>;
type Reply = UnsyncBoxBody<Bytes, Infallible>;

/// What the fake API server shares with the test.
#[derive(Default)]
struct Server {
    /// When each status was written: one per finished reconcile.
    statuses: Vec<Instant>,
    /// Open watches, by resource (`statefulsets`, `metrs`, ...).
    watches: Vec<(String, Chunks)>,
    /// Applies fail with a 500 while this is set.
    applies_fail: bool,
}

type Shared = Arc<Mutex<Server>>;

fn streaming(chunks: mpsc::UnboundedReceiver<Result<Frame<Bytes>, Infallible>>) -> Reply {
    UnsyncBoxBody::new(StreamBody::new(chunks))
}

fn whole(value: &Value) -> Reply {
    let (sender, receiver) = mpsc::unbounded();
    let bytes = Bytes::from(serde_json::to_vec(value).unwrap());
    sender.unbounded_send(Ok(Frame::data(bytes))).unwrap();
    streaming(receiver)
}

/// Starts the controller over a fake server holding `metr`; `reported`
/// changes whenever a status is written.
fn start(metr: &metr_operator::Metr, server: &Shared) -> watch::Receiver<usize> {
    let (reported, reports) = watch::channel(0);
    let metr = serde_json::to_value(metr).unwrap();
    let shared = server.clone();
    let client = mock_server::client(move |request, body| {
        let (status, reply) = answer(&shared, &metr, request, body);
        reported.send_replace(shared.lock().unwrap().statuses.len());
        Response::builder().status(status).body(reply).unwrap()
    });
    let ctx = Arc::new(Context::new(client.clone(), Metrics::new().unwrap()));
    tokio::spawn(
        controller(&client)
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    );
    reports
}

fn answer(
    server: &Shared,
    metr: &Value,
    request: &http::request::Parts,
    body: Value,
) -> (StatusCode, Reply) {
    let path = request.uri.path();
    let query = request.uri.query().unwrap_or_default();
    let resource = path.rsplit('/').next().unwrap_or_default().to_owned();
    let mut server = server.lock().unwrap();
    match request.method.as_str() {
        "GET" if query.contains("watch=true") => {
            // Kept open: events are sent by the test.
            let (sender, receiver) = mpsc::unbounded();
            server.watches.push((resource, sender));
            (StatusCode::OK, streaming(receiver))
        }
        "GET" if path.contains("/secrets/") => {
            let meta = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
                              "metadata": {"name": "postgres", "namespace": "metr"}});
            (StatusCode::OK, whole(&meta))
        }
        "GET" if resource == "metrs" => {
            (StatusCode::OK, whole(&list("MetrList", vec![metr.clone()])))
        }
        "GET"
            if matches!(
                resource.as_str(),
                "statefulsets" | "deployments" | "configmaps"
            ) =>
        {
            (StatusCode::OK, whole(&list("List", Vec::new())))
        }
        "GET" => {
            let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                "reason": "NotFound", "code": 404, "message": "not found"});
            (StatusCode::NOT_FOUND, whole(&status))
        }
        "PATCH" if path.ends_with("/status") => {
            server.statuses.push(Instant::now());
            let mut updated = metr.clone();
            updated["status"] = body["status"].clone();
            (StatusCode::OK, whole(&updated))
        }
        "PATCH" if server.applies_fail => {
            let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                                "reason": "InternalError", "code": 500, "message": "etcd is away"});
            (StatusCode::INTERNAL_SERVER_ERROR, whole(&status))
        }
        "PATCH" => {
            // Every workload is ready: the next requeue is the 5-minute resync.
            let mut applied = body;
            let replicas = applied["spec"]["replicas"].clone();
            applied["status"] = json!({"replicas": replicas, "readyReplicas": replicas,
                "availableReplicas": replicas, "updatedReplicas": replicas});
            (StatusCode::OK, whole(&applied))
        }
        method => panic!("unexpected {method} {}", request.uri),
    }
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Sends a watch event to every open watch of `resource`.
fn send_event(server: &Shared, resource: &str, event: &Value) {
    let mut line = serde_json::to_vec(event).unwrap();
    line.push(b'\n');
    let server = server.lock().unwrap();
    let watches = server.watches.iter().filter(|(r, _)| r == resource);
    let mut sent = 0;
    for (_, chunks) in watches {
        chunks
            .unbounded_send(Ok(Frame::data(Bytes::from(line.clone()))))
            .unwrap();
        sent += 1;
    }
    assert!(sent > 0, "a watch of {resource} is open");
}

/// Waits (a minute of paused time at most) until a watch of `resource` is open.
async fn watch_opened(server: &Shared, resource: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .lock()
        .unwrap()
        .watches
        .iter()
        .any(|(r, _)| r == resource)
    {
        assert!(
            Instant::now() < deadline,
            "the controller watches {resource}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn statuses(reports: &mut watch::Receiver<usize>, at_least: usize) {
    reports.wait_for(|n| *n >= at_least).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_change_of_an_owned_statefulset_reconciles_its_metr_again() {
    let metr = support::sample();
    let server = Shared::default();
    let mut reports = start(&metr, &server);
    statuses(&mut reports, 1).await;
    let first = server.lock().unwrap().statuses[0];
    watch_opened(&server, "statefulsets").await;

    let owner = json!({"apiVersion": "metr.dev/v1alpha1", "kind": "Metr", "name": "demo",
                       "uid": metr.metadata.uid, "controller": true});
    let changed = json!({"type": "MODIFIED", "object": {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "demo-checker", "namespace": "metr", "resourceVersion": "2",
                     "labels": {"app.kubernetes.io/managed-by": "metr-operator"},
                     "ownerReferences": [owner]},
        "spec": {"replicas": 0, "selector": {}, "serviceName": "demo-checker",
                 "template": {}}}});
    send_event(&server, "statefulsets", &changed);
    statuses(&mut reports, 2).await;

    let second = server.lock().unwrap().statuses[1];
    assert!(
        second - first < Duration::from_secs(300),
        "reconciled by the watch, not by the resync: {:?}",
        second - first
    );
}

#[tokio::test(start_paused = true)]
async fn a_settled_metr_is_reconciled_again_after_the_resync_period() {
    let metr = support::embedded();
    let server = Shared::default();
    let mut reports = start(&metr, &server);

    statuses(&mut reports, 2).await;

    let times = server.lock().unwrap().statuses.clone();
    assert_eq!(times[1] - times[0], Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn a_failing_reconcile_is_retried_after_growing_pauses() {
    let metr = support::sample();
    let server = Shared::default();
    server.lock().unwrap().applies_fail = true;
    let mut reports = start(&metr, &server);

    statuses(&mut reports, 4).await;

    let times = server.lock().unwrap().statuses.clone();
    let pauses: Vec<_> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(pauses, [5, 10, 20].map(Duration::from_secs));
}
