//! gometr, the demo target: a Deployment, its Service and the policy that
//! lets only the checker and Prometheus reach it.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::Container;

use super::network::{self, Peer};
use super::{Ctx, GOMETR_PORT, http_port, probe, resources, value};
use crate::object::Object;

/// The Deployment, the Service and the NetworkPolicy of gometr.
pub(super) fn objects(ctx: &Ctx) -> Vec<Object> {
    let ingress = [Peer::Component("checker"), Peer::Prometheus];
    vec![
        Object::NetworkPolicy(network::ingress(ctx, "gometr", GOMETR_PORT, &ingress)),
        Object::Service(ctx.service("gometr", GOMETR_PORT, false)),
        Object::Deployment(deployment(ctx)),
    ]
}

fn deployment(ctx: &Ctx) -> Deployment {
    let env = vec![value("GOMETR_LISTEN", format!("0.0.0.0:{GOMETR_PORT}"))];
    let gometr = Container {
        name: "gometr".into(),
        ports: Some(vec![http_port(GOMETR_PORT)]),
        readiness_probe: Some(probe(5, None)),
        // gometr's health can be failed on purpose through /control; a
        // restart is what a failing liveness probe is for.
        liveness_probe: Some(probe(10, Some(3))),
        resources: Some(resources(("50m", "16Mi"), ("500m", "64Mi"))),
        ..ctx.container(&ctx.spec.images.gometr, env)
    };
    Deployment {
        metadata: ctx.meta("gometr", ctx.object_name("gometr")),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: ctx.label_selector("gometr"),
            template: ctx.pod_template("gometr", vec![gometr], vec![]),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}
