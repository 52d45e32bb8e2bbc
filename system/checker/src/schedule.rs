//! Runs each target on its own interval, spread by a deterministic offset.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::checkable::{Checkable, Outcome};
use crate::telemetry::Telemetry;

/// Offset of a target's first check within its interval: a hash of its name,
/// as Prometheus does, so targets do not all fire at once and a restart keeps
/// each target's phase.
pub fn offset(name: &str, interval: Duration) -> Duration {
    // FNV-1a: stable across Rust releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let nanos = interval.as_nanos().max(1) as u64;
    Duration::from_nanos(hash % nanos)
}

/// Checks one target every `interval` until cancelled. Checks of one target run
/// one after another (a slow check delays the next tick, never overlaps it);
/// `limit` bounds checks in flight across all targets.
pub async fn run_target(
    target: Arc<dyn Checkable>,
    interval: Duration,
    limit: Arc<Semaphore>,
    outcomes: mpsc::Sender<Outcome>,
    telemetry: Option<Telemetry>,
    cancel: CancellationToken,
) {
    let name = target.target().name.clone();
    let first = Instant::now() + offset(&name, interval);
    let mut ticker = tokio::time::interval_at(first, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            // Cancellation first: once stopping, no new check may start.
            biased;
            _ = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let permit = tokio::select! {
            // Cancellation first: once stopping, no new check may start.
            biased;
            _ = cancel.cancelled() => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let outcome = tokio::select! {
            // Cancellation first: once stopping, no new check may start.
            biased;
            _ = cancel.cancelled() => break,
            outcome = target.check(chrono::Utc::now()) => outcome,
        };
        drop(permit);
        if let Some(t) = &telemetry {
            let result = if outcome.collected {
                "success"
            } else {
                "failure"
            };
            t.scrapes.with_label_values(&[&name, result]).inc();
            t.scrape_duration
                .with_label_values(&[&name])
                .observe(outcome.duration_seconds);
        }
        tracing::debug!(target = %name, status = ?outcome.check.status, samples = outcome.scrape.samples.len(), "checked");
        if outcomes.send(outcome).await.is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use metr_domain::{Check, CheckStatus, TargetKind};
    use metr_storage::TargetRef;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fake {
        target: TargetRef,
        work: Duration,
        calls: Mutex<Vec<Instant>>,
        in_flight: Arc<AtomicUsize>,
        max_in_flight: Arc<AtomicUsize>,
        own_in_flight: Arc<AtomicUsize>,
    }

    /// Decrements counters when a check ends or is dropped.
    struct Leave(Vec<Arc<AtomicUsize>>);

    impl Drop for Leave {
        fn drop(&mut self) {
            for counter in &self.0 {
                counter.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    impl Fake {
        fn new(
            name: &str,
            work: Duration,
            in_flight: Arc<AtomicUsize>,
            max: Arc<AtomicUsize>,
        ) -> Arc<Fake> {
            Arc::new(Fake {
                target: TargetRef {
                    name: name.into(),
                    kind: TargetKind::Http,
                    url: "http://x/".into(),
                },
                work,
                calls: Mutex::new(Vec::new()),
                in_flight,
                max_in_flight: max,
                own_in_flight: Arc::new(AtomicUsize::new(0)),
            })
        }
    }

    #[async_trait]
    impl Checkable for Fake {
        fn target(&self) -> &TargetRef {
            &self.target
        }
        async fn check(&self, started: DateTime<Utc>) -> Outcome {
            self.calls.lock().unwrap().push(Instant::now());
            assert_eq!(
                self.own_in_flight.fetch_add(1, Ordering::SeqCst),
                0,
                "two checks of one target at once"
            );
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            // Decrement even when the check is dropped mid-way (at cancellation).
            let _leave = Leave(vec![self.in_flight.clone(), self.own_in_flight.clone()]);
            tokio::time::sleep(self.work).await;
            Outcome {
                check: Check {
                    target: self.target.name.clone(),
                    kind: TargetKind::Http,
                    status: CheckStatus::Up,
                    http_status: Some(200),
                    latency_ms: 1.0,
                    error: None,
                    checked_at: started,
                },
                scrape: metr_storage::ScrapeSamples {
                    target: self.target.name.clone(),
                    table: Default::default(),
                    samples: vec![],
                },
                collected: true,
                duration_seconds: self.work.as_secs_f64(),
                trace: None,
            }
        }
    }

    fn drain(mut rx: mpsc::Receiver<Outcome>) {
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
    }

    #[test]
    fn offsets_are_stable_spread_and_inside_the_interval() {
        let interval = Duration::from_secs(10);
        assert_eq!(offset("gometr", interval), offset("gometr", interval));
        assert_ne!(offset("gometr", interval), offset("gometr-http", interval));
        for name in ["a", "b", "gometr", "a-very-long-target-name"] {
            assert!(offset(name, interval) < interval);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_fires_at_its_offset_then_every_interval() {
        let zero = Arc::new(AtomicUsize::new(0));
        let fake = Fake::new(
            "gometr",
            Duration::from_millis(10),
            zero.clone(),
            zero.clone(),
        );
        let (tx, rx) = mpsc::channel(16);
        drain(rx);
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let interval = Duration::from_secs(1);
        let task = tokio::spawn(run_target(
            fake.clone(),
            interval,
            Arc::new(Semaphore::new(4)),
            tx,
            None,
            cancel.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(4500)).await;
        cancel.cancel();
        task.await.unwrap();
        let calls = fake.calls.lock().unwrap().clone();
        let first = calls[0] - start;
        let expected = offset("gometr", interval);
        assert!(
            first >= expected && first - expected < Duration::from_millis(1),
            "{first:?} vs {expected:?}"
        );
        let gaps: Vec<_> = calls.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| *g == interval), "{gaps:?}");
        assert!(calls.len() >= 4, "{}", calls.len());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_check_skips_ticks_instead_of_overlapping() {
        let zero = Arc::new(AtomicUsize::new(0));
        let fake = Fake::new(
            "slow",
            Duration::from_millis(2500),
            zero.clone(),
            Arc::new(AtomicUsize::new(0)),
        );
        let (tx, rx) = mpsc::channel(16);
        drain(rx);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_target(
            fake.clone(),
            Duration::from_secs(1),
            Arc::new(Semaphore::new(4)),
            tx,
            None,
            cancel.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(10)).await;
        cancel.cancel();
        task.await.unwrap();
        let calls = fake.calls.lock().unwrap().clone();
        assert!(
            (3..=4).contains(&calls.len()),
            "{} checks in 10 s at 2.5 s each",
            calls.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_concurrency_limit_holds_across_targets() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let limit = Arc::new(Semaphore::new(2));
        let (tx, rx) = mpsc::channel(64);
        drain(rx);
        let cancel = CancellationToken::new();
        let mut fakes = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..6 {
            let fake = Fake::new(
                &format!("t{i}"),
                Duration::from_millis(900),
                in_flight.clone(),
                max.clone(),
            );
            fakes.push(fake.clone());
            tasks.push(tokio::spawn(run_target(
                fake,
                Duration::from_secs(1),
                limit.clone(),
                tx.clone(),
                None,
                cancel.clone(),
            )));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        cancel.cancel();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 2);
        let total: usize = fakes.iter().map(|f| f.calls.lock().unwrap().len()).sum();
        assert!(
            total >= 8,
            "the limit throttles but does not starve: {total}"
        );
    }
}
