//! The `Metr` custom resource: one metr system (checker, API, migrations,
//! optionally the demo target gometr) against a PostgreSQL reached through a
//! Secret, or one the operator runs beside it.

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
    /// gometr, the demo target: deployed only when enabled.
    #[serde(default)]
    pub gometr: GometrSpec,
    /// The database: an existing PostgreSQL (`secretRef`) or an embedded one.
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
    /// gometr image (used when `gometr.enabled`).
    #[serde(default = "default_gometr_image")]
    pub gometr: String,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            checker: default_checker_image(),
            api: default_api_image(),
            gometr: default_gometr_image(),
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
    /// Samples one scrape of this target may hold, instead of
    /// `checker.sampleLimit`; raises the checker's memory limit with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<i64>,
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
    /// Samples one scrape may hold (the checker's `sample_limit`; default
    /// 200000). The checker's memory request and limit follow from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_limit: Option<i64>,
    /// The checker container's memory limit (a quantity, e.g. `1Gi`) instead
    /// of the one derived from the configuration (its memory bound plus 25 %).
    /// A limit below the bound is refused: the checker would not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
}

impl Default for CheckerSpec {
    fn default() -> Self {
        CheckerSpec {
            replicas: one(),
            interval: default_interval(),
            sample_limit: None,
            memory_limit: None,
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

/// The demo target gometr (Deployment and Service `<metr>-gometr`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GometrSpec {
    /// Deploy gometr; turning it off removes it.
    #[serde(default)]
    pub enabled: bool,
}

/// The PostgreSQL connection: exactly one of `secretRef` and `embedded`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSpec {
    /// Host name of an existing server (default `postgres`); not with `embedded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port of an existing server (default 5432); not with `embedded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Secret with the keys `username`, `password` and `database`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Run PostgreSQL beside the system (StatefulSet `<metr>-postgres`, its
    /// volume, and a generated Secret); its data is deleted with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded: Option<EmbeddedPostgres>,
}

/// A PostgreSQL the operator runs for one `Metr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedPostgres {
    /// PostgreSQL image (an alpine image: the server runs as uid 70).
    #[serde(default = "default_postgres_image")]
    pub image: String,
    /// Size of the data volume (a Kubernetes quantity, e.g. `10Gi`).
    #[serde(default = "default_storage")]
    pub storage: String,
    /// StorageClass of the data volume; the cluster's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

impl Default for EmbeddedPostgres {
    fn default() -> Self {
        EmbeddedPostgres {
            image: default_postgres_image(),
            storage: default_storage(),
            storage_class_name: None,
        }
    }
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
fn default_gometr_image() -> String {
    "metrtest/gometr:dev".into()
}
fn default_postgres_image() -> String {
    "postgres:16-alpine".into()
}
fn default_storage() -> String {
    "10Gi".into()
}
fn default_retention() -> String {
    "15d".into()
}
fn default_interval() -> String {
    "15s".into()
}
fn one() -> i32 {
    1
}
fn two() -> i32 {
    2
}
