//! The controller: renders a `Metr`, applies what it owns server-side, and
//! reports the outcome in the status.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crd::{Metr, MetrStatus};
use crate::object::Object;
use crate::render::{MANAGER, pruned, render};
use crate::retry::Failures;
use crate::status::{Health, status};
use crate::telemetry::Metrics;

/// A reconcile that could not finish; the controller retries it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the Metr has no namespace")]
    NoNamespace,
    #[error("read Secret {name}: {source}")]
    ReadSecret { name: String, source: kube::Error },
    #[error("apply {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("create {kind} {name}: {source}")]
    Create {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("delete {kind} {name}, which the spec no longer asks for: {source}")]
    Prune {
        kind: &'static str,
        name: String,
        source: kube::Error,
    },
    #[error("update the status of Metr {name}: {source}")]
    Status { name: String, source: kube::Error },
}

/// What reconciles share.
pub struct Context {
    /// The API server.
    pub client: Client,
    /// Counters exported on `/metrics`.
    pub metrics: Metrics,
    /// Consecutive failures per `Metr`, for the back-off.
    pub failures: Failures,
}

impl Context {
    /// A context with no failures counted yet.
    pub fn new(client: Client, metrics: Metrics) -> Self {
        Context {
            client,
            metrics,
            failures: Failures::default(),
        }
    }
}

/// How often a settled `Metr` is looked at again without any event.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a rollout or a missing Secret is looked at again.
const SOON: Duration = Duration::from_secs(10);

/// Brings the cluster in line with one `Metr`.
pub async fn reconcile(metr: Arc<Metr>, ctx: Arc<Context>) -> Result<Action, Error> {
    let outcome = reconcile_inner(&metr, &ctx).await;
    let label = match &outcome {
        Ok((_, health)) => {
            ctx.failures.succeeded(&metr);
            health.outcome()
        }
        Err(_) => "error",
    };
    ctx.metrics.reconciled(label);
    outcome.map(|(action, _)| action)
}

async fn reconcile_inner(metr: &Metr, ctx: &Context) -> Result<(Action, Health), Error> {
    if metr.meta().deletion_timestamp.is_some() {
        // Every object carries an owner reference: the garbage collector removes them.
        return Ok((Action::await_change(), Health::Deleting));
    }
    let namespace = metr.namespace().ok_or(Error::NoNamespace)?;
    let objects = match render(metr) {
        Ok(objects) => objects,
        Err(invalid) => {
            let health = Health::InvalidSpec(invalid.to_string());
            write_status(&ctx.client, metr, &health).await?;
            // Only a new spec can fix it, and a new spec is a change.
            return Ok((Action::await_change(), health));
        }
    };
    if let Some(missing) = missing_secret(&ctx.client, metr, &namespace).await? {
        let health = Health::SecretNotFound(missing);
        write_status(&ctx.client, metr, &health).await?;
        return Ok((Action::requeue(SOON), health));
    }
    let mut waiting = Vec::new();
    for object in &objects {
        match apply(&ctx.client, &namespace, object).await {
            Ok(Some(rolling)) => waiting.push(rolling),
            Ok(None) => {}
            Err(failed) => {
                write_status(&ctx.client, metr, &Health::ApplyFailed(failed.to_string())).await?;
                return Err(failed);
            }
        }
    }
    for object in &pruned(metr) {
        if let Err(failed) = prune(&ctx.client, &namespace, metr, object).await {
            write_status(&ctx.client, metr, &Health::ApplyFailed(failed.to_string())).await?;
            return Err(failed);
        }
    }
    let (health, next) = if waiting.is_empty() {
        (Health::Available, RESYNC)
    } else {
        (Health::RollingOut(waiting.join("; ")), SOON)
    };
    write_status(&ctx.client, metr, &health).await?;
    Ok((Action::requeue(next), health))
}

/// Requeues a failed reconcile after a pause that grows while it keeps
/// failing, so a broken API server is not hammered.
pub fn error_policy(metr: Arc<Metr>, error: &Error, ctx: Arc<Context>) -> Action {
    let pause = ctx.failures.failed(&metr);
    tracing::debug!(metr = %metr.name_any(), %error, ?pause, "retrying after a pause");
    Action::requeue(pause)
}

/// The controller: every `Metr`, and the owned kinds whose changes (a
/// StatefulSet or Deployment rolling, a ConfigMap edited by hand) call for
/// another reconcile of their owner.
pub fn controller(client: &Client) -> Controller<Metr> {
    let metrs = Api::<Metr>::all(client.clone());
    // Owned objects carry this label: the watches skip every other object.
    let owned =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    Controller::new(metrs, watcher::Config::default())
        .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
        .owns(Api::<Deployment>::all(client.clone()), owned.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), owned)
}

/// Runs the controller until the stream of `Metr` events ends.
pub async fn run(client: Client, metrics: Metrics) {
    controller(&client)
        .shutdown_on_signal()
        .run(
            reconcile,
            error_policy,
            Arc::new(Context::new(client, metrics)),
        )
        .for_each(|outcome| async move {
            match outcome {
                Ok((object, _)) => tracing::debug!(metr = %object.name, "reconciled"),
                Err(error) => tracing::warn!(%error, "reconcile failed"),
            }
        })
        .await;
}

/// The message for a Secret that does not exist, or `None` if it does.
async fn missing_secret(
    client: &Client,
    metr: &Metr,
    namespace: &str,
) -> Result<Option<String>, Error> {
    let Some(secret) = metr.spec.postgres.secret_ref.as_ref() else {
        return Ok(None);
    };
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    // Only the metadata: the operator has no business reading the password.
    match secrets.get_metadata_opt(&secret.name).await {
        Ok(Some(_)) => Ok(None),
        Ok(None) => Ok(Some(format!(
            "spec.postgres.secretRef: Secret {:?} not found in namespace {namespace:?}",
            secret.name
        ))),
        Err(source) => Err(Error::ReadSecret {
            name: secret.name.clone(),
            source,
        }),
    }
}

/// Applies one object; returns what is still rolling out, if anything.
async fn apply(client: &Client, namespace: &str, object: &Object) -> Result<Option<String>, Error> {
    let applied = match object {
        Object::ConfigMap(o) => apply_typed(client, namespace, o).await.map(|_| None),
        Object::Service(o) => apply_typed(client, namespace, o).await.map(|_| None),
        Object::Job(o) => apply_typed(client, namespace, o).await.map(|_| None),
        Object::PodDisruptionBudget(o) => apply_typed(client, namespace, o).await.map(|_| None),
        Object::NetworkPolicy(o) => apply_typed(client, namespace, o).await.map(|_| None),
        Object::Secret(o) => {
            return create_once(client, namespace, o)
                .await
                .map(|()| None)
                .map_err(|source| Error::Create {
                    kind: object.kind(),
                    name: object.name(),
                    source,
                });
        }
        Object::StatefulSet(o) => apply_typed(client, namespace, o)
            .await
            .map(|s| statefulset_rolling(&s)),
        Object::Deployment(o) => apply_typed(client, namespace, o)
            .await
            .map(|d| deployment_rolling(&d)),
    };
    applied.map_err(|source| Error::Apply {
        kind: object.kind(),
        name: object.name(),
        source,
    })
}

/// A namespaced object of a kind known at compile time, as the typed `Api` needs.
trait Namespaced:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
{
}

impl<K> Namespaced for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
{
}

async fn apply_typed<K: Namespaced>(
    client: &Client,
    namespace: &str,
    object: &K,
) -> Result<K, kube::Error> {
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(MANAGER).force();
    api.patch(&object.name_any(), &params, &Patch::Apply(object))
        .await
}

/// Creates `object` unless it exists; an existing one is left as it is.
async fn create_once<K: Namespaced>(
    client: &Client,
    namespace: &str,
    object: &K,
) -> Result<(), kube::Error> {
    let api = Api::<K>::namespaced(client.clone(), namespace);
    if api.get_metadata_opt(&object.name_any()).await?.is_some() {
        return Ok(());
    }
    let params = PostParams {
        field_manager: Some(MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&params, object).await {
        Ok(_) => Ok(()),
        // Created meanwhile (by another operator replica): the same outcome.
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

/// Deletes `object` if it exists and this `Metr` controls it: an object of
/// the same name that someone else made is not the operator's to remove.
async fn prune(
    client: &Client,
    namespace: &str,
    metr: &Metr,
    object: &Object,
) -> Result<(), Error> {
    let name = object.name();
    let pruned = match object {
        Object::ConfigMap(_) => prune_typed::<ConfigMap>(client, namespace, metr, &name).await,
        Object::Service(_) => prune_typed::<Service>(client, namespace, metr, &name).await,
        Object::StatefulSet(_) => prune_typed::<StatefulSet>(client, namespace, metr, &name).await,
        Object::Deployment(_) => prune_typed::<Deployment>(client, namespace, metr, &name).await,
        Object::Job(_) => prune_typed::<Job>(client, namespace, metr, &name).await,
        Object::PodDisruptionBudget(_) => {
            prune_typed::<PodDisruptionBudget>(client, namespace, metr, &name).await
        }
        Object::NetworkPolicy(_) => {
            prune_typed::<NetworkPolicy>(client, namespace, metr, &name).await
        }
        Object::Secret(_) => prune_typed::<Secret>(client, namespace, metr, &name).await,
    };
    pruned.map_err(|source| Error::Prune {
        kind: object.kind(),
        name,
        source,
    })
}

async fn prune_typed<K: Namespaced>(
    client: &Client,
    namespace: &str,
    metr: &Metr,
    name: &str,
) -> Result<(), kube::Error> {
    let api = Api::<K>::namespaced(client.clone(), namespace);
    let Some(existing) = api.get_metadata_opt(name).await? else {
        return Ok(());
    };
    let ours = existing
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == metr.meta().uid.as_ref());
    let Some(uid) = existing.metadata.uid.filter(|_| ours) else {
        return Ok(());
    };
    // The precondition: never delete a same-named object created since the get.
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}

fn statefulset_rolling(set: &StatefulSet) -> Option<String> {
    let want = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = set.status.clone().unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or(0);
    let current = status.observed_generation == set.metadata.generation
        && status.updated_replicas.unwrap_or(0) >= want;
    (ready < want || !current)
        .then(|| format!("StatefulSet {}: {ready}/{want} ready", set.name_any()))
}

fn deployment_rolling(deployment: &Deployment) -> Option<String> {
    let want = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let available = status.available_replicas.unwrap_or(0);
    let current = status.observed_generation == deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) >= want;
    (available < want || !current).then(|| {
        format!(
            "Deployment {}: {available}/{want} available",
            deployment.name_any()
        )
    })
}

async fn write_status(client: &Client, metr: &Metr, health: &Health) -> Result<(), Error> {
    let Some(namespace) = metr.namespace() else {
        return Err(Error::NoNamespace);
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let status: MetrStatus = status(metr.status.as_ref(), health, metr.meta().generation, now);
    let patch = serde_json::json!({
        "apiVersion": Metr::api_version(&()),
        "kind": Metr::kind(&()),
        "status": status,
    });
    let api = Api::<Metr>::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply(MANAGER).force();
    api.patch_status(&metr.name_any(), &params, &Patch::Apply(&patch))
        .await
        .map(|_| ())
        .map_err(|source| Error::Status {
            name: metr.name_any(),
            source,
        })
}
