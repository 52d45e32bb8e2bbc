//! One rendered object, typed, so it can be applied through its own `Api`.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;

/// An object the operator renders and applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    ConfigMap(ConfigMap),
    Service(Service),
    StatefulSet(StatefulSet),
    Deployment(Deployment),
    Job(Job),
    PodDisruptionBudget(PodDisruptionBudget),
    NetworkPolicy(NetworkPolicy),
    /// Created once and never updated: it holds a generated password.
    Secret(Secret),
}

impl Object {
    /// The object's kind, e.g. `StatefulSet`.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::ConfigMap(_) => "ConfigMap",
            Object::Service(_) => "Service",
            Object::StatefulSet(_) => "StatefulSet",
            Object::Deployment(_) => "Deployment",
            Object::Job(_) => "Job",
            Object::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::Secret(_) => "Secret",
        }
    }

    /// The object's name.
    pub fn name(&self) -> String {
        match self {
            Object::ConfigMap(o) => o.name_any(),
            Object::Service(o) => o.name_any(),
            Object::StatefulSet(o) => o.name_any(),
            Object::Deployment(o) => o.name_any(),
            Object::Job(o) => o.name_any(),
            Object::PodDisruptionBudget(o) => o.name_any(),
            Object::NetworkPolicy(o) => o.name_any(),
            Object::Secret(o) => o.name_any(),
        }
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::StatefulSet(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::Job(o) => serde_json::to_value(o),
            Object::PodDisruptionBudget(o) => serde_json::to_value(o),
            Object::NetworkPolicy(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
        };
        // k8s-openapi's types always serialize; a failure would be a bug there.
        value.unwrap_or(serde_json::Value::Null)
    }
}
