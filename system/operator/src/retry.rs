//! Back-off for failed reconciles: each `Metr` that keeps failing is retried
//! less and less often (5 s, 10 s, 20 s, ... up to 5 min), and one success
//! brings it back to the first pause. Kept per `Metr`, so one broken `Metr`
//! does not slow the others down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;

use crate::crd::Metr;

/// The pause after the first failure.
pub const FIRST: Duration = Duration::from_secs(5);
/// The longest pause.
pub const MAX: Duration = Duration::from_secs(300);

/// The pause after `failures` consecutive failures (at least one).
pub fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MAX)
}

/// Consecutive failed reconciles of each `Metr`.
#[derive(Debug, Default)]
pub struct Failures {
    counts: Mutex<HashMap<ObjectRef<Metr>, u32>>,
}

impl Failures {
    /// Counts a failure of `metr`; returns how long to wait before retrying.
    pub fn failed(&self, metr: &Metr) -> Duration {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ObjectRef::from_obj(metr)).or_insert(0);
        *count = count.saturating_add(1);
        delay(*count)
    }

    /// Forgets the failures of `metr`: it reconciled.
    pub fn succeeded(&self, metr: &Metr) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.remove(&ObjectRef::from_obj(metr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metr(name: &str) -> Metr {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "metr.dev/v1alpha1", "kind": "Metr",
            "metadata": {"name": name, "namespace": "metr"},
            "spec": {"targets": [], "postgres": {}},
        }))
        .unwrap()
    }

    #[test]
    fn the_pause_doubles_with_each_failure_up_to_five_minutes() {
        let pauses: Vec<_> = (1..=8).map(|n| delay(n).as_secs()).collect();

        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(delay(u32::MAX), MAX);
    }

    #[test]
    fn consecutive_failures_of_one_metr_back_off() {
        let failures = Failures::default();
        let demo = metr("demo");

        let pauses: Vec<_> = (0..3).map(|_| failures.failed(&demo)).collect();

        assert_eq!(pauses, [FIRST, FIRST * 2, FIRST * 4]);
    }

    #[test]
    fn a_success_resets_the_back_off() {
        let failures = Failures::default();
        let demo = metr("demo");
        failures.failed(&demo);
        failures.failed(&demo);

        failures.succeeded(&demo);

        assert_eq!(failures.failed(&demo), FIRST);
    }

    #[test]
    fn each_metr_backs_off_on_its_own() {
        let failures = Failures::default();
        let (broken, fine) = (metr("broken"), metr("fine"));
        failures.failed(&broken);
        failures.failed(&broken);

        assert_eq!(failures.failed(&fine), FIRST);
        assert_eq!(failures.failed(&broken), FIRST * 4);
    }
}
