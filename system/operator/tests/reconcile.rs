//! The reconciler against a fake API server: what it applies, creates and
//! prunes, and the status it reports, for a new Metr, changed targets, a
//! scaled checker, an embedded PostgreSQL, components turned off, invalid
//! specs, a missing Secret, a failing API server and a Metr being deleted.

#[path = "support/fake_api.rs"]
mod fake_api;
mod support;

use std::sync::Arc;

use fake_api::{Cluster, LEFTOVER_UID, Leftovers, Recorded, STARTING};
use kube::runtime::controller::Action;
use metr_operator::Metr;
use metr_operator::crd::MetrStatus;
use metr_operator::reconcile::{Context, error_policy, reconcile};
use metr_operator::render::CONFIG_HASH_ANNOTATION;
use metr_operator::telemetry::Metrics;
use serde::Deserialize;
use serde_json::Value;
use support::{embedded, sample};

/// Reconciles `metr` once against a fake cluster and returns what was asked.
async fn reconcile_once(cluster: Cluster, metr: &Metr) -> (Action, Vec<Recorded>) {
    let (client, server) = fake_api::start(cluster, metr);
    let metrics = Metrics::new().unwrap();
    let action = reconcile(
        Arc::new(metr.clone()),
        Arc::new(Context::new(client, metrics)),
    )
    .await
    .expect("the reconcile succeeds");
    (action, server.await.unwrap())
}

fn requests<'a>(requests: &'a [Recorded], method: &str) -> Vec<&'a Recorded> {
    requests.iter().filter(|r| r.method == method).collect()
}

fn degraded_message(status: &MetrStatus) -> String {
    let degraded = status.conditions.iter().find(|c| c.type_ == "Degraded");
    degraded.expect("a Degraded condition").message.clone()
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
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
            "NetworkPolicy",
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
async fn a_checker_memory_limit_below_its_bound_is_degraded_naming_it_and_nothing_is_applied() {
    let mut metr = sample();
    metr.spec.checker.memory_limit = Some("128Mi".into());

    let (action, requests) = reconcile_once(STARTING, &metr).await;

    assert!(applies(&requests).is_empty(), "{requests:?}");
    let status = status(&requests);
    assert_eq!(
        condition(&status, "Degraded"),
        ("True".into(), "InvalidSpec".into())
    );
    let message = degraded_message(&status);
    assert!(
        message.starts_with("spec.checker.memoryLimit: 128Mi is below the checker's memory bound"),
        "{message}"
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

    assert_eq!(applies(&requests).len(), 12);
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
    let ctx = Arc::new(Context::new(client, metrics.clone()));

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
    // /api/v1/namespaces/NS/RESOURCE[/NAME[/SUB]] or /apis/GROUP/VERSION/namespaces/NS/...
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
        "POST" => "create",
        "DELETE" => "delete",
        _ => "patch",
    };
    (group.to_owned(), resource, verb.to_owned())
}

/// The rules of the role `kind` in the operator's RBAC manifest.
fn rbac_rules(kind: &str) -> Vec<Value> {
    let rbac = include_str!("../../../deploy/kubernetes/operator/rbac.yaml");
    let role: Value = serde_yaml::Deserializer::from_str(rbac)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).unwrap()).unwrap())
        .find(|doc| doc["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind}"));
    role["rules"].as_array().unwrap().clone()
}

fn allows(rules: &[Value], (group, resource, verb): &(String, String, String)) -> bool {
    rules.iter().any(|rule| {
        let has = |key: &str, value: &str| rule[key].as_array().unwrap().iter().any(|v| v == value);
        has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
    })
}

#[tokio::test]
async fn the_operator_cluster_role_allows_every_request_a_reconcile_makes() {
    let rules = rbac_rules("ClusterRole");
    let secret_missing = Cluster {
        secret_exists: false,
        ..STARTING
    };
    let leftovers = Cluster {
        leftovers: Leftovers::Ours,
        ..STARTING
    };
    let mut needed = Vec::new();
    // Applies and the status; the generated Secret's creation; prunes.
    for (cluster, metr) in [
        (STARTING, sample()),
        (secret_missing, embedded()),
        (leftovers, sample()),
    ] {
        let (_, requests) = reconcile_once(cluster, &metr).await;
        needed.extend(requests.iter().map(permission));
    }

    let verbs: std::collections::BTreeSet<_> = needed.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(verbs, ["create", "delete", "get", "patch"].into());
    for permission in &needed {
        assert!(
            allows(&rules, permission),
            "the ClusterRole lacks {permission:?}"
        );
        if permission.2 == "patch" && !permission.1.ends_with("/status") {
            let create = (
                permission.0.clone(),
                permission.1.clone(),
                "create".to_owned(),
            );
            assert!(
                allows(&rules, &create),
                "an apply that creates needs {create:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_embedded_postgres_secret_is_created_once_and_never_overwritten() {
    let absent = Cluster {
        secret_exists: false,
        ..STARTING
    };

    let (_, first) = reconcile_once(absent, &embedded()).await;
    let (_, again) = reconcile_once(STARTING, &embedded()).await;

    let created: Vec<_> = requests(&first, "POST")
        .iter()
        .map(|r| r.kind().to_owned())
        .collect();
    assert_eq!(created, ["Secret"]);
    assert_eq!(
        requests(&first, "POST")[0].body["metadata"]["name"],
        "demo-postgres"
    );
    assert!(requests(&again, "POST").is_empty(), "{again:?}");
    let patched_secret = first
        .iter()
        .chain(&again)
        .any(|r| r.method == "PATCH" && r.path.contains("/secrets"));
    assert!(!patched_secret, "the password is never applied over");
    assert!(
        applies(&again)
            .iter()
            .any(|r| r.kind() == "StatefulSet" && r.body["metadata"]["name"] == "demo-postgres")
    );
}

#[tokio::test]
async fn components_turned_off_are_deleted_when_the_metr_owns_them() {
    let leftovers = Cluster {
        leftovers: Leftovers::Ours,
        ..STARTING
    };

    let (_, requests) = reconcile_once(leftovers, &sample()).await;

    let deleted: Vec<_> = self::requests(&requests, "DELETE")
        .iter()
        .map(|r| {
            r.path
                .rsplit_once("/namespaces/metr/")
                .unwrap()
                .1
                .to_owned()
        })
        .collect();
    assert_eq!(
        deleted,
        [
            "networkpolicies/demo-postgres",
            "services/demo-postgres",
            "statefulsets/demo-postgres",
            "networkpolicies/demo-gometr",
            "services/demo-gometr",
            "deployments/demo-gometr",
        ]
    );
    for delete in self::requests(&requests, "DELETE") {
        assert_eq!(
            delete.body["preconditions"]["uid"], LEFTOVER_UID,
            "{delete:?}"
        );
    }
    assert_eq!(condition(&status(&requests), "Degraded").0, "False");
}

#[tokio::test]
async fn objects_of_the_same_name_that_the_metr_does_not_own_are_left_alone() {
    let theirs = Cluster {
        leftovers: Leftovers::Theirs,
        ..STARTING
    };

    let (_, requests) = reconcile_once(theirs, &sample()).await;

    assert!(
        self::requests(&requests, "DELETE").is_empty(),
        "{requests:?}"
    );
}

#[tokio::test]
async fn each_bad_input_of_the_issue_is_degraded_naming_its_field_with_nothing_applied() {
    type Edit = fn(&mut Metr);
    let cases: [(Edit, &str); 5] = [
        (
            |m| {
                let first = m.spec.targets[0].clone();
                m.spec.targets.push(first);
            },
            "spec.targets[2].name",
        ),
        (
            |m| m.spec.checker.interval = "0s".into(),
            "spec.checker.interval",
        ),
        (|m| m.spec.checker.replicas = -1, "spec.checker.replicas"),
        (|m| m.spec.api.replicas = -1, "spec.api.replicas"),
        (
            |m| m.spec.postgres.embedded = Some(Default::default()),
            "spec.postgres.embedded",
        ),
    ];
    for (edit, field) in cases {
        let mut metr = sample();
        edit(&mut metr);

        let (action, requests) = reconcile_once(STARTING, &metr).await;

        let writes: Vec<_> = requests
            .iter()
            .filter(|r| r.method != "GET" && !r.path.ends_with("/status"))
            .collect();
        assert!(writes.is_empty(), "{field}: {writes:?}");
        let refused = status(&requests);
        assert_eq!(
            condition(&refused, "Degraded"),
            ("True".into(), "InvalidSpec".into()),
            "{field}"
        );
        let message = degraded_message(&refused);
        assert!(message.starts_with(field), "{message}");
        assert_eq!(action, Action::await_change(), "{field}");

        let mut fixed = next_generation(sample());
        fixed.status = Some(refused);
        let (_, recovered) = reconcile_once(STARTING, &fixed).await;
        assert_eq!(applies(&recovered).len(), 12, "{field}");
        assert_eq!(
            condition(&status(&recovered), "Degraded"),
            ("False".into(), "Reconciled".into()),
            "{field}"
        );
    }
}

#[tokio::test]
async fn a_failed_apply_is_an_error_reported_degraded_and_retried_with_growing_pauses() {
    let failing = Cluster {
        applies_fail: true,
        ..STARTING
    };
    let metr = Arc::new(sample());
    let (client, server) = fake_api::start(failing, &metr);
    let ctx = Arc::new(Context::new(client, Metrics::new().unwrap()));

    let mut pauses = Vec::new();
    for _ in 0..3 {
        let error = reconcile(metr.clone(), ctx.clone())
            .await
            .expect_err("the apply fails");
        pauses.push(error_policy(metr.clone(), &error, ctx.clone()));
    }
    drop(ctx);

    let requests = server.await.unwrap();
    assert_eq!(
        pauses,
        [5, 10, 20].map(|s| Action::requeue(std::time::Duration::from_secs(s)))
    );
    let status = status(&requests);
    assert_eq!(
        condition(&status, "Degraded"),
        ("True".into(), "ApplyFailed".into())
    );
    assert!(
        degraded_message(&status).contains("apply NetworkPolicy demo-default-deny"),
        "{}",
        degraded_message(&status)
    );
}

#[tokio::test]
async fn a_successful_reconcile_resets_the_back_off() {
    let metr = Arc::new(sample());
    let (client, server) = fake_api::start(STARTING, &metr);
    let ctx = Arc::new(Context::new(client, Metrics::new().unwrap()));
    ctx.failures.failed(&metr);
    ctx.failures.failed(&metr);

    reconcile(metr.clone(), ctx.clone()).await.unwrap();

    assert_eq!(ctx.failures.failed(&metr), metr_operator::retry::FIRST);
    drop(ctx);
    server.await.unwrap();
}
