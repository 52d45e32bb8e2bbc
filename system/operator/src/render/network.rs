//! NetworkPolicies: deny everything to and from the `Metr`'s pods, then
//! allow only the edges the system uses, as `deploy/kubernetes/base` does:
//!
//! - checker, api, migrate -> PostgreSQL (the embedded pods, or any address on
//!   the external server's port: the operator cannot know where it is)
//! - checker -> its targets' ports (targets are URLs, possibly outside)
//! - clients (any namespace) -> api; Prometheus (a namespace labelled
//!   `metr.dev/prometheus=true`) -> checker, api, gometr; checker -> gometr
//! - every pod -> DNS in kube-system
//!
//! The embedded PostgreSQL's and gometr's ingress policies are rendered with
//! them (see `postgres.rs`, `gometr.rs`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{API_PORT, CHECKER_PORT, Ctx, MANAGER};
use crate::object::Object;

/// The namespace label that lets a Prometheus scrape the services.
pub const PROMETHEUS_NAMESPACE_LABEL: &str = "metr.dev/prometheus";

/// Who may connect.
pub(super) enum Peer {
    /// Pods of one component of the same `Metr`.
    Component(&'static str),
    /// Pods in a namespace labelled for Prometheus.
    Prometheus,
    /// Any pod in any namespace.
    Anyone,
}

/// The policies of every `Metr` pod and of the checker, API and migration Job.
pub(super) fn policies(ctx: &Ctx) -> Vec<Object> {
    let everyone = Some(instance_selector(ctx));
    let deny = NetworkPolicy {
        metadata: ctx.meta("network", ctx.object_name("default-deny")),
        spec: Some(NetworkPolicySpec {
            pod_selector: everyone.clone(),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ..NetworkPolicySpec::default()
        }),
    };
    let kube_system = NetworkPolicyPeer {
        namespace_selector: Some(labels([("kubernetes.io/metadata.name", "kube-system")])),
        ..NetworkPolicyPeer::default()
    };
    let dns = NetworkPolicy {
        metadata: ctx.meta("network", ctx.object_name("dns")),
        spec: Some(NetworkPolicySpec {
            pod_selector: everyone,
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![kube_system]),
                ports: Some(vec![port("UDP", 53), port("TCP", 53)]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    };
    let mut checker_egress = vec![postgres_egress(ctx)];
    let target_ports: Vec<_> = target_ports(ctx)
        .into_iter()
        .map(|p| port("TCP", p))
        .collect();
    if !target_ports.is_empty() {
        checker_egress.push(NetworkPolicyEgressRule {
            to: None,
            ports: Some(target_ports),
        });
    }
    let checker = with_egress(
        ingress(ctx, "checker", CHECKER_PORT, &[Peer::Prometheus]),
        checker_egress,
    );
    let api = with_egress(
        ingress(ctx, "api", API_PORT, &[Peer::Anyone]),
        vec![postgres_egress(ctx)],
    );
    let migrate = NetworkPolicy {
        metadata: ctx.meta("migrate", ctx.object_name("migrate")),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(ctx.label_selector("migrate")),
            policy_types: Some(vec!["Egress".into()]),
            egress: Some(vec![postgres_egress(ctx)]),
            ..NetworkPolicySpec::default()
        }),
    };
    [deny, dns, checker, api, migrate]
        .into_iter()
        .map(Object::NetworkPolicy)
        .collect()
}

/// A policy named after `component` that lets `from` reach its `port`.
pub(super) fn ingress(ctx: &Ctx, component: &str, port: i32, from: &[Peer]) -> NetworkPolicy {
    let peers = from.iter().map(|peer| peer_of(ctx, peer)).collect();
    NetworkPolicy {
        metadata: ctx.meta(component, ctx.object_name(component)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(ctx.label_selector(component)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(peers),
                ports: Some(vec![self::port("TCP", port)]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    }
}

fn with_egress(mut policy: NetworkPolicy, egress: Vec<NetworkPolicyEgressRule>) -> NetworkPolicy {
    if let Some(spec) = policy.spec.as_mut() {
        spec.policy_types = Some(vec!["Ingress".into(), "Egress".into()]);
        spec.egress = Some(egress);
    }
    policy
}

fn peer_of(ctx: &Ctx, peer: &Peer) -> NetworkPolicyPeer {
    match peer {
        Peer::Component(component) => NetworkPolicyPeer {
            pod_selector: Some(ctx.label_selector(component)),
            ..NetworkPolicyPeer::default()
        },
        Peer::Prometheus => NetworkPolicyPeer {
            namespace_selector: Some(labels([(PROMETHEUS_NAMESPACE_LABEL, "true")])),
            ..NetworkPolicyPeer::default()
        },
        Peer::Anyone => NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector::default()),
            ..NetworkPolicyPeer::default()
        },
    }
}

/// To the embedded server's pods, or to the external server's port anywhere.
fn postgres_egress(ctx: &Ctx) -> NetworkPolicyEgressRule {
    let (_, port) = ctx.postgres_address();
    let to = ctx.spec.postgres.embedded.as_ref().map(|_| {
        vec![NetworkPolicyPeer {
            pod_selector: Some(ctx.label_selector("postgres")),
            ..NetworkPolicyPeer::default()
        }]
    });
    NetworkPolicyEgressRule {
        to,
        ports: Some(vec![self::port("TCP", port)]),
    }
}

/// The ports of the targets' URLs (80 and 443 when a URL names none).
fn target_ports(ctx: &Ctx) -> BTreeSet<i32> {
    ctx.spec
        .targets
        .iter()
        .filter_map(|t| url::Url::parse(&t.url).ok()?.port_or_known_default())
        .map(i32::from)
        .collect()
}

/// Every pod of this `Metr` that the operator manages.
fn instance_selector(ctx: &Ctx) -> LabelSelector {
    labels([
        ("app.kubernetes.io/instance", ctx.name.as_str()),
        ("app.kubernetes.io/managed-by", MANAGER),
    ])
}

fn labels<const N: usize>(pairs: [(&str, &str); N]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..LabelSelector::default()
    }
}

fn port(protocol: &str, port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(port)),
        ..NetworkPolicyPort::default()
    }
}
