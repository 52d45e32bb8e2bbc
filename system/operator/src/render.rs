//! Renders a `Metr` into the Kubernetes objects of `deploy/kubernetes/base`:
//! NetworkPolicies, the checker (config, headless Service, sharded
//! StatefulSet), the migration Job, the API (Deployment, Service,
//! PodDisruptionBudget), and when the spec asks for them an embedded
//! PostgreSQL and the demo target gometr.

mod checker_config;
mod gometr;
mod network;
mod postgres;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet,
    StatefulSetSpec,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecurityContext, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::crd::{EmbeddedPostgres, Metr, MetrSpec};
use crate::memory::{CheckerMemory, quantity};
use crate::object::Object;
use crate::validate::{SpecError, validate};

/// Annotation on the checker's pod template: the hash of its configuration,
/// so a change of targets rolls the checker.
pub const CONFIG_HASH_ANNOTATION: &str = "metr.dev/config-hash";
/// The field manager of the operator's server-side applies.
pub const MANAGER: &str = "metr-operator";

const UID: i64 = 65532;
const CHECKER_PORT: i32 = 9090;
const API_PORT: i32 = 8080;
const GOMETR_PORT: i32 = 8080;
const POSTGRES_PORT: i32 = 5432;

/// Validates `metr` and renders every object it owns, in apply order:
/// the NetworkPolicies first, so that no pod starts unrestricted.
pub fn render(metr: &Metr) -> Result<Vec<Object>, SpecError> {
    validate(&metr.spec)?;
    let ctx = Ctx::new(metr);
    let config = checker_config::file(&ctx);
    let hash = config_hash(&config);
    let memory = checker_config::memory(&ctx, &config)?;
    let mut objects = network::policies(&ctx);
    if let Some(embedded) = &metr.spec.postgres.embedded {
        objects.push(Object::Secret(postgres::secret(&ctx)));
        objects.extend(postgres::objects(&ctx, embedded));
    }
    objects.extend([
        Object::ConfigMap(ctx.config_map(config)),
        Object::Job(ctx.migrate_job()),
        Object::Service(ctx.service("checker", CHECKER_PORT, true)),
        Object::StatefulSet(ctx.checker(&hash, &memory)),
        Object::Service(ctx.service("api", API_PORT, false)),
        Object::Deployment(ctx.api()),
        Object::PodDisruptionBudget(ctx.api_pdb()),
    ]);
    if metr.spec.gometr.enabled {
        objects.extend(gometr::objects(&ctx));
    }
    Ok(objects)
}

/// The objects of the components `metr` does not want (gometr, the embedded
/// PostgreSQL), which an earlier spec may have created: the reconciler
/// deletes those it owns. The generated PostgreSQL Secret is not among them:
/// it stays until the `Metr` goes.
pub fn pruned(metr: &Metr) -> Vec<Object> {
    let ctx = Ctx::new(metr);
    let mut objects = Vec::new();
    if metr.spec.postgres.embedded.is_none() {
        objects.extend(postgres::objects(&ctx, &EmbeddedPostgres::default()));
    }
    if !metr.spec.gometr.enabled {
        objects.extend(gometr::objects(&ctx));
    }
    objects
}

/// What every object of one `Metr` shares: names, labels, owner, spec.
struct Ctx<'a> {
    name: String,
    namespace: Option<String>,
    owner: Option<OwnerReference>,
    spec: &'a MetrSpec,
}

impl<'a> Ctx<'a> {
    fn new(metr: &'a Metr) -> Self {
        Ctx {
            name: metr.name_any(),
            namespace: metr.namespace(),
            owner: metr.controller_owner_ref(&()),
            spec: &metr.spec,
        }
    }

    /// `<metr>-<component>`: several `Metr`s may share a namespace.
    fn object_name(&self, component: &str) -> String {
        format!("{}-{component}", self.name)
    }

    fn selector(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), component.into()),
            ("app.kubernetes.io/instance".into(), self.name.clone()),
        ])
    }

    fn labels(&self, component: &str) -> BTreeMap<String, String> {
        let mut labels = self.selector(component);
        labels.insert("app.kubernetes.io/part-of".into(), "metr".into());
        labels.insert("app.kubernetes.io/managed-by".into(), MANAGER.into());
        labels
    }

    fn meta(&self, component: &str, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: self.namespace.clone(),
            labels: Some(self.labels(component)),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        }
    }

    fn config_map(&self, config: String) -> ConfigMap {
        ConfigMap {
            metadata: self.meta("checker", self.object_name("checker-config")),
            data: Some(BTreeMap::from([("checker.yaml".into(), config)])),
            ..ConfigMap::default()
        }
    }

    fn service(&self, component: &str, port: i32, headless: bool) -> Service {
        let mut metadata = self.meta(component, self.object_name(component));
        metadata.annotations = Some(scrape_annotations(port));
        Service {
            metadata,
            spec: Some(ServiceSpec {
                cluster_ip: headless.then(|| "None".into()),
                selector: Some(self.selector(component)),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port,
                    target_port: Some(IntOrString::String("http".into())),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn checker(&self, config_hash: &str, memory: &CheckerMemory) -> StatefulSet {
        let replicas = self.spec.checker.replicas;
        let image = &self.spec.images.checker;
        // The user's limit as written (checked against the bound), or the derived one.
        let limit = match &self.spec.checker.memory_limit {
            Some(limit) => limit.trim().to_owned(),
            None => quantity(memory.limit),
        };
        let request = quantity(memory.request);
        // The checker reads `<pod>-I/N` and takes I from the pod name's ordinal.
        let shard = value("CHECKER_SHARD", format!("$(POD_NAME)/{replicas}"));
        let mut env = vec![pod_name_env(), shard];
        env.extend(self.database_env("CHECKER_DATABASE_URL"));
        env.push(value("CHECKER_CONFIG", "/etc/checker/checker.yaml".into()));
        // The checker refuses to start, even to migrate, when its memory bound
        // exceeds its limit: the init container runs it with the same shard
        // and memory (an init container's request adds nothing to the pod's,
        // which is the larger of it and the containers').
        let wait = Container {
            name: "wait-for-schema".into(),
            args: Some(vec!["migrate".into()]),
            resources: Some(resources(("50m", &request), ("500m", &limit))),
            ..self.container(image, env.clone())
        };
        let checker = Container {
            name: "checker".into(),
            ports: Some(vec![http_port(CHECKER_PORT)]),
            readiness_probe: Some(probe(5, None)),
            // /health fails while the database is away and the writer buffers
            // through such outages: restart only after five minutes of failing.
            liveness_probe: Some(probe(10, Some(30))),
            resources: Some(resources(("100m", &request), ("1", &limit))),
            ..self.container(image, env)
        };
        let mut template = self.pod_template("checker", vec![checker], vec![wait]);
        template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(CONFIG_HASH_ANNOTATION.into(), config_hash.into());
        if let Some(spec) = template.spec.as_mut() {
            // Leaves the writer its shutdown timeout (10s) to flush on SIGTERM.
            spec.termination_grace_period_seconds = Some(30);
            spec.volumes = Some(vec![Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: self.object_name("checker-config"),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            }]);
            for container in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                container.volume_mounts = Some(vec![VolumeMount {
                    name: "config".into(),
                    mount_path: "/etc/checker".into(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                }]);
            }
        }
        StatefulSet {
            metadata: self.meta("checker", self.object_name("checker")),
            spec: Some(StatefulSetSpec {
                service_name: Some(self.object_name("checker")),
                replicas: Some(replicas),
                // Shards do not depend on each other: start and stop them together.
                pod_management_policy: Some("Parallel".into()),
                selector: self.label_selector("checker"),
                template,
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }
    }

    fn migrate_job(&self) -> Job {
        let migrate = Container {
            name: "migrate".into(),
            args: Some(vec!["migrate".into()]),
            resources: Some(resources(("50m", "32Mi"), ("500m", "128Mi"))),
            ..self.container(&self.spec.images.api, self.database_env("API_DATABASE_URL"))
        };
        let mut template = self.pod_template("migrate", vec![migrate], vec![]);
        if let Some(spec) = template.spec.as_mut() {
            spec.restart_policy = Some("OnFailure".into());
        }
        // No ttlSecondsAfterFinished: the operator would recreate a reaped Job.
        Job {
            metadata: self.meta("migrate", self.object_name("migrate")),
            spec: Some(JobSpec {
                backoff_limit: Some(6),
                template,
                ..JobSpec::default()
            }),
            ..Job::default()
        }
    }

    fn api(&self) -> Deployment {
        let image = &self.spec.images.api;
        let database = self.database_env("API_DATABASE_URL");
        let wait = Container {
            name: "wait-for-schema".into(),
            args: Some(vec!["migrate".into()]),
            resources: Some(resources(("50m", "32Mi"), ("500m", "128Mi"))),
            ..self.container(image, database.clone())
        };
        let mut env = database;
        env.push(value("API_LISTEN", format!("0.0.0.0:{API_PORT}")));
        let api = Container {
            name: "api".into(),
            ports: Some(vec![http_port(API_PORT)]),
            readiness_probe: Some(probe(5, None)),
            liveness_probe: Some(probe(10, Some(30))),
            resources: Some(resources(("100m", "64Mi"), ("1", "256Mi"))),
            ..self.container(image, env)
        };
        Deployment {
            metadata: self.meta("api", self.object_name("api")),
            spec: Some(DeploymentSpec {
                replicas: Some(self.spec.api.replicas),
                selector: self.label_selector("api"),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString::Int(0)),
                        max_surge: Some(IntOrString::Int(1)),
                    }),
                }),
                template: self.pod_template("api", vec![api], vec![wait]),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn api_pdb(&self) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: self.meta("api", self.object_name("api")),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(self.label_selector("api")),
                ..PodDisruptionBudgetSpec::default()
            }),
            ..PodDisruptionBudget::default()
        }
    }

    fn label_selector(&self, component: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(self.selector(component)),
            ..LabelSelector::default()
        }
    }

    fn pod_template(
        &self,
        component: &str,
        containers: Vec<Container>,
        init_containers: Vec<Container>,
    ) -> PodTemplateSpec {
        let mut metadata = ObjectMeta {
            labels: Some(self.labels(component)),
            ..ObjectMeta::default()
        };
        if let Some(port) = containers
            .first()
            .and_then(|c| c.ports.as_ref())
            .and_then(|p| p.first())
        {
            metadata.annotations = Some(scrape_annotations(port.container_port));
        }
        PodTemplateSpec {
            metadata: Some(metadata),
            spec: Some(PodSpec {
                automount_service_account_token: Some(false),
                security_context: Some(PodSecurityContext {
                    run_as_non_root: Some(true),
                    run_as_user: Some(UID),
                    run_as_group: Some(UID),
                    seccomp_profile: Some(runtime_default()),
                    ..PodSecurityContext::default()
                }),
                init_containers: (!init_containers.is_empty()).then_some(init_containers),
                containers,
                ..PodSpec::default()
            }),
        }
    }

    /// A container with the image, the shared environment and the hardened
    /// security context; callers fill in the name and the rest.
    fn container(&self, image: &str, env: Vec<EnvVar>) -> Container {
        let mut all = vec![
            value("LOG_FORMAT", "json".into()),
            value("RUST_LOG", "info".into()),
        ];
        all.extend(env);
        Container {
            image: Some(image.into()),
            image_pull_policy: Some("IfNotPresent".into()),
            env: Some(all),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".into()]),
                    ..Capabilities::default()
                }),
                seccomp_profile: Some(runtime_default()),
                ..SecurityContext::default()
            }),
            ..Container::default()
        }
    }

    /// The credentials from the Secret, then `url_var` built from them.
    fn database_env(&self, url_var: &str) -> Vec<EnvVar> {
        let secret = self.postgres_secret();
        let (host, port) = self.postgres_address();
        vec![
            from_secret("DB_USER", &secret, "username"),
            from_secret("DB_PASSWORD", &secret, "password"),
            from_secret("DB_NAME", &secret, "database"),
            value(
                url_var,
                format!("postgres://$(DB_USER):$(DB_PASSWORD)@{host}:{port}/$(DB_NAME)"),
            ),
        ]
    }

    /// The Secret with the credentials: the referenced one, or the generated one.
    fn postgres_secret(&self) -> String {
        match &self.spec.postgres.secret_ref {
            Some(secret) => secret.name.clone(),
            None => self.object_name("postgres"),
        }
    }

    /// Host and port of the server: the given ones, or the embedded Service.
    fn postgres_address(&self) -> (String, i32) {
        let postgres = &self.spec.postgres;
        if postgres.embedded.is_some() {
            return (self.object_name("postgres"), POSTGRES_PORT);
        }
        let host = postgres.host.clone().unwrap_or_else(|| "postgres".into());
        (host, postgres.port.unwrap_or(POSTGRES_PORT))
    }
}

/// `POD_NAME`: the pod's own name, through the downward API.
fn pod_name_env() -> EnvVar {
    EnvVar {
        name: "POD_NAME".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "metadata.name".into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// `name` from `key` of the Secret `secret`.
fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// A short stable hash (FNV-1a, 64 bits) of the configuration; it only has
/// to change when the text changes, and stay the same across operator builds.
fn config_hash(config: &str) -> String {
    let hash = config.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

fn value(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    }
}

fn http_port(port: i32) -> ContainerPort {
    ContainerPort {
        name: Some("http".into()),
        container_port: port,
        ..ContainerPort::default()
    }
}

fn probe(period: i32, failure_threshold: Option<i32>) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/health".into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold,
        ..Probe::default()
    }
}

fn resources(requests: (&str, &str), limits: (&str, &str)) -> ResourceRequirements {
    let pair = |(cpu, memory): (&str, &str)| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.into())),
            ("memory".to_owned(), Quantity(memory.into())),
        ])
    };
    ResourceRequirements {
        requests: Some(pair(requests)),
        limits: Some(pair(limits)),
        ..ResourceRequirements::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..SeccompProfile::default()
    }
}

fn scrape_annotations(port: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("prometheus.io/scrape".into(), "true".into()),
        ("prometheus.io/port".into(), port.to_string()),
        ("prometheus.io/path".into(), "/metrics".into()),
    ])
}
