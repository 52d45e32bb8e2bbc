//! The Kubernetes manifests in `deploy/kubernetes/`, checked without a cluster:
//! every file is listed by its kustomization, every container is hardened and
//! bounded, the services probe `/health` and run the images `metrtest images`
//! builds, the NetworkPolicies allow exactly the edges the system uses, the
//! checker's shard count matches its replicas, and its memory limit holds the
//! bound of the configuration it runs. Schema validation of the
//! rendered overlays is `scripts/validate-kubernetes` (run by `.ci/run`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use checker::memory::MemoryBudget;
use checker::shard::Shard;
use metrtest::stack::images::{SERVICE_USER, SERVICES};
use metrtest::stack::postgres_image;
use serde::Deserialize;
use serde_yaml::Value;

const NAME_LABEL: &str = "app.kubernetes.io/name";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Every kustomization directory: the base and each overlay.
fn kustomization_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![root().join("base")];
    let overlays = std::fs::read_dir(root().join("overlays")).expect("overlays/");
    dirs.extend(overlays.map(|e| e.unwrap().path()).filter(|p| p.is_dir()));
    dirs
}

fn yaml_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect()
}

fn read_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}
fn kustomization(dir: &Path) -> Value {
    read_docs(&dir.join("kustomization.yaml")).remove(0)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Files a kustomization uses: its resources, and the files of its generators.
fn listed_files(k: &Value) -> BTreeSet<String> {
    let mut files: BTreeSet<String> = strings(&k["resources"]).into_iter().collect();
    for generator in ["configMapGenerator", "secretGenerator"] {
        for g in k[generator].as_sequence().into_iter().flatten() {
            for f in strings(&g["files"]) {
                files.insert(f.rsplit_once('=').map_or(f.clone(), |(_, p)| p.to_owned()));
            }
        }
    }
    files
}

/// Every Kubernetes object of the base (the overlays only add the namespace).
fn objects() -> Vec<Value> {
    let base = root().join("base");
    let mut all = Vec::new();
    for file in strings(&kustomization(&base)["resources"]) {
        all.extend(read_docs(&base.join(file)));
    }
    all
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

fn workloads() -> Vec<Value> {
    objects()
        .into_iter()
        .filter(|o| matches!(kind(o), "Deployment" | "StatefulSet" | "Job"))
        .collect()
}

fn workload(name_: &str) -> Value {
    workloads()
        .into_iter()
        .find(|w| name(w) == name_)
        .unwrap_or_else(|| panic!("no workload {name_}"))
}

/// (container, is it an init container) of a workload's pod template.
fn containers(w: &Value) -> Vec<(&Value, bool)> {
    let spec = &w["spec"]["template"]["spec"];
    let init = spec["initContainers"].as_sequence().into_iter().flatten();
    let main = spec["containers"].as_sequence().into_iter().flatten();
    init.map(|c| (c, true))
        .chain(main.map(|c| (c, false)))
        .collect()
}

fn pod_app(w: &Value) -> String {
    w["spec"]["template"]["metadata"]["labels"][NAME_LABEL]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn env<'a>(c: &'a Value, var: &str) -> Option<&'a Value> {
    c["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some(var))
}

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

/// (name, host, port) of each target in the checker's ConfigMap file.
fn checker_targets() -> Vec<(String, String, u16)> {
    let config = read_docs(&root().join("base/checker-config.yaml")).remove(0);
    config["targets"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| {
            let url = url::Url::parse(t["url"].as_str().unwrap()).unwrap();
            (
                t["name"].as_str().unwrap().to_owned(),
                url.host_str().unwrap().to_owned(),
                url.port_or_known_default().unwrap(),
            )
        })
        .collect()
}

/// Where a NetworkPolicy peer is: a metr app, any pod, Prometheus, or DNS.
fn peer(p: &Value) -> String {
    if let Some(app) = p["podSelector"]["matchLabels"][NAME_LABEL].as_str() {
        return app.to_owned();
    }
    let ns = &p["namespaceSelector"]["matchLabels"];
    if ns["metr.dev/prometheus"] == "true" {
        return "prometheus".into();
    }
    if ns["kubernetes.io/metadata.name"] == "kube-system" {
        return "dns".into();
    }
    assert!(
        p["namespaceSelector"]
            .as_mapping()
            .is_some_and(|m| m.is_empty()),
        "peer {p:?}"
    );
    "anyone".into()
}

/// (source, destination, port) edges one direction of the policies opens.
fn opened(direction: &str, apps: &[String]) -> BTreeSet<(String, String, i64)> {
    let (rules, peers) = match direction {
        "ingress" => ("ingress", "from"),
        _ => ("egress", "to"),
    };
    let mut edges = BTreeSet::new();
    for policy in objects().iter().filter(|o| kind(o) == "NetworkPolicy") {
        let selected: Vec<String> =
            match policy["spec"]["podSelector"]["matchLabels"][NAME_LABEL].as_str() {
                Some(app) => vec![app.to_owned()],
                None => apps.to_vec(),
            };
        for rule in policy["spec"][rules].as_sequence().into_iter().flatten() {
            for p in rule[peers].as_sequence().unwrap() {
                for port in rule["ports"].as_sequence().unwrap() {
                    let port = port["port"].as_i64().unwrap();
                    for app in &selected {
                        let other = peer(p);
                        edges.insert(match direction {
                            "ingress" => (other, app.clone(), port),
                            _ => (app.clone(), other, port),
                        });
                    }
                }
            }
        }
    }
    edges
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

/// The checker's memory limit holds the bound plus this share of it, as the
/// operator derives it (`metr_operator::memory::LIMIT_HEADROOM_PERCENT`).
const MEMORY_HEADROOM_PERCENT: u64 = 25;
/// The checker's memory request is at least this share of the bound
/// (`metr_operator::memory::REQUEST_PERCENT`): a steady-state estimate.
const MEMORY_REQUEST_PERCENT: u64 = 25;

/// Bytes of a memory quantity: plain bytes, or k/M/G/T and Ki/Mi/Gi/Ti.
fn quantity_bytes(q: &Value) -> u64 {
    let text = match q {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => panic!("{other:?} is not a quantity"),
    };
    let units: [(&str, f64); 8] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, unit)| Some((text.strip_suffix(suffix)?, *unit)))
        .unwrap_or((text.as_str(), 1.0));
    let number: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("{text:?} is not a memory quantity this test reads"));
    (number * unit).ceil() as u64
}

/// The objects `dir` renders: the base's, with an overlay's JSON 6902 patches
/// applied. Any other way of changing them fails here rather than going
/// unchecked: model it below first.
fn rendered_objects(dir: &Path) -> Vec<Value> {
    let mut objects = objects();
    if dir == root().join("base") {
        return objects;
    }
    let k = kustomization(dir);
    assert!(
        strings(&k["resources"]).contains(&"../../base".to_owned()),
        "{}: an overlay of base",
        dir.display()
    );
    for key in [
        "patchesStrategicMerge",
        "patchesJson6902",
        "replicas",
        "components",
    ] {
        assert!(
            k[key].is_null(),
            "{}: `{key}` is not modelled by rendered_objects",
            dir.display()
        );
    }
    for patch in k["patches"].as_sequence().into_iter().flatten() {
        let target = &patch["target"];
        let ops: Vec<Value> = patch["patch"]
            .as_str()
            .and_then(|text| serde_yaml::from_str(text).ok())
            .filter(|_| !target.is_null())
            .unwrap_or_else(|| {
                panic!(
                    "{}: only inline JSON 6902 patches with a target are modelled",
                    dir.display()
                )
            });
        for object in objects.iter_mut().filter(|o| {
            target["kind"].as_str() == Some(kind(o)) && target["name"].as_str() == Some(name(o))
        }) {
            for op in &ops {
                apply_json_patch(object, op);
            }
        }
    }
    objects
}

/// One JSON 6902 operation (add, replace, remove) on `object`.
fn apply_json_patch(object: &mut Value, op: &Value) {
    let path = op["path"].as_str().unwrap();
    let mut segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = segments.pop().expect("a path below the root");
    let mut parent = object;
    for segment in &segments {
        parent = match parent {
            Value::Sequence(s) => &mut s[segment.parse::<usize>().unwrap()],
            Value::Mapping(m) => m
                .get_mut(segment.as_str())
                .unwrap_or_else(|| panic!("{path}")),
            _ => panic!("{path}: not a container"),
        };
    }
    let value = op["value"].clone();
    let index = || last.parse::<usize>().unwrap();
    match (op["op"].as_str().unwrap(), parent) {
        ("add" | "replace", Value::Mapping(m)) => {
            m.insert(last.as_str().into(), value);
        }
        ("add", Value::Sequence(s)) if last == "-" => s.push(value),
        ("add", Value::Sequence(s)) => s.insert(index(), value),
        ("replace", Value::Sequence(s)) => s[index()] = value,
        ("remove", Value::Mapping(m)) => {
            m.remove(last.as_str());
        }
        ("remove", Value::Sequence(s)) => {
            s.remove(index());
        }
        (other, _) => panic!("{path}: op {other} is not modelled"),
    }
}

/// The checker's configuration file in `dir`: the base's, or the one an
/// overlay's `checker-config` generator puts in its place.
fn checker_config_path(dir: &Path) -> PathBuf {
    for d in [dir.to_path_buf(), root().join("base")] {
        let k = kustomization(&d);
        for g in k["configMapGenerator"].as_sequence().into_iter().flatten() {
            if g["name"] != "checker-config" {
                continue;
            }
            for file in strings(&g["files"]) {
                if let Some(path) = file.strip_prefix("checker.yaml=") {
                    return d.join(path);
                }
            }
            panic!("{}: checker-config without checker.yaml", d.display());
        }
    }
    panic!("no checker-config generator")
}

/// `CHECKER_*` literals of the generated `metr-env` ConfigMap (base, then overlay).
fn metr_env(dir: &Path) -> Vec<(String, String)> {
    let mut dirs = vec![root().join("base")];
    if dir != root().join("base") {
        dirs.push(dir.to_path_buf());
    }
    dirs.iter()
        .flat_map(|d| {
            let k = kustomization(d);
            let generators = k["configMapGenerator"]
                .as_sequence()
                .cloned()
                .unwrap_or_default();
            generators
                .into_iter()
                .filter(|g| g["name"] == "metr-env")
                .flat_map(|g| strings(&g["literals"]))
                .collect::<Vec<_>>()
        })
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// The environment a checker container of pod `pod` gets: `metr-env`, then its
/// own variables with `$(POD_NAME)` resolved. A `CHECKER_*` variable whose
/// value is not in the manifests cannot be accounted for, and fails here.
fn checker_container_env(
    c: &Value,
    pod: &str,
    generated: &[(String, String)],
) -> Vec<(String, String)> {
    let from_metr_env = c["envFrom"]
        .as_sequence()
        .into_iter()
        .flatten()
        .any(|e| e["configMapRef"]["name"] == "metr-env");
    let mut env: Vec<(String, String)> = if from_metr_env {
        generated.to_vec()
    } else {
        Vec::new()
    };
    for e in c["env"].as_sequence().into_iter().flatten() {
        let var = e["name"].as_str().unwrap();
        match e["value"].as_str() {
            Some(value) => env.push((var.to_owned(), value.replace("$(POD_NAME)", pod))),
            None => assert!(
                !var.starts_with("CHECKER_"),
                "{var}: a value outside the manifests; its memory cannot be checked"
            ),
        }
    }
    env
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
