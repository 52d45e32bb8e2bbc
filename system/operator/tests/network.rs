//! The NetworkPolicies a `Metr` renders allow exactly the edges the system
//! uses between its pods, and nothing else.

mod support;

use std::collections::BTreeSet;

use metr_operator::{Object, render};
use serde_json::Value;
use support::{embedded, sample};

/// (component, pod labels) of every workload rendered.
fn pods(objects: &[Object]) -> Vec<(String, Value)> {
    objects
        .iter()
        .filter(|o| matches!(o.kind(), "Deployment" | "StatefulSet" | "Job"))
        .map(|o| {
            let labels = o.to_json()["spec"]["template"]["metadata"]["labels"].clone();
            let component = labels["app.kubernetes.io/name"]
                .as_str()
                .unwrap()
                .to_owned();
            (component, labels)
        })
        .collect()
}

fn policies(objects: &[Object]) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| o.kind() == "NetworkPolicy")
        .map(|o| o.to_json()["spec"].clone())
        .collect()
}

/// Whether `selector`'s matchLabels all hold in `labels` (no expressions here).
fn selects(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| &labels[k] == v)
}

fn has_port(rule: &Value, port: i64) -> bool {
    rule["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["port"] == port)
}

/// Whether a policy of `direction` lets `me` talk to `peer` on `port`; a pod
/// no policy of that direction selects would be unrestricted.
fn allowed(policies: &[Value], direction: &str, me: &Value, peer: &Value, port: i64) -> bool {
    let (rules, peers) = match direction {
        "Ingress" => ("ingress", "from"),
        _ => ("egress", "to"),
    };
    let mine: Vec<_> = policies
        .iter()
        .filter(|p| selects(&p["podSelector"], me))
        .filter(|p| {
            p["policyTypes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == direction)
        })
        .collect();
    mine.is_empty()
        || mine.iter().any(|policy| {
            policy[rules].as_array().into_iter().flatten().any(|rule| {
                let any_peer = rule[peers].is_null();
                let matched = rule[peers].as_array().into_iter().flatten().any(|p| {
                    p["namespaceSelector"].is_null() && selects(&p["podSelector"], peer)
                        || p["namespaceSelector"] == serde_json::json!({})
                });
                has_port(rule, port) && (any_peer || matched)
            })
        })
}

/// Every (client, server, port) the policies allow between the Metr's pods.
fn edges(objects: &[Object]) -> BTreeSet<(String, String, i64)> {
    let (pods, policies) = (pods(objects), policies(objects));
    let ports = [5432, 8080, 9090];
    let mut edges = BTreeSet::new();
    for (from, from_labels) in &pods {
        for (to, to_labels) in &pods {
            for port in ports {
                if allowed(&policies, "Egress", from_labels, to_labels, port)
                    && allowed(&policies, "Ingress", to_labels, from_labels, port)
                {
                    edges.insert((from.clone(), to.clone(), port));
                }
            }
        }
    }
    edges
}

fn edge(from: &str, to: &str, port: i64) -> (String, String, i64) {
    (from.into(), to.into(), port)
}

#[test]
fn only_the_edges_the_system_uses_are_allowed_between_its_pods() {
    let objects = render(&embedded()).unwrap();

    let edges = edges(&objects);

    let expected = BTreeSet::from([
        edge("checker", "postgres", 5432),
        edge("api", "postgres", 5432),
        edge("migrate", "postgres", 5432),
        edge("checker", "gometr", 8080),
        edge("checker", "api", 8080),
    ]);
    assert_eq!(edges, expected);
}

#[test]
fn every_pod_of_the_metr_is_denied_by_default_and_may_resolve_names() {
    for metr in [sample(), embedded()] {
        let objects = render(&metr).unwrap();
        let policies = policies(&objects);
        let deny = policies
            .iter()
            .find(|p| p["ingress"].is_null() && p["egress"].is_null())
            .expect("a default-deny policy");

        for (component, labels) in pods(&objects) {
            assert!(selects(&deny["podSelector"], &labels), "{component}");
            assert_eq!(
                deny["policyTypes"],
                serde_json::json!(["Ingress", "Egress"])
            );
            let dns = policies.iter().any(|p| {
                selects(&p["podSelector"], &labels)
                    && p["egress"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|r| has_port(r, 53))
            });
            assert!(dns, "{component} may resolve names");
        }
    }
}

#[test]
fn an_external_postgres_is_reached_on_its_port_wherever_it_is() {
    let mut metr = sample();
    metr.spec.postgres.port = Some(6543);
    let objects = render(&metr).unwrap();
    let policies = policies(&objects);

    for (component, labels) in pods(&objects) {
        let reaches = policies.iter().any(|p| {
            selects(&p["podSelector"], &labels)
                && p["egress"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| r["to"].is_null() && has_port(r, 6543))
        });
        assert!(reaches, "{component} reaches PostgreSQL on 6543");
    }
}

#[test]
fn the_checker_may_reach_each_target_port_and_no_other() {
    let mut metr = sample();
    metr.spec.targets[0].url = "https://example.com/metrics".into();
    metr.spec.targets[1].url = "http://exporter:9100/metrics".into();
    let objects = render(&metr).unwrap();
    let checker = policies(&objects)
        .into_iter()
        .find(|p| p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "checker")
        .expect("a checker policy");

    let ports: BTreeSet<i64> = checker["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ports"].as_array().unwrap().iter())
        .map(|p| p["port"].as_i64().unwrap())
        .collect();

    assert_eq!(ports, BTreeSet::from([443, 5432, 9100]));
}
