//! The checker in `deploy/kubernetes/`, checked without a cluster: its shard
//! count matches its replicas and covers every target, its ConfigMap loads
//! as the checker's configuration, and its memory limit holds the bound of
//! that configuration in every kustomization. The rest of the manifests are
//! checked by `kubernetes.rs`.

use checker::memory::MemoryBudget;
use checker::shard::Shard;

#[path = "kubernetes/manifests.rs"]
mod manifests;

use manifests::*;

#[test]
fn the_checker_shard_count_matches_its_replicas_and_covers_every_target() {
    let checker = workload("checker");
    assert_eq!(kind(&checker), "StatefulSet");
    let replicas = checker["spec"]["replicas"].as_u64().unwrap() as u32;
    let (c, _) = containers(&checker)
        .into_iter()
        .find(|(_, init)| !init)
        .unwrap();
    assert_eq!(
        env(c, "POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let spec = env(c, "CHECKER_SHARD").unwrap()["value"].as_str().unwrap();
    assert_eq!(spec, format!("$(POD_NAME)/{replicas}"));

    let shards: Vec<Shard> = (0..replicas)
        .map(|i| {
            spec.replace("$(POD_NAME)", &format!("{}-{i}", name(&checker)))
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(
        shards.iter().map(Shard::index).collect::<Vec<_>>(),
        (0..replicas).collect::<Vec<_>>()
    );
    for target in checker_targets() {
        let owners = shards.iter().filter(|s| s.owns(&target.0)).count();
        assert_eq!(owners, 1, "target {}", target.0);
    }
    for dir in kustomization_dirs() {
        let k = kustomization(&dir);
        assert!(
            k["replicas"].is_null(),
            "{}: scale the checker with its CHECKER_SHARD",
            dir.display()
        );
    }
}

#[test]
fn the_checker_config_map_loads_as_the_checker_configuration_it_is() {
    let path = root().join("base/checker-config.yaml");
    let env = [
        ("CHECKER_DATABASE_URL", "postgres://u:p@postgres:5432/metr"),
        ("CHECKER_CONFIG", "/etc/checker/checker.yaml"),
        ("CHECKER_SHARD", "checker-1/2"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));

    let settings =
        checker::Settings::load(Some(&path), env).expect("a valid checker configuration");

    let w = workload("checker");
    let (c, _) = containers(&w).into_iter().find(|(_, init)| !init).unwrap();
    let port = c["ports"][0]["containerPort"].as_i64().unwrap();
    assert_eq!(i64::from(settings.listen.port()), port);
    assert_eq!(settings.targets.len(), checker_targets().len());
}

#[test]
fn the_checker_memory_limit_holds_the_bound_of_its_configuration_in_every_kustomization() {
    for dir in kustomization_dirs() {
        let objects = rendered_objects(&dir);
        let checker = objects
            .iter()
            .find(|o| kind(o) == "StatefulSet" && name(o) == "checker")
            .expect("the checker StatefulSet");
        let replicas = checker["spec"]["replicas"].as_u64().unwrap();
        let config = checker_config_path(&dir);
        let generated = metr_env(&dir);
        for (c, _) in containers(checker) {
            let who = format!("{}: checker/{}", dir.display(), c["name"].as_str().unwrap());
            assert!(
                c["image"].as_str().unwrap().starts_with("metrtest/checker"),
                "{who}"
            );
            // Every pod of the StatefulSet has this container: the busiest shard sets the bound.
            let bound = (0..replicas)
                .map(|ordinal| {
                    let env = checker_container_env(c, &format!("checker-{ordinal}"), &generated);
                    let shard: Shard = env
                        .iter()
                        .find(|(k, _)| k == "CHECKER_SHARD")
                        .map_or(Shard::ALL, |(_, v)| v.parse().unwrap());
                    let mut settings = checker::Settings::load(Some(&config), env)
                        .unwrap_or_else(|e| panic!("{who}: {e}"));
                    settings.shard = shard;
                    MemoryBudget::of(&settings).total()
                })
                .max()
                .unwrap();
            let limit = quantity_bytes(&c["resources"]["limits"]["memory"]);
            let request = quantity_bytes(&c["resources"]["requests"]["memory"]);
            let mib = |b: u64| b as f64 / f64::from(1 << 20);
            eprintln!(
                "{who}: bound {:.1} MiB, limit {:.0} MiB (+{:.0} %), request {:.0} MiB",
                mib(bound),
                mib(limit),
                (limit as f64 / bound as f64 - 1.0) * 100.0,
                mib(request)
            );
            assert!(
                limit >= bound + bound * MEMORY_HEADROOM_PERCENT / 100,
                "{who}: memory limit {:.0} MiB is below the bound of its configuration, {:.1} MiB, \
                 plus {MEMORY_HEADROOM_PERCENT} % (under the bound the checker exits 2 at start)",
                mib(limit),
                mib(bound)
            );
            assert!(
                request >= bound * MEMORY_REQUEST_PERCENT / 100 && request <= limit,
                "{who}: memory request {:.0} MiB is not between {MEMORY_REQUEST_PERCENT} % of the \
                 bound ({:.1} MiB) and the limit",
                mib(request),
                mib(bound)
            );
        }
    }
}
