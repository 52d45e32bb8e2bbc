//! Batches outcomes into the write repository, riding out database outages.
//!
//! Outcomes arrive through a bounded queue and are grouped into batches of up
//! to `batch_samples` samples, sealed at least every `flush_interval`. One
//! batch is written at a time, in a task of its own, so the queue keeps
//! draining while a write is slow; a write that takes longer than
//! `write_timeout` counts as failed. A failed write keeps its batch and retries
//! with exponential back-off; while the database is away, batches pile up to
//! `buffer_samples`, beyond which the oldest batch is dropped, counted and
//! logged. Rewriting a batch is harmless (the repository is idempotent), so an
//! outage shorter than the buffer loses nothing.
//!
//! A batch the database *rejects* (bad data, not an outage) is split by target,
//! so that one target's poison cannot take other targets' data with it; a
//! single target's part that keeps being rejected loses its samples, then, if
//! even its check records are refused, the rest.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use metr_service::trace_context::SpanLink;
use metr_storage::{Batch, SERIES_PER_STATEMENT, StorageError, TargetRef, WriteRepository};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::checkable::Outcome;
use crate::config::WriterSettings;
use crate::telemetry::Telemetry;

/// What the writer did over its life, reported when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriterReport {
    pub samples_written: u64,
    pub checks_written: u64,
    pub samples_dropped: u64,
    pub checks_dropped: u64,
    /// Samples still unwritten when the shutdown timeout ran out.
    pub samples_abandoned: u64,
    pub checks_abandoned: u64,
}

/// A sealed batch waiting to be written.
struct Pending {
    batch: Arc<Batch>,
    /// When its oldest data was sealed: how far behind the writer is.
    since: Instant,
    /// Consecutive rejections (not counting unavailability).
    rejections: u32,
    /// Pieces of new series created for it so far, and since when.
    pieces: u32,
    creating_since: Option<Instant>,
    /// Write attempts so far, each a span of its own.
    attempts: u32,
    /// The sampled checks whose data it carries: its write spans join their traces.
    links: Arc<[SpanLink]>,
}

impl Pending {
    fn new(batch: Batch, since: Instant, links: Arc<[SpanLink]>) -> Self {
        Pending {
            batch: Arc::new(batch),
            since,
            rejections: 0,
            pieces: 0,
            creating_since: None,
            attempts: 0,
            links,
        }
    }

    /// The span of the next write attempt, in the trace of the first check it
    /// carries that is sampled, linked to the others.
    fn attempt_span(&mut self) -> Span {
        self.attempts += 1;
        let (samples, checks) = counts(&self.batch);
        let span = tracing::info_span!(
            parent: None,
            "write",
            otel.name = "write batch",
            samples,
            checks,
            attempt = self.attempts,
            otel.status_description = Empty,
        );
        SpanLink::follow(&span, &self.links);
        span
    }
}

/// Links kept per batch at most: enough to find a batch from its checks'
/// traces at any sampling ratio that is not a test's.
const MAX_LINKS: usize = 32;

/// What one turn of writing did with a batch.
#[derive(Debug)]
enum Step {
    /// The batch is stored.
    Written,
    /// One piece of its new series was created; more remain.
    Piece,
}

type Written = (Pending, Result<Step, StorageError>);

/// The writer task's state.
pub struct Writer {
    repo: Arc<dyn WriteRepository>,
    settings: WriterSettings,
    targets: Vec<TargetRef>,
    telemetry: Telemetry,
    current: Batch,
    /// The sampled checks of `current`.
    current_links: Vec<SpanLink>,
    pending: VecDeque<Pending>,
    /// Samples held, pending and in flight.
    buffered: usize,
    /// Checks of the batch being written, if one is.
    in_flight_checks: usize,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// New series created per step; halved when a step times out.
    series_per_piece: usize,
    report: WriterReport,
}

/// How long one batch's new series may be created, piece after piece,
/// before other batches get their turn: a check of another target waits at
/// most about this long behind a big target's new series.
const TURN: Duration = Duration::from_secs(1);

/// The smallest piece of new series one step creates.
const MIN_SERIES_PER_PIECE: usize = 100;

/// Attempts before a part the database rejects (rather than cannot take) loses data.
const MAX_REJECTIONS: u32 = 3;

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
            current_links: Vec::new(),
            pending: VecDeque::new(),
            buffered: 0,
            in_flight_checks: 0,
            backoff,
            retry_at: None,
            series_per_piece: SERIES_PER_STATEMENT,
            report: WriterReport::default(),
        }
    }

    /// Runs until every sender of `outcomes` is gone, then flushes within the
    /// shutdown timeout.
    pub async fn run(mut self, mut outcomes: mpsc::Receiver<Outcome>) -> WriterReport {
        let mut tick = tokio::time::interval(self.settings.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut in_flight: Option<JoinHandle<Written>> = None;
        loop {
            if in_flight.is_none() {
                in_flight = self.start_next();
            }
            tokio::select! {
                biased;
                done = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                    in_flight = None;
                    self.finished(done);
                }
                outcome = outcomes.recv() => match outcome {
                    Some(outcome) => self.add(outcome),
                    None => break,
                },
                _ = tick.tick() => self.seal(),
            }
            self.update_gauges();
        }
        self.drain(in_flight).await
    }

    fn add(&mut self, outcome: Outcome) {
        if self.current.targets.is_empty() {
            self.current.targets = self.targets.clone();
        }
        self.buffered += outcome.scrape.samples.len();
        if let Some(link) = outcome.trace
            && self.current_links.len() < MAX_LINKS
        {
            self.current_links.push(link);
        }
        self.current.checks.push(outcome.check);
        self.current.scrapes.push(outcome.scrape);
        if self.current.sample_count() >= self.settings.batch_samples {
            self.seal();
        }
        self.enforce_limit();
    }

    /// Moves the batch being filled to the back of the queue.
    fn seal(&mut self) {
        if !self.current.is_empty() {
            let links = std::mem::take(&mut self.current_links).into();
            self.pending.push_back(Pending::new(
                std::mem::take(&mut self.current),
                Instant::now(),
                links,
            ));
        }
    }

    fn enforce_limit(&mut self) {
        while self.buffered > self.settings.buffer_samples {
            let Some(oldest) = self.pending.pop_front() else {
                break;
            };
            let (samples, checks) = counts(&oldest.batch);
            self.buffered -= samples;
            self.count_dropped(samples, checks);
            tracing::warn!(
                samples,
                checks,
                buffer_samples = self.settings.buffer_samples,
                "the database cannot keep up (or is away) and the buffer is full: dropped the oldest batch"
            );
        }
    }

    fn count_dropped(&mut self, samples: usize, checks: usize) {
        self.report.samples_dropped += samples as u64;
        self.report.checks_dropped += checks as u64;
        self.telemetry.dropped_samples.inc_by(samples as u64);
    }

    /// Starts writing the oldest pending batch, unless backing off.
    fn start_next(&mut self) -> Option<JoinHandle<Written>> {
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        let mut pending = self.pending.pop_front()?;
        self.in_flight_checks = pending.batch.checks.len();
        let repo = self.repo.clone();
        let timeout = self.settings.write_timeout;
        let piece = self.series_per_piece;
        let span = pending.attempt_span();
        Some(tokio::spawn(async move {
            let result = write_step(&*repo, &pending.batch, timeout, piece)
                .instrument(span.clone())
                .await;
            if let Err(e) = &result {
                span.record("otel.status_description", cause_chain(e));
            }
            (pending, result)
        }))
    }

    fn finished(&mut self, done: Result<Written, tokio::task::JoinError>) {
        self.in_flight_checks = 0;
        let (mut pending, result) = match done {
            Ok(done) => done,
            Err(e) => {
                // The write task panicked: its batch is gone. Say so loudly.
                tracing::error!(error = %e, "a batch write crashed; its data is lost");
                return;
            }
        };
        match result {
            Ok(Step::Piece) => {
                // Other batches go first between two turns: a target's
                // hundreds of thousands of new series must not hold up every
                // other target's checks for as long as they take.
                pending.pieces += 1;
                pending.creating_since.get_or_insert_with(Instant::now);
                self.pending.push_back(pending);
                self.series_per_piece = (self.series_per_piece * 2).min(SERIES_PER_STATEMENT);
            }
            Ok(Step::Written) => {
                if let Some(started) = pending.creating_since {
                    tracing::info!(
                        pieces = pending.pieces + 1,
                        samples = pending.batch.sample_count(),
                        elapsed = ?started.elapsed(),
                        "stored a batch whose new series were created piece by piece"
                    );
                }
                self.series_per_piece = (self.series_per_piece * 2).min(SERIES_PER_STATEMENT);
                let (samples, checks) = counts(&pending.batch);
                self.buffered -= samples;
                self.report.samples_written += samples as u64;
                self.report.checks_written += checks as u64;
                self.telemetry.samples_written.inc_by(samples as u64);
                self.telemetry.checks_written.inc_by(checks as u64);
                if self.retry_at.take().is_some() {
                    tracing::info!("database reachable again: writing resumed");
                }
                self.backoff = self.settings.min_backoff;
            }
            Err(e) if e.is_unavailable() => {
                self.telemetry.write_errors.inc();
                // A database too slow for a whole piece in time gets smaller ones.
                self.series_per_piece = (self.series_per_piece / 2).max(MIN_SERIES_PER_PIECE);
                tracing::warn!(
                    error = %e,
                    buffered_samples = self.buffered,
                    retry_in = ?self.backoff,
                    "database write failed; keeping the batch"
                );
                self.pending.push_front(pending);
                self.back_off();
            }
            Err(e) => {
                self.telemetry.write_errors.inc();
                pending.rejections += 1;
                self.rejected(pending, &e);
            }
        }
    }

    fn back_off(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.settings.max_backoff);
    }

    /// Splits a rejected batch by target, or sheds what a lone target's part cannot store.
    fn rejected(&mut self, pending: Pending, error: &StorageError) {
        // The database's own words: what it refused and why.
        let error = &cause_chain(error);
        let parts = split_by_target(&pending.batch);
        if parts.len() > 1 {
            tracing::warn!(error = %error, parts = parts.len(), "the database rejected a batch: retrying it target by target");
            for batch in parts.into_iter().rev() {
                let links = pending.links.clone();
                self.pending
                    .push_front(Pending::new(batch, pending.since, links));
            }
            return;
        }
        if pending.rejections < MAX_REJECTIONS {
            tracing::warn!(error = %error, attempt = pending.rejections, "the database rejected a batch; retrying");
            self.pending.push_front(pending);
            self.back_off();
            return;
        }
        let (samples, checks) = counts(&pending.batch);
        let target = pending.batch.targets.first().map(|t| t.name.clone());
        if samples > 0 {
            // The checks alone may still be storable: keep them, drop the samples.
            let mut checks_only = (*pending.batch).clone();
            checks_only.scrapes.clear();
            checks_only.samples.clear();
            // Said where users look: the check of each scrape whose samples
            // are lost carries why, beside whatever it already said.
            for check in &mut checks_only.checks {
                let lost = format!("samples not stored: the database refused them: {error}");
                check.error = Some(match check.error.take() {
                    Some(said) => format!("{said}; {lost}"),
                    None => lost,
                });
            }
            self.buffered -= samples;
            self.count_dropped(samples, 0);
            tracing::error!(error = %error, target = ?target, samples, "the database rejected this target's samples {MAX_REJECTIONS} times: dropped them, keeping its checks");
            if !checks_only.is_empty() {
                self.pending
                    .push_front(Pending::new(checks_only, pending.since, pending.links));
            }
        } else {
            self.count_dropped(0, checks);
            tracing::error!(error = %error, target = ?target, checks, "the database rejected these check records {MAX_REJECTIONS} times: dropped them");
        }
    }

    fn update_gauges(&self) {
        self.telemetry.buffered_samples.set(self.buffered as i64);
        let lag = self
            .pending
            .iter()
            .map(|p| p.since)
            .min()
            .map_or(0.0, |since| since.elapsed().as_secs_f64());
        self.telemetry.write_lag_seconds.set(lag);
    }

    async fn drain(mut self, mut in_flight: Option<JoinHandle<Written>>) -> WriterReport {
        self.seal();
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        loop {
            if in_flight.is_none() {
                if self.pending.is_empty() {
                    break;
                }
                if let Some(at) = self.retry_at.filter(|at| *at > Instant::now()) {
                    if at >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                }
                in_flight = self.start_next();
            }
            let Some(handle) = in_flight.as_mut() else {
                continue;
            };
            match tokio::time::timeout_at(deadline, handle).await {
                Ok(done) => {
                    in_flight = None;
                    self.finished(done);
                }
                Err(_) => break,
            }
        }
        if let Some(handle) = in_flight.take() {
            handle.abort();
            // Finished just before the abort: account for it as usual. An
            // aborted write may or may not have committed; this process cannot
            // know, so it counts as abandoned.
            if let Ok(done) = handle.await {
                self.finished(Ok(done));
            }
        }
        self.update_gauges();
        self.report.samples_abandoned = self.buffered as u64;
        self.report.checks_abandoned = self.in_flight_checks as u64
            + self
                .pending
                .iter()
                .map(|p| p.batch.checks.len() as u64)
                .sum::<u64>();
        if self.report.samples_abandoned > 0 || self.report.checks_abandoned > 0 {
            tracing::error!(
                samples = self.report.samples_abandoned,
                checks = self.report.checks_abandoned,
                shutdown_timeout = ?self.settings.shutdown_timeout,
                "shutting down with data the database did not take in time: it is lost"
            );
        }
        self.report
    }
}

/// One turn of writing a batch: pieces of its new series for up to a turn
/// if it has any left, then the batch itself. No step may take longer than `timeout`, and
/// however many series a batch brings, each step does a bounded amount of
/// work. Created series are kept, so a retry resumes where a failed piece
/// stopped instead of starting over.
async fn write_step(
    repo: &dyn WriteRepository,
    batch: &Batch,
    timeout: Duration,
    series_per_piece: usize,
) -> Result<Step, StorageError> {
    let timed_out = |what: &str| {
        StorageError::Unavailable(format!(
            "{what} timed out after {}",
            humantime::format_duration(timeout)
        ))
    };
    // Pieces follow each other for up to a turn, then other batches go.
    let turn = Instant::now() + (timeout / 2).min(TURN);
    loop {
        match tokio::time::timeout(timeout, repo.create_series(batch, series_per_piece)).await {
            Ok(Ok(true)) => break,
            Ok(Ok(false)) if Instant::now() >= turn => return Ok(Step::Piece),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(timed_out("creating a piece of new series")),
        }
    }
    match tokio::time::timeout(timeout, repo.write(batch)).await {
        Ok(result) => result.map(|()| Step::Written),
        Err(_) => Err(timed_out("write")),
    }
}

/// An error with every cause under it, `: `-separated.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn counts(batch: &Batch) -> (usize, usize) {
    (batch.sample_count(), batch.checks.len())
}

/// One batch per target that has data in `batch`.
fn split_by_target(batch: &Batch) -> Vec<Batch> {
    let mut parts: Vec<Batch> = Vec::new();
    let part_of = |name: &str, parts: &mut Vec<Batch>| -> usize {
        if let Some(i) = parts.iter().position(|p| p.targets[0].name == name) {
            return i;
        }
        let target = batch
            .targets
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .unwrap_or_else(|| TargetRef {
                name: name.to_owned(),
                kind: metr_domain::TargetKind::Http,
                url: String::new(),
            });
        parts.push(Batch {
            targets: vec![target],
            ..Default::default()
        });
        parts.len() - 1
    };
    for check in &batch.checks {
        let i = part_of(&check.target, &mut parts);
        parts[i].checks.push(check.clone());
    }
    for scrape in &batch.scrapes {
        let i = part_of(&scrape.target, &mut parts);
        parts[i].scrapes.push(scrape.clone());
    }
    for sample in &batch.samples {
        let i = part_of(&sample.target, &mut parts);
        parts[i].samples.push(sample.clone());
    }
    parts
}

#[cfg(test)]
mod tests;
