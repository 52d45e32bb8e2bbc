//! An embedded PostgreSQL: a generated Secret, a headless Service, a
//! one-replica StatefulSet with its volume, and the policy that lets only the
//! checker, the API and the migration Job reach it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, ExecAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, Probe, Secret, Service, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use rand::Rng as _;
use rand::distr::Alphanumeric;

use super::network::{self, Peer};
use super::{Ctx, POSTGRES_PORT, from_secret, resources, runtime_default, value};
use crate::crd::EmbeddedPostgres;
use crate::object::Object;

/// The user and database of an embedded server.
const USER: &str = "metr";
/// The postgres user of the official alpine image.
const POSTGRES_UID: i64 = 70;

/// The Secret the embedded server and its clients share, with a fresh random
/// password: the reconciler creates it once and never overwrites it.
pub(super) fn secret(ctx: &Ctx) -> Secret {
    // Alphanumeric: the password goes into the services' database URLs.
    let password: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    Secret {
        metadata: ctx.meta("postgres", ctx.object_name("postgres")),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([
            ("username".into(), USER.into()),
            ("password".into(), password),
            ("database".into(), USER.into()),
        ])),
        ..Secret::default()
    }
}

/// The NetworkPolicy, the Service and the StatefulSet of the server.
pub(super) fn objects(ctx: &Ctx, embedded: &EmbeddedPostgres) -> Vec<Object> {
    let clients = [
        Peer::Component("checker"),
        Peer::Component("api"),
        Peer::Component("migrate"),
    ];
    vec![
        Object::NetworkPolicy(network::ingress(ctx, "postgres", POSTGRES_PORT, &clients)),
        Object::Service(service(ctx)),
        Object::StatefulSet(statefulset(ctx, embedded)),
    ]
}

fn service(ctx: &Ctx) -> Service {
    let mut service = ctx.service("postgres", POSTGRES_PORT, true);
    // PostgreSQL has no /metrics.
    service.metadata.annotations = None;
    for port in service
        .spec
        .iter_mut()
        .flat_map(|s| s.ports.iter_mut().flatten())
    {
        port.name = Some("postgres".into());
        port.target_port = Some(IntOrString::String("postgres".into()));
    }
    service
}

fn statefulset(ctx: &Ctx, embedded: &EmbeddedPostgres) -> StatefulSet {
    let secret = ctx.object_name("postgres");
    let env = vec![
        from_secret("POSTGRES_USER", &secret, "username"),
        from_secret("POSTGRES_PASSWORD", &secret, "password"),
        from_secret("POSTGRES_DB", &secret, "database"),
        // A subdirectory: the volume's root belongs to root and holds lost+found.
        value("PGDATA", "/var/lib/postgresql/data/pgdata".into()),
    ];
    let ready = |period, delay, failures| Probe {
        exec: Some(ExecAction {
            command: Some(
                ["pg_isready", "-h", "127.0.0.1", "-U", USER]
                    .map(Into::into)
                    .to_vec(),
            ),
        }),
        period_seconds: Some(period),
        initial_delay_seconds: delay,
        failure_threshold: failures,
        ..Probe::default()
    };
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    };
    let postgres = Container {
        name: "postgres".into(),
        env: Some(env),
        ports: Some(vec![ContainerPort {
            name: Some("postgres".into()),
            container_port: POSTGRES_PORT,
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(ready(5, None, None)),
        liveness_probe: Some(ready(10, Some(30), Some(6))),
        resources: Some(resources(("250m", "256Mi"), ("1", "1Gi"))),
        volume_mounts: Some(vec![
            mount("data", "/var/lib/postgresql/data"),
            mount("run", "/var/run/postgresql"),
            mount("tmp", "/tmp"),
        ]),
        ..ctx.container(&embedded.image, Vec::new())
    };
    let mut template = ctx.pod_template("postgres", vec![postgres], vec![]);
    if let Some(metadata) = template.metadata.as_mut() {
        metadata.annotations = None;
    }
    if let Some(pod) = template.spec.as_mut() {
        pod.security_context = Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(POSTGRES_UID),
            run_as_group: Some(POSTGRES_UID),
            fs_group: Some(POSTGRES_UID),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        });
        let empty = |name: &str| Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        };
        pod.volumes = Some(vec![empty("run"), empty("tmp")]);
    }
    StatefulSet {
        metadata: ctx.meta("postgres", ctx.object_name("postgres")),
        spec: Some(StatefulSetSpec {
            service_name: Some(ctx.object_name("postgres")),
            replicas: Some(1),
            selector: ctx.label_selector("postgres"),
            template,
            volume_claim_templates: Some(vec![claim(embedded)]),
            // The data belongs to this Metr: it goes when the Metr (or the
            // embedded option) goes.
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Delete".into()),
                    when_scaled: Some("Retain".into()),
                },
            ),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

fn claim(embedded: &EmbeddedPostgres) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: embedded.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(embedded.storage.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}
