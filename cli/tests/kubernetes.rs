//! The Kubernetes manifests in `deploy/kubernetes/`, checked without a cluster:
//! every file is listed by its kustomization, every container is hardened and
//! bounded, the services probe `/health` and run the images `metrtest images`
//! builds, the NetworkPolicies allow exactly the edges the system uses, the
//! checker's shard count matches its replicas, and its memory limit holds the
//! bound of the configuration it runs. Schema validation of the
//! rendered overlays is `scripts/validate-kubernetes` (run by `.ci/run`).

use std::collections::{BTreeMap, BTreeSet};

use metrtest::stack::images::{SERVICE_USER, SERVICES};
use metrtest::stack::postgres_image;
use serde_yaml::Value;

#[path = "kubernetes/manifests.rs"]
mod manifests;

use manifests::*;

#[test]
fn every_kustomization_lists_every_file_beside_it_and_nothing_missing() {
    for dir in kustomization_dirs() {
        let k = kustomization(&dir);
        let listed = listed_files(&k);
        let mut present = yaml_files(&dir);
        present.remove("kustomization.yaml");
        let local: BTreeSet<String> = listed
            .iter()
            .filter(|f| !f.contains('/'))
            .cloned()
            .collect();
        assert_eq!(local, present, "{}: listed vs present", dir.display());
        for reference in listed.iter().filter(|f| f.contains('/')) {
            assert!(
                dir.join(reference).join("kustomization.yaml").is_file(),
                "{}: {reference} is not a kustomization",
                dir.display()
            );
        }
    }
}

#[test]
fn every_document_is_a_named_kubernetes_object() {
    for dir in kustomization_dirs() {
        for file in strings(&kustomization(&dir)["resources"]) {
            let path = dir.join(&file);
            if path.is_dir() {
                continue;
            }
            for doc in read_docs(&path) {
                assert!(doc["apiVersion"].is_string(), "{file}: no apiVersion");
                assert!(!kind(&doc).is_empty(), "{file}: no kind");
                assert!(
                    !name(&doc).is_empty(),
                    "{file}: a {} has no name",
                    kind(&doc)
                );
            }
        }
    }
}

#[test]
fn every_container_is_hardened_and_has_requests_and_limits() {
    for w in workloads() {
        let pod = &w["spec"]["template"]["spec"];
        let who = name(&w);
        assert_eq!(
            pod["automountServiceAccountToken"],
            Value::Bool(false),
            "{who}"
        );
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"],
            Value::Bool(true),
            "{who}"
        );
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{who}"
        );
        for (c, _) in containers(&w) {
            let who = format!("{who}/{}", c["name"].as_str().unwrap());
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], Value::Bool(false), "{who}");
            assert_eq!(sc["readOnlyRootFilesystem"], Value::Bool(true), "{who}");
            assert_eq!(sc["runAsNonRoot"], Value::Bool(true), "{who}");
            assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{who}");
            assert!(
                sc["capabilities"]["add"].is_null(),
                "{who} adds capabilities"
            );
            assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{who}");
            for bound in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        !c["resources"][bound][resource].is_null(),
                        "{who}: no {bound}.{resource}"
                    );
                }
            }
        }
    }
}

#[test]
fn long_running_services_probe_health_on_their_own_port() {
    for w in workloads().iter().filter(|w| kind(w) != "Job") {
        for (c, init) in containers(w) {
            if init {
                continue;
            }
            let who = format!("{}/{}", name(w), c["name"].as_str().unwrap());
            let ports: Vec<&str> = c["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for probe in ["readinessProbe", "livenessProbe"] {
                let p = &c[probe];
                assert!(p.is_mapping(), "{who}: no {probe}");
                if c["image"].as_str().unwrap().starts_with("metrtest/") {
                    assert_eq!(p["httpGet"]["path"], "/health", "{who}: {probe}");
                    let port = p["httpGet"]["port"].as_str().unwrap();
                    assert!(
                        ports.contains(&port),
                        "{who}: {probe} on unknown port {port}"
                    );
                } else {
                    assert!(p["exec"].is_mapping(), "{who}: {probe} must be a command");
                }
            }
        }
    }
}

#[test]
fn images_are_the_ones_metrtest_builds_run_as_their_user() {
    let uid: i64 = SERVICE_USER.split(':').next().unwrap().parse().unwrap();
    let mut seen = BTreeSet::new();
    for w in workloads() {
        for (c, _) in containers(&w) {
            let image = c["image"].as_str().unwrap();
            if image == postgres_image::OFFICIAL {
                continue;
            }
            let (repository, _tag) = image.rsplit_once(':').expect("a tagged image");
            let service = repository
                .strip_prefix("metrtest/")
                .unwrap_or_else(|| panic!("{image} is not built by metrtest"));
            assert!(SERVICES.contains(&service), "{image}: unknown service");
            assert_eq!(
                c["imagePullPolicy"], "IfNotPresent",
                "{image}: loaded, not pulled"
            );
            let pod_uid = &w["spec"]["template"]["spec"]["securityContext"]["runAsUser"];
            assert_eq!(pod_uid.as_i64(), Some(uid), "{}: runAsUser", name(&w));
            seen.insert(service.to_owned());
        }
    }
    let all: BTreeSet<String> = SERVICES.iter().map(|s| s.to_string()).collect();
    assert_eq!(seen, all, "every service image is deployed");
}

#[test]
fn services_select_existing_pods_and_carry_prometheus_annotations() {
    let apps: BTreeMap<String, Value> = workloads().into_iter().map(|w| (pod_app(&w), w)).collect();
    for s in objects().iter().filter(|o| kind(o) == "Service") {
        let app = s["spec"]["selector"][NAME_LABEL].as_str().unwrap();
        let w = apps
            .get(app)
            .unwrap_or_else(|| panic!("service {}: no pods {app}", name(s)));
        let (c, _) = containers(w).into_iter().find(|(_, init)| !init).unwrap();
        let port_of = |port_name: &str| {
            c["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|p| p["name"].as_str() == Some(port_name))
                .and_then(|p| p["containerPort"].as_i64())
                .unwrap_or_else(|| panic!("{}: no port {port_name}", name(s)))
        };
        let target = s["spec"]["ports"][0]["targetPort"].as_str().unwrap();
        let port = port_of(target);
        if !c["image"].as_str().unwrap().starts_with("metrtest/") {
            continue;
        }
        for annotations in [
            &s["metadata"]["annotations"],
            &w["spec"]["template"]["metadata"]["annotations"],
        ] {
            assert_eq!(annotations["prometheus.io/scrape"], "true", "{app}");
            assert_eq!(annotations["prometheus.io/path"], "/metrics", "{app}");
            assert_eq!(
                annotations["prometheus.io/port"],
                port.to_string().as_str(),
                "{app}"
            );
        }
    }
}

#[test]
fn the_api_has_two_replicas_and_a_disruption_budget() {
    let api = workload("api");
    assert_eq!(api["spec"]["replicas"].as_i64(), Some(2));
    let pdb = objects()
        .into_iter()
        .find(|o| kind(o) == "PodDisruptionBudget")
        .expect("a PodDisruptionBudget");
    assert_eq!(pdb["spec"]["selector"]["matchLabels"][NAME_LABEL], "api");
    assert_eq!(pdb["spec"]["maxUnavailable"].as_i64(), Some(1));
}

#[test]
fn the_migration_job_and_the_waiting_init_containers_run_migrate() {
    let job = workload("migrate");
    assert_eq!(kind(&job), "Job");
    let (c, _) = containers(&job)[0];
    assert_eq!(strings(&c["args"]), ["migrate"]);
    for service in ["checker", "api"] {
        let w = workload(service);
        let (init, is_init) = containers(&w)[0];
        assert!(is_init, "{service} waits in an init container");
        assert_eq!(strings(&init["args"]), ["migrate"], "{service}");
        assert!(
            init["image"]
                .as_str()
                .unwrap()
                .starts_with(&format!("metrtest/{service}:"))
        );
    }
}

#[test]
fn database_passwords_come_from_the_secret_only() {
    for w in workloads() {
        for (c, _) in containers(&w) {
            for var in ["CHECKER_DATABASE_URL", "API_DATABASE_URL"] {
                if let Some(url) = env(c, var) {
                    let value = url["value"].as_str().unwrap();
                    assert!(value.contains("$(DB_PASSWORD)"), "{}: {var}", name(&w));
                    let password = env(c, "DB_PASSWORD").expect("DB_PASSWORD before the URL");
                    assert_eq!(password["valueFrom"]["secretKeyRef"]["name"], "postgres");
                }
            }
        }
    }
}

#[test]
fn network_policies_allow_exactly_the_edges_the_system_uses() {
    let apps: Vec<String> = workloads().iter().map(pod_app).collect();
    let deny = objects()
        .into_iter()
        .find(|o| {
            kind(o) == "NetworkPolicy"
                && o["spec"]["podSelector"]
                    .as_mapping()
                    .is_some_and(|m| m.is_empty())
                && o["spec"]["ingress"].is_null()
                && o["spec"]["egress"].is_null()
        })
        .expect("a default-deny policy");
    assert_eq!(strings(&deny["spec"]["policyTypes"]), ["Ingress", "Egress"]);

    let ingress = opened("ingress", &apps);
    let egress = opened("egress", &apps);
    let mut allowed = BTreeSet::new();
    for (from, to, port) in &egress {
        let inside = apps.contains(to);
        let admitted = ingress.contains(&(from.clone(), to.clone(), *port))
            || ingress.contains(&("anyone".into(), to.clone(), *port));
        assert!(
            !inside || admitted,
            "egress {from}->{to}:{port} is never admitted"
        );
        allowed.insert(format!("{from}->{to}:{port}"));
    }
    for (from, to, port) in &ingress {
        if apps.contains(from) {
            let sent = egress.contains(&(from.clone(), to.clone(), *port));
            assert!(sent, "ingress {from}->{to}:{port} is never sent");
        } else {
            allowed.insert(format!("{from}->{to}:{port}"));
        }
    }
    let mut expected: BTreeSet<String> = [
        "checker->postgres:5432",
        "api->postgres:5432",
        "migrate->postgres:5432",
        "checker->gometr:8080",
        "checker->api:8080",
        "prometheus->gometr:8080",
        "prometheus->checker:9090",
        "anyone->api:8080",
    ]
    .map(String::from)
    .into();
    for app in &apps {
        expected.insert(format!("{app}->dns:53"));
    }
    assert_eq!(allowed, expected);

    for (target, host, port) in checker_targets() {
        assert!(
            allowed.contains(&format!("checker->{host}:{port}")),
            "target {target} is blocked"
        );
    }
}

#[test]
fn services_listen_on_the_port_their_container_declares() {
    for w in workloads() {
        for (c, _) in containers(&w) {
            let Some(port) = c["ports"][0]["containerPort"].as_i64() else {
                continue;
            };
            for var in ["GOMETR_LISTEN", "API_LISTEN"] {
                if let Some(listen) = env(c, var) {
                    let addr: std::net::SocketAddr =
                        listen["value"].as_str().unwrap().parse().unwrap();
                    assert_eq!(i64::from(addr.port()), port, "{}: {var}", name(&w));
                }
            }
        }
    }
}
