//! The `Metr` status: `Ready`, `Progressing` and `Degraded` conditions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::MetrStatus;

/// What one reconcile found, from which the conditions follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The spec was refused; nothing was applied.
    InvalidSpec(String),
    /// The referenced Secret does not exist; nothing was applied.
    SecretNotFound(String),
    /// Applying an object failed; earlier objects may be applied.
    ApplyFailed(String),
    /// Everything is applied and some workloads are still rolling out.
    RollingOut(String),
    /// Everything is applied and every workload is available.
    Available,
    /// The Metr is being deleted; its objects go with it.
    Deleting,
}

impl Health {
    /// The `outcome` label of `metr_operator_reconciles_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Health::InvalidSpec(_) => "invalid_spec",
            Health::SecretNotFound(_) => "secret_not_found",
            Health::ApplyFailed(_) => "apply_failed",
            Health::RollingOut(_) => "rolling_out",
            Health::Available => "available",
            Health::Deleting => "deleting",
        }
    }

    fn degraded(&self) -> Option<(&'static str, &str)> {
        match self {
            Health::InvalidSpec(m) => Some(("InvalidSpec", m)),
            Health::SecretNotFound(m) => Some(("SecretNotFound", m)),
            Health::ApplyFailed(m) => Some(("ApplyFailed", m)),
            Health::RollingOut(_) | Health::Available | Health::Deleting => None,
        }
    }
}

/// The status for `health` at `generation`; a condition whose status did not
/// change keeps its `lastTransitionTime` from `previous`.
pub fn status(
    previous: Option<&MetrStatus>,
    health: &Health,
    generation: Option<i64>,
    now: Time,
) -> MetrStatus {
    let (ready, progressing, degraded) = match (health, health.degraded()) {
        (_, Some((reason, message))) => (
            (false, reason, message.to_owned()),
            (
                false,
                reason,
                "waiting for a valid spec and its Secret".to_owned(),
            ),
            (true, reason, message.to_owned()),
        ),
        (Health::RollingOut(message), None) => (
            (false, "RollingOut", message.clone()),
            (true, "RollingOut", message.clone()),
            (false, "Reconciled", "all objects applied".to_owned()),
        ),
        (_, None) => (
            (true, "Available", "every workload is available".to_owned()),
            (false, "Available", "rollout complete".to_owned()),
            (false, "Reconciled", "all objects applied".to_owned()),
        ),
    };
    let previous = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let condition = |type_: &str, (on, reason, message): (bool, &str, String)| {
        let status = if on { "True" } else { "False" };
        let last_transition_time = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: generation,
            last_transition_time,
        }
    };
    MetrStatus {
        observed_generation: generation,
        conditions: vec![
            condition("Ready", ready),
            condition("Progressing", progressing),
            condition("Degraded", degraded),
        ],
    }
}
