//! The reconciler against a fake API server: what it applies, and the status
//! it reports, for a new Metr, changed targets, a scaled checker, an invalid
//! spec, a missing Secret and a Metr being deleted.

#[path = "support/fake_api.rs"]
mod fake_api;
mod support;

use std::sync::Arc;

use fake_api::{Cluster, Recorded, STARTING};
use kube::runtime::controller::Action;
use metr_operator::Metr;
use metr_operator::crd::MetrStatus;
use metr_operator::reconcile::{Context, reconcile};
use metr_operator::render::CONFIG_HASH_ANNOTATION;
use metr_operator::telemetry::Metrics;
use serde::Deserialize;
use serde_json::Value;
use support::sample;

/// Reconciles `metr` once against a fake cluster and returns what was asked.
async fn reconcile_once(cluster: Cluster, metr: &Metr) -> (Action, Vec<Recorded>) {
    let (client, server) = fake_api::start(cluster, metr);
    let metrics = Metrics::new().unwrap();
    let action = reconcile(
        Arc::new(metr.clone()),
        Arc::new(Context { client, metrics }),
    )
    .await
    .expect("the reconcile succeeds");
    (action, server.await.unwrap())
}

fn applies(requests: &[Recorded]) -> Vec<&Recorded> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH" && !r.path.ends_with("/status"))
        .collect()
}

fn applied<'a>(requests: &'a [Recorded], kind: &str) -> &'a Value {
    &applies(requests)
        .into_iter()
        .find(|r| r.kind() == kind)
        .unwrap_or_else(|| panic!("a {kind} is applied"))
        .body
}

fn status(requests: &[Recorded]) -> MetrStatus {
    let patch = requests
        .iter()
        .rfind(|r| r.path.ends_with("/status"))
        .expect("the status is written");
    serde_json::from_value(patch.body["status"].clone()).unwrap()
}

/// (status, reason) of the condition `type_`.
fn condition(status: &MetrStatus, type_: &str) -> (String, String) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("a {type_} condition"));
    (c.status.clone(), c.reason.clone())
}

fn shard_env(statefulset: &Value) -> &str {
    let env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let shard = env.iter().find(|e| e["name"] == "CHECKER_SHARD").unwrap();
    shard["value"].as_str().unwrap()
}

fn next_generation(mut metr: Metr) -> Metr {
    metr.metadata.generation = metr.metadata.generation.map(|g| g + 1);
    metr
}

#[tokio::test]
async fn a_new_metr_is_applied_server_side_and_reported_progressing() {
    let metr = sample();

    let (action, requests) = reconcile_once(STARTING, &metr).await;

    let kinds: Vec<_> = applies(&requests)
        .iter()
        .map(|r| r.kind().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Job",
            "Service",
            "StatefulSet",
            "Service",
            "Deployment",
            "PodDisruptionBudget"
        ]
    );
    for apply in applies(&requests) {
        assert!(
            apply.query.contains("fieldManager=metr-operator"),
            "{}",
            apply.query
        );
        assert!(apply.query.contains("force=true"), "{}", apply.query);
        assert!(apply.path.starts_with("/api"), "{}", apply.path);
        assert!(apply.path.contains("/namespaces/metr/"), "{}", apply.path);
    }
    let status = status(&requests);
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(
        condition(&status, "Ready"),
        ("False".into(), "RollingOut".into())
    );
    assert_eq!(
        condition(&status, "Progressing"),
        ("True".into(), "RollingOut".into())
    );
    assert_eq!(
        condition(&status, "Degraded"),
        ("False".into(), "Reconciled".into())
    );
    assert_ne!(
        action,
        Action::await_change(),
        "a rollout is looked at again"
    );
}

#[tokio::test]
async fn a_metr_whose_workloads_are_available_is_ready() {
    let metr = sample();
    let cluster = Cluster {
        workloads_ready: true,
        ..STARTING
    };

    let (_, requests) = reconcile_once(cluster, &metr).await;

    let status = status(&requests);
    assert_eq!(
        condition(&status, "Ready"),
        ("True".into(), "Available".into())
    );
    assert_eq!(
        condition(&status, "Progressing"),
        ("False".into(), "Available".into())
    );
    assert_eq!(condition(&status, "Degraded").0, "False");
}

#[tokio::test]
async fn changed_targets_change_the_config_and_roll_the_checker() {
    let metr = sample();
    let (_, before) = reconcile_once(STARTING, &metr).await;
    let mut changed = next_generation(metr);
    changed.spec.targets.remove(0);

    let (_, after) = reconcile_once(STARTING, &changed).await;

    let config =
        |requests: &[Recorded]| applied(requests, "ConfigMap")["data"]["checker.yaml"].clone();
    assert_ne!(config(&before), config(&after));
    assert!(!config(&after).as_str().unwrap().contains("gometr"));
    let hash = |requests: &[Recorded]| {
        applied(requests, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
            [CONFIG_HASH_ANNOTATION]
            .clone()
    };
    assert_ne!(hash(&before), hash(&after));
    assert_eq!(status(&after).observed_generation, Some(2));
}

#[tokio::test]
async fn scaling_the_checker_from_one_to_three_reshards_it() {
    let metr = sample();
    let (_, before) = reconcile_once(STARTING, &metr).await;
    let mut scaled = next_generation(metr);
    scaled.spec.checker.replicas = 3;

    let (_, after) = reconcile_once(STARTING, &scaled).await;

    let (one, three) = (
        applied(&before, "StatefulSet"),
        applied(&after, "StatefulSet"),
    );
    assert_eq!(
        (
            one["spec"]["replicas"].clone(),
            three["spec"]["replicas"].clone()
        ),
        (1.into(), 3.into())
    );
    assert_eq!(
        (shard_env(one), shard_env(three)),
        ("$(POD_NAME)/1", "$(POD_NAME)/3")
    );
    assert_eq!(status(&after).observed_generation, Some(2));
}

#[tokio::test]
async fn an_invalid_spec_is_degraded_naming_the_field_and_nothing_is_applied() {
    let mut metr = sample();
    metr.spec.checker.interval = "0s".into();

    let (action, requests) = reconcile_once(STARTING, &metr).await;

    assert!(applies(&requests).is_empty(), "{requests:?}");
    let status = status(&requests);
    assert_eq!(
        condition(&status, "Degraded"),
        ("True".into(), "InvalidSpec".into())
    );
    assert_eq!(
        condition(&status, "Ready"),
        ("False".into(), "InvalidSpec".into())
    );
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert!(
        degraded.message.contains("spec.checker.interval"),
        "{}",
        degraded.message
    );
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn the_next_valid_spec_recovers_from_an_invalid_one() {
    let mut invalid = sample();
    invalid.spec.checker.replicas = -1;
    let (_, first) = reconcile_once(STARTING, &invalid).await;
    let mut fixed = next_generation(sample());
    fixed.status = Some(status(&first));

    let (_, requests) = reconcile_once(STARTING, &fixed).await;

    assert_eq!(applies(&requests).len(), 7);
    assert_eq!(
        condition(&status(&requests), "Degraded"),
        ("False".into(), "Reconciled".into())
    );
}

#[tokio::test]
async fn a_missing_secret_is_degraded_naming_the_reference_and_nothing_is_applied() {
    let metr = sample();
    let cluster = Cluster {
        secret_exists: false,
        ..STARTING
    };

    let (_, requests) = reconcile_once(cluster, &metr).await;

    assert!(applies(&requests).is_empty(), "{requests:?}");
    let status = status(&requests);
    assert_eq!(
        condition(&status, "Degraded"),
        ("True".into(), "SecretNotFound".into())
    );
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert!(
        degraded.message.contains("spec.postgres.secretRef"),
        "{}",
        degraded.message
    );
}

#[tokio::test]
async fn a_metr_being_deleted_is_left_to_the_garbage_collector() {
    let mut metr = sample();
    metr.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));

    let (action, requests) = reconcile_once(STARTING, &metr).await;

    assert!(requests.is_empty(), "{requests:?}");
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn an_unchanged_condition_keeps_its_transition_time() {
    let metr = sample();
    let (_, first) = reconcile_once(STARTING, &metr).await;
    let mut again = metr;
    again.status = Some(status(&first));

    let (_, second) = reconcile_once(STARTING, &again).await;

    let time = |requests: &[Recorded]| {
        status(requests)
            .conditions
            .iter()
            .map(|c| c.last_transition_time.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(time(&first), time(&second));
}

#[tokio::test]
async fn reconciles_are_counted_by_outcome_on_metrics() {
    let mut metr = sample();
    metr.spec.targets.clear();
    let (client, server) = fake_api::start(STARTING, &metr);
    let metrics = Metrics::new().unwrap();
    let ctx = Arc::new(Context {
        client,
        metrics: metrics.clone(),
    });

    reconcile(Arc::new(metr), ctx).await.unwrap();

    server.abort();
    let text = metrics.render();
    assert!(
        text.contains(r#"metr_operator_reconciles_total{outcome="invalid_spec"} 1"#),
        "{text}"
    );
}

/// (API group, resource, verb) of a request the reconciler made.
fn permission(request: &Recorded) -> (String, String, String) {
    let parts: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    // /api/v1/namespaces/NS/RESOURCE/NAME[/SUB] or /apis/GROUP/VERSION/namespaces/NS/...
    let (group, rest) = match parts[0] {
        "api" => ("", &parts[4..]),
        _ => (parts[1], &parts[5..]),
    };
    let resource = match rest {
        [resource, _, sub] => format!("{resource}/{sub}"),
        [resource, ..] => (*resource).to_owned(),
        [] => String::new(),
    };
    let verb = match request.method.as_str() {
        "GET" => "get",
        _ => "patch",
    };
    (group.to_owned(), resource, verb.to_owned())
}

#[tokio::test]
async fn the_operator_cluster_role_allows_every_request_a_reconcile_makes() {
    let rbac = include_str!("../../../deploy/kubernetes/operator/rbac.yaml");
    let role: Value = serde_yaml::Deserializer::from_str(rbac)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap())
        .find(|doc| doc["kind"] == "ClusterRole")
        .expect("a ClusterRole");
    let allows = |(group, resource, verb): &(String, String, String)| {
        role["rules"].as_array().unwrap().iter().any(|rule| {
            let has =
                |key: &str, value: &str| rule[key].as_array().unwrap().iter().any(|v| v == value);
            has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
        })
    };
    let (_, created) = reconcile_once(STARTING, &sample()).await;

    let needed: Vec<_> = created.iter().map(permission).collect();

    assert_eq!(needed.len(), 9, "{needed:?}");
    for permission in &needed {
        assert!(allows(permission), "the ClusterRole lacks {permission:?}");
        if permission.2 == "patch" && !permission.1.ends_with("/status") {
            let create = (
                permission.0.clone(),
                permission.1.clone(),
                "create".to_owned(),
            );
            assert!(allows(&create), "an apply that creates needs {create:?}");
        }
    }
}
