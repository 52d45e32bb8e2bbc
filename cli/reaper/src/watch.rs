//! When to reap: the owner's connections and the run's time to live.

use std::time::{Duration, Instant, SystemTime};

/// How long the reaper waits for its first owner connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after the last owner connection closed the reaper waits for a
/// new one before reaping (a reconnecting owner keeps its run).
pub const RECONNECT_GRACE: Duration = Duration::from_secs(2);

/// What ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Its owner going away (the default: `run`, foreground `up`).
    Owner,
    /// This moment (`up --detach --ttl`, kept stacks); owners no longer matter.
    Until(SystemTime),
    /// Nothing: only `metrtest down` (`--ttl 0`).
    Never,
}

/// The state the reaper decides on.
#[derive(Debug)]
pub struct Watch {
    pub policy: Policy,
    /// What the run is kept for (a failed scenario's name), for `metrtest ps`.
    pub note: Option<String>,
    owners: usize,
    ever_owned: bool,
    since: Instant,
}

/// What the reaper should do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Check again after at most this long (or when something changes).
    Wait(Duration),
    /// Remove the run, for this reason.
    Reap(&'static str),
}

impl Watch {
    pub fn new(now: Instant) -> Watch {
        Watch {
            policy: Policy::Owner,
            note: None,
            owners: 0,
            ever_owned: false,
            since: now,
        }
    }

    pub fn owners(&self) -> usize {
        self.owners
    }

    /// An owner connection said `hold`.
    pub fn hold(&mut self, now: Instant) {
        self.owners += 1;
        self.ever_owned = true;
        self.since = now;
    }

    /// An owner connection closed.
    pub fn release(&mut self, now: Instant) {
        self.owners = self.owners.saturating_sub(1);
        self.since = now;
    }

    pub fn decide(&self, now: Instant, wall: SystemTime) -> Decision {
        match self.policy {
            Policy::Never => Decision::Wait(Duration::MAX),
            Policy::Until(deadline) => match deadline.duration_since(wall) {
                Ok(left) if !left.is_zero() => Decision::Wait(left),
                _ => Decision::Reap("time to live is over"),
            },
            Policy::Owner if self.owners > 0 => Decision::Wait(Duration::MAX),
            Policy::Owner => {
                let (limit, why) = if self.ever_owned {
                    (RECONNECT_GRACE, "owner disconnected")
                } else {
                    (CONNECT_TIMEOUT, "owner never connected")
                };
                match limit.checked_sub(now.duration_since(self.since)) {
                    Some(left) if !left.is_zero() => Decision::Wait(left),
                    _ => Decision::Reap(why),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_held_run_waits_and_a_released_one_is_reaped_after_the_grace() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut watch = Watch::new(t0);
        watch.hold(t0);
        assert_eq!(
            watch.decide(t0 + 600 * S, wall),
            Decision::Wait(Duration::MAX)
        );
        watch.release(t0 + 600 * S);
        assert_eq!(
            watch.decide(t0 + 601 * S, wall),
            Decision::Wait(RECONNECT_GRACE - S)
        );
        assert_eq!(
            watch.decide(t0 + 600 * S + RECONNECT_GRACE, wall),
            Decision::Reap("owner disconnected")
        );
    }

    #[test]
    fn a_reconnecting_owner_keeps_the_run() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut watch = Watch::new(t0);
        watch.hold(t0);
        watch.release(t0 + S);
        watch.hold(t0 + 2 * S);
        assert_eq!(
            watch.decide(t0 + 60 * S, wall),
            Decision::Wait(Duration::MAX)
        );
    }

    #[test]
    fn an_owner_that_never_connects_is_given_up_on() {
        let t0 = Instant::now();
        let watch = Watch::new(t0);
        assert!(matches!(
            watch.decide(t0 + S, SystemTime::now()),
            Decision::Wait(_)
        ));
        assert_eq!(
            watch.decide(t0 + CONNECT_TIMEOUT, SystemTime::now()),
            Decision::Reap("owner never connected")
        );
    }

    #[test]
    fn a_ttl_outlives_the_owner_and_ends_the_run_at_its_deadline() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut watch = Watch::new(t0);
        watch.hold(t0);
        watch.policy = Policy::Until(wall + 3600 * S);
        watch.release(t0);
        assert_eq!(
            watch.decide(t0 + 10 * S, wall + 10 * S),
            Decision::Wait(3590 * S)
        );
        assert_eq!(
            watch.decide(t0 + 3600 * S, wall + 3600 * S),
            Decision::Reap("time to live is over")
        );
    }

    #[test]
    fn no_ttl_means_the_run_stays() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0);
        watch.policy = Policy::Never;
        assert_eq!(
            watch.decide(t0 + 1_000_000 * S, SystemTime::now()),
            Decision::Wait(Duration::MAX)
        );
    }
}
