//! Reading `deploy/kubernetes/` as `kubectl kustomize` would render it, for
//! the checks in `kubernetes.rs`: files, objects, workloads and their
//! containers, an overlay's patches, and the checker's configuration.

#![allow(
    dead_code,
    reason = "shared by kubernetes.rs and kubernetes_checker.rs, each using a part"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;

pub const NAME_LABEL: &str = "app.kubernetes.io/name";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Every kustomization directory: the base and each overlay.
pub fn kustomization_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![root().join("base")];
    let overlays = std::fs::read_dir(root().join("overlays")).expect("overlays/");
    dirs.extend(overlays.map(|e| e.unwrap().path()).filter(|p| p.is_dir()));
    dirs
}

pub fn yaml_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect()
}

pub fn read_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}
pub fn kustomization(dir: &Path) -> Value {
    read_docs(&dir.join("kustomization.yaml")).remove(0)
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Files a kustomization uses: its resources, and the files of its generators.
pub fn listed_files(k: &Value) -> BTreeSet<String> {
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
pub fn objects() -> Vec<Value> {
    let base = root().join("base");
    let mut all = Vec::new();
    for file in strings(&kustomization(&base)["resources"]) {
        all.extend(read_docs(&base.join(file)));
    }
    all
}

pub fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or_default()
}

pub fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn workloads() -> Vec<Value> {
    objects()
        .into_iter()
        .filter(|o| matches!(kind(o), "Deployment" | "StatefulSet" | "Job"))
        .collect()
}

pub fn workload(name_: &str) -> Value {
    workloads()
        .into_iter()
        .find(|w| name(w) == name_)
        .unwrap_or_else(|| panic!("no workload {name_}"))
}

/// (container, is it an init container) of a workload's pod template.
pub fn containers(w: &Value) -> Vec<(&Value, bool)> {
    let spec = &w["spec"]["template"]["spec"];
    let init = spec["initContainers"].as_sequence().into_iter().flatten();
    let main = spec["containers"].as_sequence().into_iter().flatten();
    init.map(|c| (c, true))
        .chain(main.map(|c| (c, false)))
        .collect()
}

pub fn pod_app(w: &Value) -> String {
    w["spec"]["template"]["metadata"]["labels"][NAME_LABEL]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn env<'a>(c: &'a Value, var: &str) -> Option<&'a Value> {
    c["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"].as_str() == Some(var))
}

/// The checker's memory limit holds the bound plus this share of it, as the
/// operator derives it (`metr_operator::memory::LIMIT_HEADROOM_PERCENT`).
pub const MEMORY_HEADROOM_PERCENT: u64 = 25;
/// The checker's memory request is at least this share of the bound
/// (`metr_operator::memory::REQUEST_PERCENT`): a steady-state estimate.
pub const MEMORY_REQUEST_PERCENT: u64 = 25;

/// Bytes of a memory quantity: plain bytes, or k/M/G/T and Ki/Mi/Gi/Ti.
pub fn quantity_bytes(q: &Value) -> u64 {
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
pub fn rendered_objects(dir: &Path) -> Vec<Value> {
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
pub fn apply_json_patch(object: &mut Value, op: &Value) {
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
pub fn checker_config_path(dir: &Path) -> PathBuf {
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
pub fn metr_env(dir: &Path) -> Vec<(String, String)> {
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
pub fn checker_container_env(
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

/// (name, host, port) of each target in the checker's ConfigMap file.
pub fn checker_targets() -> Vec<(String, String, u16)> {
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
pub fn peer(p: &Value) -> String {
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
pub fn opened(direction: &str, apps: &[String]) -> BTreeSet<(String, String, i64)> {
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
