//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several
//! operator replicas only one reconciles.
//!
//! The protocol is client-go's `leaderelection`: the holder renews the Lease
//! every few seconds; a candidate takes it over only once it has seen the
//! same record, unchanged, for the whole lease duration by its own clock (so
//! clock skew between nodes does not matter), and every write carries the
//! `resourceVersion` it read, so of two candidates racing only one wins.
//! Written here rather than taken from `kube-lease-manager` (the one crate for
//! kube 5), whose expiry is judged by wall-clock time and whose locking relies
//! on server-side apply conflicts: neither can be tested on tokio's paused
//! clock against a fake API server, and this is a couple of hundred lines.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::time::Instant;

/// A Lease request that failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("read Lease {name}: {source}")]
    Get { name: String, source: kube::Error },
    #[error("create Lease {name}: {source}")]
    Create { name: String, source: kube::Error },
    #[error("update Lease {name}: {source}")]
    Update { name: String, source: kube::Error },
}

/// Why [`lead`] stopped the work.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    #[error("Lease {name} is now held by {holder:?}")]
    TakenOver { name: String, holder: String },
    #[error("Lease {name} not renewed for {deadline:?}")]
    NotRenewed {
        name: String,
        deadline: Duration,
        /// The last failed request; none when the renewals lost races.
        #[source]
        last_error: Option<LeaseError>,
    },
}

/// How long a Lease lasts and how often it is tried and renewed.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a candidate waits, after the holder's last renewal it saw,
    /// before taking the Lease over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops working;
    /// shorter than `lease_duration`, so it stops before anyone takes over.
    pub renew_deadline: Duration,
    /// Time between two attempts, to acquire or to renew.
    pub retry_period: Duration,
}

impl Default for Timing {
    /// client-go's defaults.
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// One candidate for one Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    /// The holder and renew time last read, and when they were first seen.
    observed: Option<(Option<String>, Option<MicroTime>, Instant)>,
}

impl Elector {
    /// A candidate `identity` for the Lease `name` in `namespace`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease_duration: Duration,
    ) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            lease_duration,
            observed: None,
        }
    }

    /// One attempt to acquire or renew the Lease; `true` when this candidate
    /// holds it afterwards. A lost race is `false`, not an error.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaseError> {
        let existing = self.read().await?;
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let Some(mut lease) = existing else {
            return self.create(now).await;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        self.observe(&holder, &spec.renew_time);
        match holder {
            Some(holder) if holder == self.identity => {
                spec.renew_time = Some(now);
            }
            Some(_) if !self.expired() => return Ok(false),
            _ => {
                spec.holder_identity = Some(self.identity.clone());
                spec.acquire_time = Some(now.clone());
                spec.renew_time = Some(now);
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
        }
        spec.lease_duration_seconds = Some(self.duration_seconds());
        // `lease` carries the resourceVersion read above: a concurrent write wins.
        self.write(&lease).await
    }

    async fn read(&self) -> Result<Option<Lease>, LeaseError> {
        self.api
            .get_opt(&self.name)
            .await
            .map_err(|source| LeaseError::Get {
                name: self.name.clone(),
                source,
            })
    }

    /// Replaces the Lease; `false` when another write came first (a 409).
    async fn write(&self, lease: &Lease) -> Result<bool, LeaseError> {
        match self
            .api
            .replace(&self.name, &PostParams::default(), lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(LeaseError::Update {
                name: self.name.clone(),
                source,
            }),
        }
    }

    async fn create(&mut self, now: MicroTime) -> Result<bool, LeaseError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_duration_seconds: Some(self.duration_seconds()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(LeaseError::Create {
                name: self.name.clone(),
                source,
            }),
        }
    }

    /// Restarts the expiry clock whenever the record read differs from the last.
    fn observe(&mut self, holder: &Option<String>, renewed: &Option<MicroTime>) {
        let unchanged = matches!(&self.observed, Some((h, r, _)) if h == holder && r == renewed);
        if !unchanged {
            self.observed = Some((holder.clone(), renewed.clone(), Instant::now()));
        }
    }

    fn expired(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|(_, _, seen)| seen.elapsed() >= self.lease_duration)
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Gives the Lease up if this candidate holds it, so that another takes
    /// over at once rather than after the lease duration.
    pub async fn release(&mut self) -> Result<(), LeaseError> {
        let Some(mut lease) = self.read().await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        // Lost to another write: then it is no longer ours to give.
        self.write(&lease).await.map(|_| ())
    }

    /// The holder last read, if any.
    pub fn holder(&self) -> Option<&str> {
        self.observed.as_ref().and_then(|(h, _, _)| h.as_deref())
    }
}

/// Waits until `elector` holds its Lease, then runs `work` while renewing it.
/// Returns what `work` returns, once the Lease is released; or why the Lease
/// was lost (then `work` has been dropped, and the caller should exit: its
/// state is no longer trusted).
pub async fn lead<F: Future>(
    mut elector: Elector,
    timing: Timing,
    work: F,
) -> Result<F::Output, Lost> {
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot acquire the lease"),
        }
        tokio::time::sleep(timing.retry_period).await;
    }
    tracing::info!(identity = %elector.identity, lease = %elector.name, "leading");
    let output = tokio::select! {
        output = work => output,
        lost = keep(&mut elector, timing) => return Err(lost),
    };
    if let Err(error) = elector.release().await {
        tracing::warn!(%error, "cannot release the lease; it expires by itself");
    }
    Ok(output)
}

/// Renews the Lease every retry period until that fails for good.
async fn keep(elector: &mut Elector, timing: Timing) -> Lost {
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(timing.retry_period).await;
        let outcome = elector.try_acquire_or_renew().await;
        if let Ok(true) = outcome {
            renewed = Instant::now();
            continue;
        }
        if let Some(holder) = elector.holder().filter(|h| *h != elector.identity) {
            return Lost::TakenOver {
                name: elector.name.clone(),
                holder: holder.to_owned(),
            };
        }
        // A failed request, or a race lost to a write that kept us as holder.
        if renewed.elapsed() >= timing.renew_deadline {
            return Lost::NotRenewed {
                name: elector.name.clone(),
                deadline: timing.renew_deadline,
                last_error: outcome.err(),
            };
        }
        if let Err(error) = outcome {
            tracing::warn!(%error, "cannot renew the lease; retrying");
        }
    }
}
