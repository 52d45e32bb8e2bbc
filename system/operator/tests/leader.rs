//! Leader election against a fake Lease API: acquiring a free Lease, renewing
//! it, waiting while another holder renews, taking over one left to expire,
//! losing a race, releasing it, and `lead` running the work on one replica
//! only. Time is tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Response, StatusCode};
use kube::client::Body;
use metr_operator::leader::{Elector, Lost, Timing, lead};
use serde_json::{Value, json};
use tokio::sync::watch;

#[path = "support/mock_server.rs"]
mod mock_server;

const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/metr-operator/leases";
const TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(15),
    renew_deadline: Duration::from_secs(10),
    retry_period: Duration::from_secs(2),
};

/// The one Lease of the fake API server, shared by every client.
#[derive(Default)]
struct Store {
    lease: Option<Value>,
    version: u64,
    /// Answer the next update with a 409, as if someone wrote in between.
    conflict_next_update: bool,
    /// Answer every request with a 500.
    down: bool,
}

type Shared = Arc<Mutex<Store>>;

/// A client of the fake API server over `store`.
fn client(store: &Shared) -> kube::Client {
    let store = store.clone();
    mock_server::client(move |request, body| {
        let (status, answer) = answer(&mut store.lock().unwrap(), request, body);
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&answer).unwrap()))
            .unwrap()
    })
}

fn answer(store: &mut Store, request: &http::request::Parts, body: Value) -> (StatusCode, Value) {
    let failure = |code: u16, reason: &str| {
        let status = StatusCode::from_u16(code).unwrap();
        let body = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                          "reason": reason, "code": code, "message": reason});
        (status, body)
    };
    if store.down {
        return failure(500, "InternalError");
    }
    assert!(
        request.uri.path().starts_with(LEASE_PATH),
        "{}",
        request.uri
    );
    match (request.method.as_str(), &store.lease) {
        ("GET", None) => failure(404, "NotFound"),
        ("GET", Some(lease)) => (StatusCode::OK, lease.clone()),
        ("POST", Some(_)) => failure(409, "AlreadyExists"),
        ("POST", None) => (StatusCode::CREATED, store.write(body)),
        ("PUT", Some(lease)) => {
            let stale = body["metadata"]["resourceVersion"] != lease["metadata"]["resourceVersion"];
            if std::mem::take(&mut store.conflict_next_update) || stale {
                failure(409, "Conflict")
            } else {
                (StatusCode::OK, store.write(body))
            }
        }
        (method, _) => panic!("unexpected {method} {}", request.uri),
    }
}

impl Store {
    fn write(&mut self, mut lease: Value) -> Value {
        self.version += 1;
        lease["metadata"]["resourceVersion"] = self.version.to_string().into();
        self.lease = Some(lease.clone());
        lease
    }

    fn spec(&self) -> Value {
        self.lease.as_ref().expect("a Lease")["spec"].clone()
    }
}

fn elector(store: &Shared, identity: &str) -> Elector {
    Elector::new(
        client(store),
        "metr-operator",
        "metr-operator",
        identity,
        TIMING.lease_duration,
    )
}

fn holder(store: &Shared) -> Value {
    store.lock().unwrap().spec()["holderIdentity"].clone()
}

#[tokio::test(start_paused = true)]
async fn a_candidate_acquires_a_lease_nobody_holds() {
    let store = Shared::default();
    let mut a = elector(&store, "a");

    let leads = a.try_acquire_or_renew().await.unwrap();

    assert!(leads);
    let spec = store.lock().unwrap().spec();
    assert_eq!(spec["holderIdentity"], "a");
    assert_eq!(spec["leaseDurationSeconds"], 15);
    assert_eq!(spec["leaseTransitions"], 0);
    assert_eq!(spec["acquireTime"], spec["renewTime"]);
}

#[tokio::test(start_paused = true)]
async fn the_holder_renews_its_lease_and_keeps_its_acquire_time() {
    let store = Shared::default();
    let mut a = elector(&store, "a");
    a.try_acquire_or_renew().await.unwrap();
    let acquired = store.lock().unwrap().spec()["acquireTime"].clone();
    let version = store.lock().unwrap().version;

    let leads = a.try_acquire_or_renew().await.unwrap();

    assert!(leads);
    let store = store.lock().unwrap();
    assert_eq!(store.version, version + 1, "the renewal is a write");
    assert_eq!(store.spec()["holderIdentity"], "a");
    assert_eq!(store.spec()["acquireTime"], acquired);
    assert_eq!(store.spec()["leaseTransitions"], 0);
}

#[tokio::test(start_paused = true)]
async fn another_candidate_waits_while_the_holder_renews() {
    let store = Shared::default();
    let (mut a, mut b) = (elector(&store, "a"), elector(&store, "b"));
    a.try_acquire_or_renew().await.unwrap();

    let mut b_led = Vec::new();
    for _ in 0..10 {
        b_led.push(b.try_acquire_or_renew().await.unwrap());
        tokio::time::advance(Duration::from_secs(5)).await;
        // Within the lease duration of b's previous look.
        assert!(a.try_acquire_or_renew().await.unwrap());
    }

    assert_eq!(b_led, [false; 10]);
    assert_eq!(holder(&store), "a");
    assert_eq!(b.holder(), Some("a"));
}

#[tokio::test(start_paused = true)]
async fn a_lease_left_unrenewed_for_its_duration_is_taken_over() {
    let store = Shared::default();
    let (mut a, mut b) = (elector(&store, "a"), elector(&store, "b"));
    a.try_acquire_or_renew().await.unwrap();
    assert!(!b.try_acquire_or_renew().await.unwrap());

    // a stops renewing: b waits the whole duration from when it first saw the record.
    tokio::time::advance(Duration::from_secs(14)).await;
    assert!(!b.try_acquire_or_renew().await.unwrap(), "not yet expired");
    tokio::time::advance(Duration::from_secs(1)).await;
    let took_over = b.try_acquire_or_renew().await.unwrap();

    assert!(took_over);
    let spec = store.lock().unwrap().spec();
    assert_eq!(spec["holderIdentity"], "b");
    assert_eq!(spec["leaseTransitions"], 1);
    assert!(!a.try_acquire_or_renew().await.unwrap(), "a sees b hold it");
    assert_eq!(a.holder(), Some("b"));
}

#[tokio::test(start_paused = true)]
async fn a_candidate_that_loses_the_write_race_does_not_lead() {
    let store = Shared::default();
    let (mut a, mut b) = (elector(&store, "a"), elector(&store, "b"));
    a.try_acquire_or_renew().await.unwrap();
    b.try_acquire_or_renew().await.unwrap();
    tokio::time::advance(TIMING.lease_duration).await;
    store.lock().unwrap().conflict_next_update = true;

    let took_over = b.try_acquire_or_renew().await.unwrap();

    assert!(!took_over);
    assert_eq!(holder(&store), "a");
}

/// A stand-in for the controller: says it runs, and runs until dropped.
async fn work(running: watch::Sender<bool>) {
    running.send_replace(true);
    let _stopped = StopOnDrop(running);
    std::future::pending::<()>().await;
}

struct StopOnDrop(watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

#[tokio::test(start_paused = true)]
async fn of_two_replicas_only_the_leader_works_and_the_other_takes_over_when_it_dies() {
    let store = Shared::default();
    let (a_running, mut a_watch) = watch::channel(false);
    let (b_running, mut b_watch) = watch::channel(false);
    let a = tokio::spawn(lead(elector(&store, "a"), TIMING, work(a_running)));
    a_watch.wait_for(|running| *running).await.unwrap();
    let b = tokio::spawn(lead(elector(&store, "b"), TIMING, work(b_running)));

    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(*a_watch.borrow() && !*b_watch.borrow(), "only a works");

    a.abort();
    let _ = a.await;
    let died = tokio::time::Instant::now();
    b_watch.wait_for(|running| *running).await.unwrap();

    let waited = died.elapsed();
    assert!(
        waited <= TIMING.lease_duration + TIMING.retry_period * 3,
        "{waited:?}"
    );
    assert_eq!(holder(&store), "b");
    b.abort();
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_stops_working_before_the_lease_expires() {
    let store = Shared::default();
    let (running, mut watching) = watch::channel(false);
    let leader = tokio::spawn(lead(elector(&store, "a"), TIMING, work(running)));
    watching.wait_for(|running| *running).await.unwrap();
    store.lock().unwrap().down = true;
    let down = tokio::time::Instant::now();

    let lost = leader.await.unwrap().expect_err("the lease is lost");

    assert!(matches!(lost, Lost::NotRenewed { .. }), "{lost}");
    assert!(!*watching.borrow(), "the work is dropped");
    let stopped = down.elapsed();
    assert!(stopped < TIMING.lease_duration, "{stopped:?}");
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_lease_was_taken_stops_working() {
    let store = Shared::default();
    let (running, mut watching) = watch::channel(false);
    let leader = tokio::spawn(lead(elector(&store, "a"), TIMING, work(running)));
    watching.wait_for(|running| *running).await.unwrap();
    {
        let mut store = store.lock().unwrap();
        let mut lease = store.lease.clone().unwrap();
        lease["spec"]["holderIdentity"] = "b".into();
        store.write(lease);
    }

    let lost = leader.await.unwrap().expect_err("the lease is lost");

    assert!(
        matches!(&lost, Lost::TakenOver { holder, .. } if holder == "b"),
        "{lost}"
    );
    assert!(!*watching.borrow());
}

#[tokio::test(start_paused = true)]
async fn a_leader_whose_work_ends_releases_the_lease_for_the_next_at_once() {
    let store = Shared::default();
    let (mut b, done) = (elector(&store, "b"), tokio::time::Instant::now());

    let output = lead(elector(&store, "a"), TIMING, async { 42 }).await;

    assert_eq!(output.unwrap(), 42);
    assert_eq!(holder(&store), Value::Null);
    assert!(b.try_acquire_or_renew().await.unwrap(), "b need not wait");
    assert_eq!(done.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn releasing_a_lease_held_by_another_leaves_it_alone() {
    let store = Shared::default();
    let (mut a, mut b) = (elector(&store, "a"), elector(&store, "b"));
    a.try_acquire_or_renew().await.unwrap();

    b.release().await.unwrap();

    assert_eq!(holder(&store), "a");
}
