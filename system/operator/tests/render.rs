//! `render` and `validate`: what a `Metr` becomes, and which specs are refused.

mod support;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, EnvVar};
use metr_operator::render::CONFIG_HASH_ANNOTATION;
use metr_operator::{Metr, Object, render};
use support::{embedded, sample};

fn statefulset(objects: &[Object]) -> &StatefulSet {
    objects
        .iter()
        .find_map(|o| match o {
            Object::StatefulSet(s) => Some(s),
            _ => None,
        })
        .expect("a StatefulSet is rendered")
}

fn deployment(objects: &[Object]) -> &Deployment {
    objects
        .iter()
        .find_map(|o| match o {
            Object::Deployment(d) => Some(d),
            _ => None,
        })
        .expect("a Deployment is rendered")
}

fn config_map(objects: &[Object]) -> &ConfigMap {
    objects
        .iter()
        .find_map(|o| match o {
            Object::ConfigMap(c) => Some(c),
            _ => None,
        })
        .expect("a ConfigMap is rendered")
}

fn env<'a>(env: &'a [EnvVar], name: &str) -> &'a str {
    env.iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
        .unwrap_or_else(|| panic!("env {name} is set"))
}

fn checker_env(objects: &[Object]) -> Vec<EnvVar> {
    let spec = statefulset(objects).spec.clone().unwrap();
    let pod = spec.template.spec.unwrap();
    pod.containers[0].env.clone().unwrap()
}

fn config_hash(objects: &[Object]) -> String {
    let template = statefulset(objects).spec.clone().unwrap().template;
    template.metadata.unwrap().annotations.unwrap()[CONFIG_HASH_ANNOTATION].clone()
}

fn refusal(edit: impl FnOnce(&mut Metr)) -> String {
    let mut metr = sample();
    edit(&mut metr);
    render(&metr).expect_err("the spec is refused").field
}

#[test]
fn a_sample_metr_renders_the_workloads_of_the_base_manifests() {
    let metr = sample();

    let objects = render(&metr).unwrap();

    let kinds: Vec<_> = objects.iter().map(|o| (o.kind(), o.name())).collect();
    assert_eq!(
        kinds,
        [
            ("NetworkPolicy", "demo-default-deny".to_owned()),
            ("NetworkPolicy", "demo-dns".to_owned()),
            ("NetworkPolicy", "demo-checker".to_owned()),
            ("NetworkPolicy", "demo-api".to_owned()),
            ("NetworkPolicy", "demo-migrate".to_owned()),
            ("ConfigMap", "demo-checker-config".to_owned()),
            ("Job", "demo-migrate".to_owned()),
            ("Service", "demo-checker".to_owned()),
            ("StatefulSet", "demo-checker".to_owned()),
            ("Service", "demo-api".to_owned()),
            ("Deployment", "demo-api".to_owned()),
            ("PodDisruptionBudget", "demo-api".to_owned()),
        ]
    );
}

#[test]
fn every_object_is_owned_by_the_metr_and_lives_in_its_namespace() {
    for metr in [sample(), embedded()] {
        let objects = render(&metr).unwrap();

        for object in &objects {
            let json = object.to_json();
            let meta = &json["metadata"];
            assert_eq!(meta["namespace"], "metr", "{}", object.name());
            let owner = &meta["ownerReferences"][0];
            assert_eq!(owner["kind"], "Metr");
            assert_eq!(owner["apiVersion"], "metr.dev/v1alpha1");
            assert_eq!(owner["uid"], metr.metadata.uid.clone().unwrap());
            assert_eq!(owner["controller"], true);
            let labels = &meta["labels"];
            assert_eq!(labels["app.kubernetes.io/managed-by"], "metr-operator");
            assert_eq!(labels["app.kubernetes.io/instance"], "demo");
        }
    }
}

#[test]
fn the_checker_config_holds_the_targets_interval_and_retention() {
    let metr = sample();

    let objects = render(&metr).unwrap();

    let text = &config_map(&objects).data.as_ref().unwrap()["checker.yaml"];
    let config: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    assert_eq!(config["interval"], "15s");
    assert_eq!(config["retention"], "15d");
    assert_eq!(config["listen"], "0.0.0.0:9090");
    assert_eq!(config["targets"][0]["name"], "gometr");
    assert_eq!(config["targets"][0]["kind"], "prometheus");
    assert_eq!(config["targets"][1]["url"], "http://demo-api:8080");
}

#[test]
fn checker_replicas_become_statefulset_replicas_and_the_shard_count() {
    let mut metr = sample();
    metr.spec.checker.replicas = 3;

    let objects = render(&metr).unwrap();

    assert_eq!(
        statefulset(&objects).spec.as_ref().unwrap().replicas,
        Some(3)
    );
    assert_eq!(
        env(&checker_env(&objects), "CHECKER_SHARD"),
        "$(POD_NAME)/3"
    );
}

#[test]
fn the_database_url_is_built_from_the_secret_and_the_host() {
    let mut metr = sample();
    metr.spec.postgres.host = Some("db.example".into());
    metr.spec.postgres.port = Some(6543);

    let objects = render(&metr).unwrap();

    let env = checker_env(&objects);
    assert_eq!(
        self::env(&env, "CHECKER_DATABASE_URL"),
        "postgres://$(DB_USER):$(DB_PASSWORD)@db.example:6543/$(DB_NAME)"
    );
    let user = env.iter().find(|e| e.name == "DB_USER").unwrap();
    let key = user
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("postgres", "username")
    );
}

#[test]
fn api_replicas_become_deployment_replicas() {
    let mut metr = sample();
    metr.spec.api.replicas = 5;

    let objects = render(&metr).unwrap();

    assert_eq!(
        deployment(&objects).spec.as_ref().unwrap().replicas,
        Some(5)
    );
}

#[test]
fn changing_the_targets_changes_the_checker_config_hash() {
    let before = render(&sample()).unwrap();
    let mut metr = sample();
    metr.spec.targets.pop();

    let after = render(&metr).unwrap();

    assert_ne!(config_hash(&before), config_hash(&after));
}

#[test]
fn scaling_the_api_keeps_the_checker_config_hash() {
    let before = render(&sample()).unwrap();
    let mut metr = sample();
    metr.spec.api.replicas = 4;

    let after = render(&metr).unwrap();

    assert_eq!(config_hash(&before), config_hash(&after));
}

#[test]
fn containers_are_hardened_as_in_the_base_manifests() {
    let mut objects = render(&sample()).unwrap();
    objects.extend(render(&embedded()).unwrap());

    for object in &objects {
        let json = object.to_json();
        let pod = match object.kind() {
            "Job" | "Deployment" | "StatefulSet" => &json["spec"]["template"]["spec"],
            _ => continue,
        };
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["automountServiceAccountToken"], false);
        let containers = pod["containers"].as_array().unwrap().iter();
        let init = pod["initContainers"].as_array().into_iter().flatten();
        for container in containers.chain(init) {
            let security = &container["securityContext"];
            assert_eq!(security["allowPrivilegeEscalation"], false);
            assert_eq!(security["readOnlyRootFilesystem"], true);
            assert_eq!(security["capabilities"]["drop"][0], "ALL");
            assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
            assert!(container["resources"]["limits"]["memory"].is_string());
        }
    }
}

#[test]
fn a_duplicate_target_name_is_refused_naming_the_second_target() {
    let field = refusal(|m| {
        let first = m.spec.targets[0].clone();
        m.spec.targets.push(first);
    });

    assert_eq!(field, "targets[2].name");
}

#[test]
fn an_interval_of_zero_is_refused_naming_the_interval() {
    let field = refusal(|m| m.spec.checker.interval = "0s".into());

    assert_eq!(field, "checker.interval");
}

#[test]
fn an_interval_that_is_not_a_duration_is_refused_naming_the_interval() {
    let field = refusal(|m| m.spec.checker.interval = "soon".into());

    assert_eq!(field, "checker.interval");
}

#[test]
fn negative_checker_replicas_are_refused_naming_the_field() {
    let field = refusal(|m| m.spec.checker.replicas = -1);

    assert_eq!(field, "checker.replicas");
}

#[test]
fn negative_api_replicas_are_refused_naming_the_field() {
    let field = refusal(|m| m.spec.api.replicas = -2);

    assert_eq!(field, "api.replicas");
}

#[test]
fn a_missing_secret_reference_is_refused_naming_the_field() {
    let field = refusal(|m| m.spec.postgres.secret_ref = None);

    assert_eq!(field, "postgres.secretRef");
}

#[test]
fn no_targets_are_refused_naming_the_field() {
    let field = refusal(|m| m.spec.targets.clear());

    assert_eq!(field, "targets");
}

#[test]
fn a_retention_under_an_hour_is_refused_naming_the_field() {
    let field = refusal(|m| m.spec.retention = "10m".into());

    assert_eq!(field, "retention");
}

#[test]
fn a_refusal_message_names_the_field_and_the_problem() {
    let mut metr = sample();
    metr.spec.checker.interval = "0s".into();

    let error = render(&metr).unwrap_err();

    assert_eq!(
        error.to_string(),
        "spec.checker.interval: must be greater than zero"
    );
}

#[test]
fn the_rendered_checker_config_loads_as_the_checker_configuration() {
    let mut metr = sample();
    metr.spec.checker.replicas = 3;
    let objects = render(&metr).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checker.yaml");
    std::fs::write(
        &path,
        &config_map(&objects).data.as_ref().unwrap()["checker.yaml"],
    )
    .unwrap();
    let shard =
        env(&checker_env(&objects), "CHECKER_SHARD").replace("$(POD_NAME)", "demo-checker-2");
    let env = [
        ("CHECKER_DATABASE_URL", "postgres://u:p@postgres:5432/metr"),
        ("CHECKER_SHARD", shard.as_str()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));

    let settings =
        checker::Settings::load(Some(&path), env).expect("a valid checker configuration");

    assert_eq!(settings.targets.len(), 2);
    assert_eq!(settings.interval, std::time::Duration::from_secs(15));
    assert_eq!(
        settings.retention,
        std::time::Duration::from_secs(15 * 24 * 3600)
    );
    assert_eq!(settings.listen.port(), 9090);
    let shard: checker::shard::Shard = shard.parse().expect("the pod's shard parses");
    assert_eq!(shard.to_string(), "2/3");
}

/// (request, limit) of the memory of each checker container, init first.
fn checker_memory(objects: &[Object]) -> Vec<(String, String)> {
    let pod = statefulset(objects)
        .spec
        .clone()
        .unwrap()
        .template
        .spec
        .unwrap();
    let init = pod.init_containers.unwrap_or_default();
    init.iter()
        .chain(&pod.containers)
        .map(|c| {
            let resources = c.resources.clone().unwrap();
            (
                resources.requests.unwrap()["memory"].0.clone(),
                resources.limits.unwrap()["memory"].0.clone(),
            )
        })
        .collect()
}

/// The checker container's memory limit in bytes (`NMi`, as rendered).
fn limit_bytes(objects: &[Object]) -> u64 {
    let (_, limit) = checker_memory(objects).pop().unwrap();
    let mib: u64 = limit.strip_suffix("Mi").unwrap().parse().unwrap();
    mib << 20
}

/// The bound of each shard, computed as the checker computes it at start:
/// the rendered file loaded by `Settings::load`, the shard from the pod's
/// `CHECKER_SHARD`.
fn shard_bounds(objects: &[Object]) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checker.yaml");
    std::fs::write(
        &path,
        &config_map(objects).data.as_ref().unwrap()["checker.yaml"],
    )
    .unwrap();
    let replicas = statefulset(objects)
        .spec
        .as_ref()
        .unwrap()
        .replicas
        .unwrap();
    (0..replicas)
        .map(|ordinal| {
            let shard = env(&checker_env(objects), "CHECKER_SHARD")
                .replace("$(POD_NAME)", &format!("demo-checker-{ordinal}"));
            let env = [("CHECKER_DATABASE_URL", "postgres://u:p@postgres:5432/metr")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()));
            let mut settings = checker::Settings::load(Some(&path), env).unwrap();
            settings.shard = shard.parse().unwrap();
            checker::memory::MemoryBudget::of(&settings).total()
        })
        .collect()
}

#[test]
fn the_checker_memory_limit_is_the_bound_of_its_busiest_shard_plus_a_quarter_in_whole_mib() {
    let mib = 1 << 20;
    for replicas in [1, 2, 3] {
        let mut metr = sample();
        metr.spec.checker.replicas = replicas;

        let objects = render(&metr).unwrap();

        let bound = *shard_bounds(&objects).iter().max().unwrap();
        let limit = format!("{}Mi", (bound + bound / 4).div_ceil(mib));
        let request = format!("{}Mi", (bound / 4).div_ceil(mib));
        // The init container runs the same checker, which checks its bound before migrating.
        assert_eq!(
            checker_memory(&objects),
            [(request.clone(), limit.clone()), (request, limit)],
            "{replicas} replicas, bound {bound}"
        );
    }
}

#[test]
fn raising_the_sample_limit_raises_the_checker_memory_limit() {
    let before = limit_bytes(&render(&sample()).unwrap());
    let mut raised = sample();
    raised.spec.checker.sample_limit = Some(400_000);
    let mut one_target = sample();
    one_target.spec.targets[0].sample_limit = Some(1_000_000);
    let mut lowered = sample();
    lowered.spec.checker.sample_limit = Some(10_000);

    let raised = limit_bytes(&render(&raised).unwrap());
    let one_target = limit_bytes(&render(&one_target).unwrap());
    let lowered = limit_bytes(&render(&lowered).unwrap());

    assert!(raised > before, "{raised} <= {before}");
    assert!(one_target > raised, "{one_target} <= {raised}");
    assert!(lowered < before, "{lowered} >= {before}");
}

#[test]
fn shards_that_split_the_targets_get_a_lower_limit_than_one_checking_all() {
    let names: Vec<String> = sample()
        .spec
        .targets
        .iter()
        .map(|t| t.name.clone())
        .collect();
    let split = (2..16)
        .find(|&n| {
            let owner = |name: &str| checker::shard::owner(name, n);
            owner(&names[0]) != owner(&names[1])
        })
        .expect("some shard count splits two targets");
    let all = limit_bytes(&render(&sample()).unwrap());
    let mut sharded = sample();
    sharded.spec.checker.replicas = i32::try_from(split).unwrap();

    let sharded = limit_bytes(&render(&sharded).unwrap());

    assert!(sharded < all, "{split} shards: {sharded} >= {all}");
}

#[test]
fn sample_limits_reach_the_checker_config_in_its_own_spelling() {
    let mut metr = sample();
    metr.spec.checker.sample_limit = Some(50_000);
    metr.spec.targets[1].sample_limit = Some(70_000);
    let objects = render(&metr).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checker.yaml");
    std::fs::write(
        &path,
        &config_map(&objects).data.as_ref().unwrap()["checker.yaml"],
    )
    .unwrap();
    let env = [("CHECKER_DATABASE_URL", "postgres://u:p@postgres:5432/metr")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));

    let settings = checker::Settings::load(Some(&path), env).unwrap();

    assert_eq!(settings.sample_limit, 50_000);
    assert_eq!(settings.targets[0].sample_limit(&settings), 50_000);
    assert_eq!(settings.targets[1].sample_limit(&settings), 70_000);
}

#[test]
fn a_memory_limit_at_or_above_the_bound_is_kept_as_written() {
    let bound = *shard_bounds(&render(&sample()).unwrap())
        .iter()
        .max()
        .unwrap();
    for limit in ["2Gi".to_owned(), bound.to_string()] {
        let mut metr = sample();
        metr.spec.checker.memory_limit = Some(limit.clone());

        let objects = render(&metr).unwrap();

        for (request, written) in checker_memory(&objects) {
            assert_eq!(written, limit);
            let request: u64 = request.strip_suffix("Mi").unwrap().parse().unwrap();
            assert!(request << 20 <= bound, "{request}Mi");
        }
    }
}

#[test]
fn a_memory_limit_below_the_bound_is_refused_naming_the_field_and_the_bound() {
    let bound = *shard_bounds(&render(&sample()).unwrap())
        .iter()
        .max()
        .unwrap();
    let mut metr = sample();
    metr.spec.checker.memory_limit = Some((bound - 1).to_string());

    let error = render(&metr).unwrap_err();

    assert_eq!(error.field, "checker.memoryLimit");
    let bound_mib = format!("{} MiB", (bound as f64 / f64::from(1 << 20)).round());
    assert!(
        error.problem.contains(&bound_mib) && error.problem.contains("refuse to start"),
        "{error}"
    );
}

#[test]
fn a_memory_limit_that_is_not_a_size_is_refused_naming_the_field() {
    let field = refusal(|m| m.spec.checker.memory_limit = Some("lots".into()));

    assert_eq!(field, "checker.memoryLimit");
}

#[test]
fn a_sample_limit_under_one_is_refused_naming_the_field() {
    assert_eq!(
        refusal(|m| m.spec.checker.sample_limit = Some(0)),
        "checker.sampleLimit"
    );
    assert_eq!(
        refusal(|m| m.spec.targets[1].sample_limit = Some(-5)),
        "targets[1].sampleLimit"
    );
}
