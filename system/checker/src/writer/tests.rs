use super::*;
use chrono::Utc;
use metr_domain::{Check, CheckStatus, Labels, TargetKind};
use metr_storage::{MemoryRepository, ScrapeSamples, SeriesTable};

fn check(target: &str, i: usize) -> Check {
    Check {
        target: target.into(),
        kind: TargetKind::Http,
        status: CheckStatus::Up,
        http_status: Some(200),
        latency_ms: 1.0,
        error: None,
        checked_at: Utc::now() + chrono::Duration::milliseconds(i as i64),
    }
}

fn outcome_of(target: &str, table: &Arc<SeriesTable>, i: usize, samples: usize) -> Outcome {
    let check = check(target, i);
    let ts = check.checked_at.timestamp_micros();
    let mut rec = table.record();
    for s in 0..samples {
        rec.push(&format!("m{s}"), Labels::new(), i as f64, ts)
            .unwrap();
    }
    Outcome {
        check,
        scrape: ScrapeSamples {
            target: target.into(),
            table: table.clone(),
            samples: rec.finish(),
        },
        collected: true,
        duration_seconds: 0.001,
        trace: None,
    }
}

fn outcome(i: usize, samples: usize) -> Outcome {
    outcome_of("t", &Arc::new(SeriesTable::new()), i, samples)
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
        write_timeout: Duration::from_secs(2),
    }
}

fn target(name: &str) -> TargetRef {
    TargetRef {
        name: name.into(),
        kind: TargetKind::Http,
        url: format!("http://{name}/"),
    }
}

fn writer_over(
    repo: Arc<dyn WriteRepository>,
    buffer: usize,
    targets: &[&str],
) -> (Writer, Telemetry) {
    let telemetry = Telemetry::new().unwrap();
    let targets = targets.iter().map(|t| target(t)).collect();
    (
        Writer::new(repo, settings(buffer), targets, telemetry.clone()),
        telemetry,
    )
}

fn writer(repo: Arc<MemoryRepository>, buffer: usize) -> (Writer, Telemetry) {
    writer_over(repo, buffer, &["t"])
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

/// Rejects every batch holding a sample of target `poison`, as PostgreSQL
/// rejects data it cannot store; stores the rest in memory.
struct Picky(Arc<MemoryRepository>);

#[async_trait::async_trait]
impl WriteRepository for Picky {
    async fn write(&self, batch: &Batch) -> Result<(), StorageError> {
        if batch
            .scrapes
            .iter()
            .any(|s| s.target == "poison" && !s.samples.is_empty())
        {
            return Err(StorageError::Rejected("invalid data".into()));
        }
        self.0.write(batch).await
    }
    async fn drop_before(&self, cutoff: chrono::DateTime<Utc>) -> Result<u64, StorageError> {
        self.0.drop_before(cutoff).await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn one_poisoned_target_loses_only_its_own_samples() {
    let store = Arc::new(MemoryRepository::new());
    let (writer, telemetry) =
        writer_over(Arc::new(Picky(store.clone())), 10_000, &["good", "poison"]);
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(writer.run(rx));
    let good = Arc::new(SeriesTable::new());
    let bad = Arc::new(SeriesTable::new());
    // Both targets' outcomes land in the same batches.
    for i in 0..6 {
        tx.send(outcome_of("poison", &bad, i, 1)).await.unwrap();
        tx.send(outcome_of("good", &good, i, 2)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(tx);
    let report = task.await.unwrap();
    assert_eq!(report.samples_written, 12, "every good sample was stored");
    assert_eq!(
        report.samples_dropped, 6,
        "only the poison samples were lost"
    );
    assert_eq!(telemetry.dropped_samples.get(), 6);
    let checks = store.all_checks();
    assert_eq!(checks.len(), 12, "both targets' checks were stored");
    assert!(checks.iter().any(|c| c.target == "poison"));
    for check in &checks {
        let said = check.error.as_deref().unwrap_or("");
        if check.target == "poison" {
            assert!(
                said.contains("samples not stored: the database refused them")
                    && said.contains("invalid data"),
                "the poisoned target's checks say why its samples are missing: {said:?}"
            );
        } else {
            assert!(!said.contains("samples not stored"), "{said:?}");
        }
    }
}

/// Never answers: a paused database.
struct Paused;

#[async_trait::async_trait]
impl WriteRepository for Paused {
    async fn write(&self, _: &Batch) -> Result<(), StorageError> {
        std::future::pending().await
    }
    async fn drop_before(&self, _: chrono::DateTime<Utc>) -> Result<u64, StorageError> {
        std::future::pending().await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_hanging_write_times_out_counts_as_an_error_and_keeps_the_batch() {
    let (writer, telemetry) = writer_over(Arc::new(Paused), 10_000, &["t"]);
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(writer.run(rx));
    tx.send(outcome(0, 4)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        telemetry.write_errors.get() >= 2,
        "each timed-out attempt counts, got {}",
        telemetry.write_errors.get()
    );
    assert_eq!(
        telemetry.buffered_samples.get(),
        4,
        "the batch is still held"
    );
    drop(tx);
    let report = task.await.unwrap();
    assert_eq!(report.samples_abandoned, 4);
    assert_eq!(report.checks_abandoned, 1);
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
    assert_eq!(report.checks_abandoned, 1);
    assert!(start.elapsed() <= Duration::from_secs(6));
}

#[test]
fn a_batch_splits_into_one_part_per_target() {
    let a = Arc::new(SeriesTable::new());
    let b = Arc::new(SeriesTable::new());
    let mut batch = Batch {
        targets: vec![target("a"), target("b")],
        ..Default::default()
    };
    for (name, table) in [("a", &a), ("b", &b), ("a", &a)] {
        let o = outcome_of(name, table, 0, 1);
        batch.checks.push(o.check);
        batch.scrapes.push(o.scrape);
    }
    let parts = split_by_target(&batch);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].targets, vec![target("a")]);
    assert_eq!((parts[0].checks.len(), parts[0].scrapes.len()), (2, 2));
    assert_eq!((parts[1].checks.len(), parts[1].scrapes.len()), (1, 1));
}

/// Needs `pieces` steps of one second each to create the new series of any
/// batch of target `big`; stores everything in memory.
struct SlowSeries {
    store: Arc<MemoryRepository>,
    left: std::sync::Mutex<u32>,
    written: std::sync::Mutex<Vec<(String, tokio::time::Instant)>>,
}

#[async_trait::async_trait]
impl WriteRepository for SlowSeries {
    async fn write(&self, batch: &Batch) -> Result<(), StorageError> {
        for scrape in &batch.scrapes {
            let at = tokio::time::Instant::now();
            self.written
                .lock()
                .unwrap()
                .push((scrape.target.clone(), at));
        }
        self.store.write(batch).await
    }
    async fn create_series(&self, batch: &Batch, _max: usize) -> Result<bool, StorageError> {
        if !batch.scrapes.iter().any(|s| s.target == "big") {
            return Ok(true);
        }
        let more = {
            let mut left = self.left.lock().unwrap();
            let more = *left > 0;
            *left = left.saturating_sub(1);
            more
        };
        if !more {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(false)
    }
    async fn drop_before(&self, cutoff: chrono::DateTime<Utc>) -> Result<u64, StorageError> {
        self.store.drop_before(cutoff).await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn other_targets_are_written_between_the_pieces_of_a_big_targets_new_series() {
    let repo = Arc::new(SlowSeries {
        store: Arc::new(MemoryRepository::new()),
        left: std::sync::Mutex::new(30),
        written: Default::default(),
    });
    let (writer, _) = writer_over(repo.clone(), 100_000, &["big", "small"]);
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(writer.run(rx));
    let started = tokio::time::Instant::now();
    tx.send(outcome_of("big", &Arc::new(SeriesTable::new()), 0, 50))
        .await
        .unwrap();
    let small = Arc::new(SeriesTable::new());
    for i in 1..=10 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        tx.send(outcome_of("small", &small, i, 2)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    drop(tx);
    let report = task.await.unwrap();
    assert_eq!(report.samples_written, 50 + 10 * 2);
    let written = repo.written.lock().unwrap().clone();
    let big_at = written.iter().find(|(t, _)| t == "big").unwrap().1;
    assert!(
        big_at - started >= Duration::from_secs(30),
        "the big batch took its 30 pieces"
    );
    let small_before_big = written
        .iter()
        .filter(|(t, at)| t == "small" && *at < big_at)
        .count();
    assert_eq!(
        small_before_big, 10,
        "every small batch was written while the big one's series were being created: {written:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn each_write_attempt_is_a_span_in_the_trace_of_the_checks_it_carries() {
    use metr_service::trace_capture::opentelemetry::trace::Status;
    use metr_service::trace_capture::{Capture, attribute};
    let capture = Capture::start();
    let scrape = tracing::info_span!("scrape", otel.name = "scrape");
    let mut carried = outcome(0, 3);
    carried.trace = SpanLink::to(&scrape);
    drop(scrape);
    assert!(carried.trace.is_some(), "every trace is sampled here");
    let repo = Arc::new(MemoryRepository::new());
    repo.set_unavailable(true);
    let (writer, _) = writer(repo.clone(), 10_000);
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(writer.run(rx));
    tx.send(carried).await.unwrap();
    // Sealed after 100 ms, the first attempt fails; the retry comes 100 ms later.
    tokio::time::sleep(Duration::from_millis(150)).await;
    repo.set_unavailable(false);
    drop(tx);
    assert_eq!(task.await.unwrap().samples_written, 3);
    let spans = capture.spans();
    let scrape = spans.iter().find(|s| s.name == "scrape").unwrap();
    let writes: Vec<_> = spans.iter().filter(|s| s.name == "write batch").collect();
    assert!(writes.len() >= 2, "{spans:#?}");
    for write in &writes {
        assert_eq!(write.parent_span_id, scrape.span_context.span_id());
        assert_eq!(
            write.span_context.trace_id(),
            scrape.span_context.trace_id()
        );
        assert_eq!(attribute(write, "samples").as_deref(), Some("3"));
    }
    assert_eq!(attribute(writes[0], "attempt").as_deref(), Some("1"));
    assert!(
        matches!(&writes[0].status, Status::Error { description } if description.contains("switched off")),
        "{:?}",
        writes[0].status
    );
    let last = writes.last().unwrap();
    assert_eq!(attribute(last, "attempt"), Some(writes.len().to_string()));
    assert_eq!(last.status, Status::Unset);
}
