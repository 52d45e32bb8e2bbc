//! The optional components of a `Metr`: an embedded PostgreSQL (instead of a
//! Secret reference) and the demo target gometr, what they render to, which
//! combinations are refused, and what is pruned when they are turned off.

mod support;

use metr_operator::render::pruned;
use metr_operator::{Object, render};
use serde_json::Value;
use support::{embedded, sample};

fn find<'a>(objects: &'a [Object], kind: &str, name: &str) -> Option<&'a Object> {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
}

fn json(objects: &[Object], kind: &str, name: &str) -> Value {
    find(objects, kind, name)
        .unwrap_or_else(|| panic!("{kind} {name} is rendered"))
        .to_json()
}

fn names(objects: &[Object]) -> Vec<(&'static str, String)> {
    objects.iter().map(|o| (o.kind(), o.name())).collect()
}

/// The value of env `name` of the first container of a workload.
fn env(workload: &Value, name: &str) -> Value {
    workload["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("env {name}"))
        .clone()
}

fn refusal(edit: impl FnOnce(&mut metr_operator::Metr)) -> String {
    let mut metr = embedded();
    edit(&mut metr);
    render(&metr).expect_err("the spec is refused").field
}

#[test]
fn an_embedded_postgres_is_a_secret_a_service_and_a_statefulset_with_a_volume() {
    let objects = render(&embedded()).unwrap();

    let postgres = json(&objects, "StatefulSet", "demo-postgres");
    assert_eq!(postgres["spec"]["replicas"], 1);
    assert_eq!(postgres["spec"]["serviceName"], "demo-postgres");
    let claim = &postgres["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(claim["resources"]["requests"]["storage"], "1Gi");
    assert_eq!(
        postgres["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
        "Delete"
    );
    assert_eq!(
        env(&postgres, "POSTGRES_PASSWORD")["valueFrom"]["secretKeyRef"]["name"],
        "demo-postgres"
    );
    let service = json(&objects, "Service", "demo-postgres");
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["ports"][0]["port"], 5432);
    let secret = json(&objects, "Secret", "demo-postgres");
    let data = &secret["stringData"];
    assert_eq!(
        (&data["username"], &data["database"]),
        (&"metr".into(), &"metr".into())
    );
    let password = data["password"].as_str().unwrap();
    assert_eq!(password.len(), 32);
    assert!(
        password.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{password}"
    );
}

#[test]
fn the_services_connect_to_the_embedded_postgres_with_its_secret() {
    let objects = render(&embedded()).unwrap();

    let checker = json(&objects, "StatefulSet", "demo-checker");
    let api = json(&objects, "Deployment", "demo-api");

    assert_eq!(
        env(&checker, "CHECKER_DATABASE_URL")["value"],
        "postgres://$(DB_USER):$(DB_PASSWORD)@demo-postgres:5432/$(DB_NAME)"
    );
    assert_eq!(
        env(&api, "DB_PASSWORD")["valueFrom"]["secretKeyRef"]["name"],
        "demo-postgres"
    );
}

#[test]
fn each_render_generates_a_new_password_which_the_reconciler_never_applies_over_the_old() {
    let first = json(&render(&embedded()).unwrap(), "Secret", "demo-postgres");
    let second = json(&render(&embedded()).unwrap(), "Secret", "demo-postgres");

    // Hence the Secret is created once (see tests/reconcile.rs), never patched.
    assert_ne!(
        first["stringData"]["password"],
        second["stringData"]["password"]
    );
}

#[test]
fn gometr_is_rendered_only_when_enabled() {
    let with = render(&embedded()).unwrap();
    let without = render(&sample()).unwrap();

    let gometr = json(&with, "Deployment", "demo-gometr");
    assert_eq!(
        gometr["spec"]["template"]["spec"]["containers"][0]["image"],
        "metrtest/gometr:dev"
    );
    assert_eq!(env(&gometr, "GOMETR_LISTEN")["value"], "0.0.0.0:8080");
    assert!(find(&with, "Service", "demo-gometr").is_some());
    assert!(find(&with, "NetworkPolicy", "demo-gometr").is_some());
    assert!(!names(&without).iter().any(|(_, n)| n == "demo-gometr"));
}

#[test]
fn components_turned_off_are_pruned_except_the_generated_secret() {
    let metr = sample();

    let pruned = pruned(&metr);

    let mut names = names(&pruned);
    names.sort();
    assert_eq!(
        names,
        [
            ("Deployment", "demo-gometr".to_owned()),
            ("NetworkPolicy", "demo-gometr".to_owned()),
            ("NetworkPolicy", "demo-postgres".to_owned()),
            ("Service", "demo-gometr".to_owned()),
            ("Service", "demo-postgres".to_owned()),
            ("StatefulSet", "demo-postgres".to_owned()),
        ]
    );
}

#[test]
fn nothing_is_pruned_when_every_component_is_on() {
    assert!(pruned(&embedded()).is_empty());
}

#[test]
fn a_secret_reference_and_an_embedded_postgres_together_are_refused_naming_embedded() {
    let field = refusal(|m| {
        m.spec.postgres.secret_ref = Some(metr_operator::crd::SecretRef {
            name: "postgres".into(),
        })
    });

    assert_eq!(field, "postgres.embedded");
}

#[test]
fn neither_a_secret_reference_nor_an_embedded_postgres_is_refused_naming_the_reference() {
    let field = refusal(|m| m.spec.postgres.embedded = None);

    assert_eq!(field, "postgres.secretRef");
}

#[test]
fn a_host_with_an_embedded_postgres_is_refused_naming_the_host() {
    let field = refusal(|m| m.spec.postgres.host = Some("db".into()));

    assert_eq!(field, "postgres.host");
}

#[test]
fn a_storage_size_that_is_not_a_quantity_is_refused_naming_it() {
    for bad in ["", "ten", "10 Gi", "0", "-1Gi", "1.Gi"] {
        let field = refusal(|m| m.spec.postgres.embedded.as_mut().unwrap().storage = bad.into());

        assert_eq!(field, "postgres.embedded.storage", "{bad:?}");
    }
}

#[test]
fn storage_sizes_in_the_usual_forms_are_accepted() {
    for good in ["10Gi", "512Mi", "1.5Gi", "100G", "1073741824"] {
        let mut metr = embedded();
        metr.spec.postgres.embedded.as_mut().unwrap().storage = good.into();

        assert!(render(&metr).is_ok(), "{good}");
    }
}
