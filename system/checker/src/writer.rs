//! Batches outcomes into the write repository, riding out database outages.
//!
//! Outcomes arrive through a bounded queue. They are grouped into batches of up
//! to `batch_samples` samples and written every `flush_interval`. A failed write
//! keeps its batch and retries with exponential back-off; while the database is
//! away, batches pile up to `buffer_samples`, beyond which the oldest batch is
//! dropped and counted. Batches are written in order, and rewriting one is
//! harmless (the repository is idempotent), so nothing is lost or doubled by an
//! outage shorter than the buffer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use metr_storage::{Batch, TargetRef, WriteRepository};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::checkable::Outcome;
use crate::config::WriterSettings;
use crate::telemetry::Telemetry;

/// What the writer did over its life, reported when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriterReport {
    pub samples_written: u64,
    pub checks_written: u64,
    pub samples_dropped: u64,
    /// Samples still unwritten when the shutdown timeout ran out.
    pub samples_abandoned: u64,
}

/// The writer task's state.
pub struct Writer {
    repo: Arc<dyn WriteRepository>,
    settings: WriterSettings,
    targets: Vec<TargetRef>,
    telemetry: Telemetry,
    current: Batch,
    pending: VecDeque<Batch>,
    buffered: usize,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// Consecutive rejections of the oldest batch (not counting unavailability).
    rejections: u32,
    report: WriterReport,
}

/// Attempts before a batch the database rejects (rather than cannot take) is dropped.
const MAX_REJECTIONS: u32 = 3;

fn samples_in(batch: &Batch) -> usize {
    batch.samples.len()
}

impl Writer {
    pub fn new(
        repo: Arc<dyn WriteRepository>,
        settings: WriterSettings,
        targets: Vec<TargetRef>,
        telemetry: Telemetry,
    ) -> Self {
        let backoff = settings.min_backoff;
        Writer {
            repo,
            settings,
            targets,
            telemetry,
            current: Batch::default(),
            pending: VecDeque::new(),
            buffered: 0,
            backoff,
            retry_at: None,
            rejections: 0,
            report: WriterReport::default(),
        }
    }

    /// Runs until every sender of `outcomes` is gone, then flushes within the
    /// shutdown timeout.
    pub async fn run(mut self, mut outcomes: mpsc::Receiver<Outcome>) -> WriterReport {
        let mut tick = tokio::time::interval(self.settings.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                outcome = outcomes.recv() => match outcome {
                    Some(outcome) => self.add(outcome),
                    None => break,
                },
                _ = tick.tick() => {
                    self.seal();
                    if self.retry_at.is_none_or(|at| Instant::now() >= at) {
                        self.flush().await;
                    }
                }
            }
        }
        self.drain().await
    }

    fn add(&mut self, outcome: Outcome) {
        if self.current.targets.is_empty() {
            self.current.targets = self.targets.clone();
        }
        self.buffered += outcome.samples.len();
        self.current.checks.push(outcome.check);
        self.current.samples.extend(outcome.samples);
        if samples_in(&self.current) >= self.settings.batch_samples {
            self.seal();
        }
        self.enforce_limit();
        self.telemetry.buffered_samples.set(self.buffered as i64);
    }

    /// Moves the batch being filled to the back of the queue.
    fn seal(&mut self) {
        if !self.current.is_empty() {
            self.pending.push_back(std::mem::take(&mut self.current));
        }
    }

    fn enforce_limit(&mut self) {
        while self.buffered > self.settings.buffer_samples {
            let Some(oldest) = self.pending.pop_front() else {
                break;
            };
            let n = samples_in(&oldest);
            self.buffered -= n;
            self.report.samples_dropped += n as u64;
            self.telemetry.dropped_samples.inc_by(n as u64);
            tracing::error!(
                samples = n,
                "buffer full while the database is unreachable: dropped the oldest batch"
            );
        }
    }

    /// Writes pending batches in order until one fails.
    async fn flush(&mut self) -> bool {
        while let Some(batch) = self.pending.front() {
            match self.repo.write(batch).await {
                Ok(()) => {
                    let batch = self.pending.pop_front().expect("front exists");
                    let n = samples_in(&batch);
                    self.buffered -= n;
                    self.report.samples_written += n as u64;
                    self.report.checks_written += batch.checks.len() as u64;
                    self.telemetry.samples_written.inc_by(n as u64);
                    self.telemetry
                        .checks_written
                        .inc_by(batch.checks.len() as u64);
                    if self.retry_at.take().is_some() {
                        tracing::info!("database reachable again: writing resumed");
                    }
                    self.backoff = self.settings.min_backoff;
                    self.rejections = 0;
                }
                Err(e) if !e.is_unavailable() && self.rejections + 1 >= MAX_REJECTIONS => {
                    // The database keeps refusing this data (not an outage): drop it,
                    // or one bad batch would block every later one for good.
                    self.telemetry.write_errors.inc();
                    let batch = self.pending.pop_front().expect("front exists");
                    let n = samples_in(&batch);
                    self.buffered -= n;
                    self.report.samples_dropped += n as u64;
                    self.telemetry.dropped_samples.inc_by(n as u64);
                    self.rejections = 0;
                    tracing::error!(error = %e, samples = n, checks = batch.checks.len(), "the database rejected a batch {MAX_REJECTIONS} times: dropped it");
                }
                Err(e) => {
                    if !e.is_unavailable() {
                        self.rejections += 1;
                    }
                    self.telemetry.write_errors.inc();
                    tracing::warn!(
                        error = %e,
                        buffered_samples = self.buffered,
                        retry_in = ?self.backoff,
                        "database write failed; keeping the batch"
                    );
                    self.retry_at = Some(Instant::now() + self.backoff);
                    self.backoff = (self.backoff * 2).min(self.settings.max_backoff);
                    self.telemetry.buffered_samples.set(self.buffered as i64);
                    return false;
                }
            }
        }
        self.telemetry.buffered_samples.set(self.buffered as i64);
        true
    }

    async fn drain(mut self) -> WriterReport {
        self.seal();
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        while !self.pending.is_empty() {
            let flushed = tokio::time::timeout_at(deadline, self.flush()).await;
            if matches!(flushed, Ok(true)) {
                break;
            }
            let wait = self.retry_at.unwrap_or_else(Instant::now).min(deadline);
            if Instant::now() >= deadline || flushed.is_err() {
                break;
            }
            tokio::time::sleep_until(wait).await;
        }
        self.report.samples_abandoned = self.pending.iter().map(|b| samples_in(b) as u64).sum();
        if self.report.samples_abandoned > 0 {
            tracing::error!(
                samples = self.report.samples_abandoned,
                "shutdown timeout: samples left unwritten"
            );
        }
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use metr_domain::{Check, CheckStatus, Sample, SampleValue, TargetKind};
    use metr_storage::MemoryRepository;

    fn outcome(i: usize, samples: usize) -> Outcome {
        let at = Utc::now() + chrono::Duration::milliseconds(i as i64);
        Outcome {
            check: Check {
                target: "t".into(),
                kind: TargetKind::Http,
                status: CheckStatus::Up,
                http_status: Some(200),
                latency_ms: 1.0,
                error: None,
                checked_at: at,
            },
            samples: (0..samples)
                .map(|s| Sample {
                    target: "t".into(),
                    name: format!("m{s}"),
                    labels: Default::default(),
                    value: SampleValue(i as f64),
                    timestamp: at,
                })
                .collect(),
            collected: true,
            duration_seconds: 0.001,
        }
    }

    fn settings(buffer: usize) -> WriterSettings {
        WriterSettings {
            queue_capacity: 16,
            batch_samples: 10,
            flush_interval: Duration::from_millis(100),
            buffer_samples: buffer,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(5),
        }
    }

    fn writer(repo: Arc<MemoryRepository>, buffer: usize) -> (Writer, Telemetry) {
        let telemetry = Telemetry::new().unwrap();
        let target = TargetRef {
            name: "t".into(),
            kind: TargetKind::Http,
            url: "http://t/".into(),
        };
        (
            Writer::new(repo, settings(buffer), vec![target], telemetry.clone()),
            telemetry,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_shorter_than_the_buffer_loses_nothing() {
        let repo = Arc::new(MemoryRepository::new());
        let (writer, telemetry) = writer(repo.clone(), 10_000);
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(writer.run(rx));
        for i in 0..20 {
            if i == 5 {
                repo.set_unavailable(true);
            }
            if i == 15 {
                repo.set_unavailable(false);
            }
            tx.send(outcome(i, 3)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        drop(tx);
        let report = task.await.unwrap();
        assert_eq!(report.samples_written, 60);
        assert_eq!(report.samples_dropped, 0);
        assert_eq!(repo.all_checks().len(), 20);
        assert_eq!(repo.all_samples().len(), 60);
        assert!(telemetry.write_errors.get() > 0, "the outage was noticed");
        assert_eq!(telemetry.buffered_samples.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_buffer_drops_the_oldest_and_counts_it() {
        let repo = Arc::new(MemoryRepository::new());
        repo.set_unavailable(true);
        let (writer, telemetry) = writer(repo.clone(), 25);
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(writer.run(rx));
        for i in 0..10 {
            tx.send(outcome(i, 5)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        repo.set_unavailable(false);
        drop(tx);
        let report = task.await.unwrap();
        assert!(report.samples_dropped > 0);
        assert_eq!(report.samples_dropped + report.samples_written, 50);
        assert_eq!(telemetry.dropped_samples.get(), report.samples_dropped);
        // The newest data survived: the last outcome's samples are stored.
        assert!(repo.all_samples().iter().any(|s| s.value.0 == 9.0));
        assert!(!repo.all_samples().iter().any(|s| s.value.0 == 0.0));
    }

    /// Rejects every batch holding a sample named `poison`, as PostgreSQL
    /// rejects data it cannot store; stores the rest in memory.
    struct Picky(Arc<MemoryRepository>);

    #[async_trait::async_trait]
    impl WriteRepository for Picky {
        async fn write(&self, batch: &Batch) -> Result<(), metr_storage::StorageError> {
            if batch.samples.iter().any(|s| s.name == "poison") {
                return Err(metr_storage::StorageError::Rejected("invalid data".into()));
            }
            self.0.write(batch).await
        }
        async fn ping(&self) -> Result<(), metr_storage::StorageError> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_batch_is_dropped_and_counted_instead_of_blocking_the_rest() {
        let store = Arc::new(MemoryRepository::new());
        let telemetry = Telemetry::new().unwrap();
        let target = TargetRef {
            name: "t".into(),
            kind: TargetKind::Http,
            url: "http://t/".into(),
        };
        let writer = Writer::new(
            Arc::new(Picky(store.clone())),
            settings(10_000),
            vec![target],
            telemetry.clone(),
        );
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(writer.run(rx));
        let mut poisoned = outcome(0, 1);
        poisoned.samples[0].name = "poison".into();
        tx.send(poisoned).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        for i in 1..5 {
            tx.send(outcome(i, 2)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        drop(tx);
        let report = task.await.unwrap();
        assert_eq!(report.samples_dropped, 1);
        assert_eq!(telemetry.dropped_samples.get(), 1);
        assert_eq!(report.samples_written, 8, "later batches were written");
        assert_eq!(store.all_samples().len(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_flushes_what_is_held() {
        let repo = Arc::new(MemoryRepository::new());
        let (writer, _) = writer(repo.clone(), 10_000);
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(writer.run(rx));
        tx.send(outcome(0, 2)).await.unwrap();
        drop(tx);
        let report = task.await.unwrap();
        assert_eq!(report.samples_written, 2);
        assert_eq!(repo.all_samples().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_up_after_its_timeout_and_says_how_much() {
        let repo = Arc::new(MemoryRepository::new());
        repo.set_unavailable(true);
        let (writer, _) = writer(repo.clone(), 10_000);
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(writer.run(rx));
        tx.send(outcome(0, 4)).await.unwrap();
        drop(tx);
        let start = Instant::now();
        let report = task.await.unwrap();
        assert_eq!(report.samples_abandoned, 4);
        assert!(start.elapsed() <= Duration::from_secs(6));
    }
}
