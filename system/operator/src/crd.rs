//! The `Metr` custom resource: one metr system (checker, API, migrations)
//! against a PostgreSQL reached through a Secret.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The desired metr system.
//
// Replicas are signed and durations are text so that a bad value reaches
// `validate` and becomes a `Degraded` condition naming the field, rather than
// a rejection by the API server that only the `kubectl apply` user sees.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "metr.dev",
    version = "v1alpha1",
    kind = "Metr",
    namespaced,
    status = "MetrStatus",
    shortname = "metr",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct MetrSpec {
    /// Images of the services (as `metrtest images` builds them).
    #[serde(default)]
    pub images: Images,
    /// What the checker checks; names must be unique.
    pub targets: Vec<Target>,
    /// The checker: a StatefulSet whose replicas share the targets.
    #[serde(default)]
    pub checker: CheckerSpec,
    /// The API: a Deployment behind a Service.
    #[serde(default)]
    pub api: ApiSpec,
    /// How long samples are kept (humantime, at least `1h`).
    #[serde(default = "default_retention")]
    pub retention: String,
    /// Where PostgreSQL is and which Secret holds its credentials.
    pub postgres: PostgresSpec,
}

/// Images of the services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Images {
    /// Checker image; its `migrate` subcommand waits for the schema.
    #[serde(default = "default_checker_image")]
    pub checker: String,
    /// API image; also runs the migration Job.
    #[serde(default = "default_api_image")]
    pub api: String,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            checker: default_checker_image(),
            api: default_api_image(),
        }
    }
}

/// One target of the checker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Unique name; the checker shards on it.
    pub name: String,
    /// `prometheus` (scrape the exposition) or `http` (probe the URL).
    pub kind: TargetKind,
    /// What is scraped or probed.
    pub url: String,
    /// Labels added to every sample of this target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How a target is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// Scrape a Prometheus exposition.
    Prometheus,
    /// Probe the URL and record up/down and latency.
    Http,
}

/// The checker's size and schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckerSpec {
    /// Shards; each replica checks its share of the targets.
    #[serde(default = "one")]
    pub replicas: i32,
    /// Time between two checks of a target (humantime, e.g. `15s`).
    #[serde(default = "default_interval")]
    pub interval: String,
}

impl Default for CheckerSpec {
    fn default() -> Self {
        CheckerSpec {
            replicas: one(),
            interval: default_interval(),
        }
    }
}

/// The API's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiSpec {
    /// API pods behind the Service.
    #[serde(default = "two")]
    pub replicas: i32,
}

impl Default for ApiSpec {
    fn default() -> Self {
        ApiSpec { replicas: two() }
    }
}

/// The PostgreSQL connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSpec {
    /// Host name of the server (a Service in the cluster, or outside it).
    #[serde(default = "default_host")]
    pub host: String,
    /// Port of the server.
    #[serde(default = "default_port")]
    pub port: i32,
    /// Secret with the keys `username`, `password` and `database`.
    pub secret_ref: Option<SecretRef>,
}

/// A Secret in the Metr's namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// Name of the Secret.
    pub name: String,
}

/// What the operator last observed and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetrStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing` and `Degraded`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

fn default_checker_image() -> String {
    "metrtest/checker:dev".into()
}
fn default_api_image() -> String {
    "metrtest/api:dev".into()
}
fn default_retention() -> String {
    "15d".into()
}
fn default_interval() -> String {
    "15s".into()
}
fn default_host() -> String {
    "postgres".into()
}
fn default_port() -> i32 {
    5432
}
fn one() -> i32 {
    1
}
fn two() -> i32 {
    2
}
