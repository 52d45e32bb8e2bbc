//! Wires the schedulers, the writer and the checker's own HTTP endpoints.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Router, middleware};
use metr_domain::Labels;
use metr_service::error::StartError;
use metr_service::health::{Health, HealthCheck, HealthStatus};
use metr_service::http_metrics::{self, HttpMetrics};
use metr_service::server::Server;
use metr_storage::{StorageError, TargetRef, WriteRepository};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::checkable::Checkable;
use crate::config::{Settings, StorageSettings};
use crate::fetch;
use crate::memory::{self, MemoryBudget, MemoryWatch};
use crate::probe::HttpTarget;
use crate::schedule;
use crate::scrape::{PrometheusTarget, SampleLimits};
use crate::target_series::TargetSeries;
use crate::telemetry::Telemetry;
use crate::writer::{Writer, WriterReport};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the checker stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the writer task crashed: {0}")]
    WriterCrashed(String),
    #[error(transparent)]
    Database(#[from] StorageError),
}

#[derive(Clone)]
struct AppState {
    repo: Arc<dyn WriteRepository>,
    telemetry: Telemetry,
}

/// A configured checker with its own HTTP listener bound.
pub struct Application {
    settings: Settings,
    repo: Arc<dyn WriteRepository>,
    telemetry: Telemetry,
    server: Server,
}

/// A target ready to schedule, with its interval.
pub type Scheduled = (Arc<dyn Checkable>, Duration);

/// How far ahead of the checker's clock an explicit sample timestamp may be.
const MAX_AHEAD: Duration = Duration::from_secs(600);

/// Builds the checkable of each configured target this replica's shard owns.
pub fn checkables(
    settings: &Settings,
    memory: &Arc<MemoryWatch>,
) -> Result<Vec<Scheduled>, StartError> {
    let client = fetch::client().map_err(|e| StartError::HttpClient(e.to_string()))?;
    Ok(settings
        .targets
        .iter()
        .filter(|t| settings.shard.owns(&t.name))
        .map(|t| {
            let target = TargetRef {
                name: t.name.clone(),
                kind: t.kind,
                url: t.url.clone(),
            };
            let labels: Labels = t.labels.clone();
            let checkable: Arc<dyn Checkable> = match t.kind {
                metr_domain::TargetKind::Prometheus => Arc::new(PrometheusTarget {
                    target,
                    labels,
                    timeout: t.timeout(settings),
                    max_body_bytes: settings.max_body_bytes,
                    limits: SampleLimits {
                        max_samples: t.sample_limit(settings),
                        max_age: settings.retention,
                        max_ahead: MAX_AHEAD,
                    },
                    series: TargetSeries::new(
                        memory::max_series(t.sample_limit(settings)),
                        t.sample_limit(settings),
                    ),
                    memory: memory.clone(),
                    client: client.clone(),
                }),
                metr_domain::TargetKind::Http => Arc::new(HttpTarget {
                    target,
                    labels,
                    timeout: t.timeout(settings),
                    max_body_bytes: settings.max_body_bytes,
                    expected_status: t.expected_status.clone(),
                    series: TargetSeries::new(
                        memory::max_series(memory::HTTP_SERIES as usize),
                        memory::HTTP_SERIES as usize,
                    ),
                    client: client.clone(),
                }),
            };
            (checkable, t.interval(settings))
        })
        .collect())
}

impl Application {
    pub async fn build(
        settings: Settings,
        repo: Arc<dyn WriteRepository>,
    ) -> Result<Self, StartError> {
        let telemetry = Telemetry::new()?;
        let server = Server::bind(settings.listen).await?;
        Ok(Application {
            settings,
            repo,
            telemetry,
            server,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves `/health` at once; once `ready` resolves (the database reachable
    /// and migrated), checks and writes until `shutdown` resolves, then stops
    /// scheduling and flushes within the configured shutdown timeout.
    pub async fn run_until(
        self,
        ready: impl std::future::Future<Output = Result<(), StorageError>> + Send,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<WriterReport, RunError> {
        let Application {
            settings,
            repo,
            telemetry,
            server,
        } = self;
        let state = AppState {
            repo: repo.clone(),
            telemetry: telemetry.clone(),
        };
        let router = Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .layer(middleware::from_fn_with_state(
                telemetry.http.clone(),
                HttpMetrics::track,
            ))
            .layer(middleware::from_fn(
                metr_service::trace_context::server_span,
            ))
            .with_state(state);
        let server_stop = CancellationToken::new();
        let server = {
            let stop = server_stop.clone();
            tokio::spawn(server.serve("checker", router, async move { stop.cancelled().await }))
        };
        let mut shutdown = std::pin::pin!(shutdown);
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                server_stop.cancel();
                let _ = server.await;
                return Ok(WriterReport::default());
            }
            ready = ready => if let Err(e) = ready {
                server_stop.cancel();
                let _ = server.await;
                return Err(RunError::Database(e));
            },
        }
        let budget = MemoryBudget::of(&settings);
        let memory = Arc::new(MemoryWatch::new(settings.memory_limit()));
        telemetry.memory_bound_bytes.set(budget.total() as i64);
        telemetry
            .memory_limit_bytes
            .set(memory.limit().map_or(-1, |l| l as i64));
        tracing::info!(bound = %budget.describe(), limit = %memory.limit().map_or("none".into(), memory::mib), "memory");
        let targets = checkables(&settings, &memory)?;
        telemetry.record_shard(settings.shard, targets.len());
        tracing::info!(shard = %settings.shard, owned = targets.len(), configured = settings.targets.len(), "targets of this shard");
        let refs: Vec<TargetRef> = targets.iter().map(|(c, _)| c.target().clone()).collect();
        let (tx, rx) = mpsc::channel(settings.writer.queue_capacity);
        let writer = tokio::spawn(
            Writer::new(
                repo.clone(),
                settings.writer.clone(),
                refs,
                telemetry.clone(),
            )
            .run(rx),
        );

        let cancel = CancellationToken::new();
        let series: Vec<_> = targets.iter().map(|(c, _)| c.clone()).collect();
        let watch = tokio::spawn(watch_memory(
            memory.clone(),
            series,
            telemetry.clone(),
            cancel.clone(),
        ));
        let retention = tokio::spawn(enforce_retention(
            repo.clone(),
            settings.retention,
            cancel.clone(),
        ));
        let compaction = settings.storage.compact.then(|| {
            tokio::spawn(compact(
                repo.clone(),
                settings.storage.clone(),
                cancel.clone(),
            ))
        });
        let limit = Arc::new(Semaphore::new(settings.concurrency));
        let mut schedulers = Vec::new();
        for (checkable, interval) in targets {
            tracing::info!(target = %checkable.target().name, kind = %checkable.target().kind, url = %checkable.target().url, ?interval, "scheduling");
            schedulers.push(tokio::spawn(schedule::run_target(
                checkable,
                interval,
                limit.clone(),
                tx.clone(),
                Some(telemetry.clone()),
                cancel.clone(),
            )));
        }
        drop(tx);

        shutdown.await;
        cancel.cancel();
        for s in schedulers {
            let _ = s.await;
        }
        let _ = retention.await;
        if let Some(compaction) = compaction {
            let _ = compaction.await;
        }
        let _ = watch.await;
        let report = writer
            .await
            .map_err(|e| RunError::WriterCrashed(e.to_string()))?;
        tracing::info!(?report, "checker stopped");
        server_stop.cancel();
        let _ = server.await;
        Ok(report)
    }
}

/// How often resident memory is measured.
const MEMORY_EVERY: Duration = Duration::from_secs(1);
/// Growth of resident memory after which freed memory is handed back.
const TRIM_AFTER_GROWTH: u64 = 32 << 20;
/// Least time between two memory-pressure warnings.
const MEMORY_WARN_EVERY: Duration = Duration::from_secs(30);

/// Measures resident memory every second; from [`memory::WARN_AT`] of the
/// limit, warns (at most every 30 s) with what holds the memory, before the
/// kernel acts.
async fn watch_memory(
    memory: Arc<MemoryWatch>,
    targets: Vec<Arc<dyn Checkable>>,
    telemetry: Telemetry,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(MEMORY_EVERY);
    let mut warned: Option<tokio::time::Instant> = None;
    let mut trimmed_at = memory.resident();
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut resident = memory.refresh();
        if resident > trimmed_at.saturating_add(TRIM_AFTER_GROWTH) {
            // A big scrape's transient is freed but kept by the allocator;
            // hand it back so resident memory shows what is really held.
            memory::release_free_memory();
            resident = memory.refresh();
            trimmed_at = resident;
        }
        trimmed_at = trimmed_at.min(resident);
        telemetry.memory_resident_bytes.set(resident as i64);
        let Some(limit) = memory.limit() else {
            continue;
        };
        if (resident as f64) < memory::WARN_AT * limit as f64
            || warned.is_some_and(|at| at.elapsed() < MEMORY_WARN_EVERY)
        {
            continue;
        }
        warned = Some(tokio::time::Instant::now());
        let tables: Vec<String> = targets
            .iter()
            .filter_map(|t| {
                let (series, bytes) = t.series_usage()?;
                Some(format!(
                    "{}: {series} series, {}",
                    t.target().name,
                    memory::mib(bytes as u64)
                ))
            })
            .collect();
        tracing::warn!(
            resident = %memory::mib(resident),
            limit = %memory::mib(limit),
            buffered_samples = telemetry.buffered_samples.get(),
            series_tables = %tables.join("; "),
            "memory pressure: the checker is above {:.0} % of its memory limit",
            memory::WARN_AT * 100.0
        );
    }
}

/// How often old partitions are looked for.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Drops samples older than `retention`, at start and then hourly.
async fn enforce_retention(
    repo: Arc<dyn WriteRepository>,
    retention: Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(RETENTION_EVERY);
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Ok(age) = chrono::Duration::from_std(retention) else {
            return;
        };
        // A paused database must not hold up shutdown: cancellation wins.
        let dropped = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            dropped = repo.drop_before(chrono::Utc::now() - age) => dropped,
        };
        match dropped {
            Ok(0) => {}
            Ok(n) => tracing::info!(dropped = n, ?retention, "retention: old samples dropped"),
            Err(e) => {
                tracing::warn!(error = %e, "retention: could not drop old samples; will retry")
            }
        }
    }
}

/// Longest pause between two compaction passes.
const COMPACT_AT_LEAST_EVERY: Duration = Duration::from_secs(60);

/// Rewrites windows older than the head window into compressed chunks, at
/// start and then every chunk span (at least every minute). A pass cut short
/// by shutdown rolls its transaction back: nothing is half moved.
async fn compact(
    repo: Arc<dyn WriteRepository>,
    storage: StorageSettings,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(storage.chunk_span.min(COMPACT_AT_LEAST_EVERY));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (Ok(head), Ok(span)) = (
        chrono::Duration::from_std(storage.head_window),
        chrono::Duration::from_std(storage.chunk_span),
    ) else {
        return;
    };
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let moved = tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            moved = repo.compact(chrono::Utc::now() - head, span) => moved,
        };
        match moved {
            Ok(0) => {}
            Ok(n) => tracing::info!(samples = n, "compaction: samples compressed"),
            Err(e) => {
                tracing::warn!(error = %e, "compaction: could not compress samples; will retry")
            }
        }
    }
}

async fn health(State(state): State<AppState>) -> Health {
    let ping = tokio::time::timeout(Duration::from_secs(2), state.repo.ping()).await;
    let (status, output) = match ping {
        Ok(Ok(())) => (HealthStatus::Pass, None),
        Ok(Err(e)) => (HealthStatus::Fail, Some(format!("database: {e}"))),
        Err(_) => (
            HealthStatus::Fail,
            Some("database: ping timed out".to_owned()),
        ),
    };
    let database = HealthCheck {
        component_type: "datastore".into(),
        status,
        observed_value: None,
        observed_unit: None,
        output: output.clone(),
    };
    let (writer_status, writer_output) = writer_state(&state.telemetry);
    let buffered = HealthCheck {
        component_type: "component".into(),
        status: writer_status,
        observed_value: Some(state.telemetry.buffered_samples.get().into()),
        observed_unit: Some("samples".into()),
        output: writer_output.clone(),
    };
    let lag = HealthCheck {
        component_type: "component".into(),
        status: writer_status,
        observed_value: Some(state.telemetry.write_lag_seconds.get().into()),
        observed_unit: Some("s".into()),
        output: None,
    };
    // Behind but reachable is degraded (warn, still 200), never a failure:
    // restarting a checker that is catching up would only lose its buffer.
    let (status, output) = match (status, writer_status) {
        (HealthStatus::Pass, HealthStatus::Warn) => (HealthStatus::Warn, writer_output),
        other => (other.0, output),
    };
    Health {
        status,
        service_id: "checker".into(),
        version: VERSION.into(),
        output,
        checks: [
            ("database:reachable".to_owned(), vec![database]),
            ("writer:buffered".to_owned(), vec![buffered]),
            ("writer:lag".to_owned(), vec![lag]),
        ]
        .into(),
    }
}

/// Lag beyond which the writer counts as behind.
const BEHIND_AFTER: Duration = Duration::from_secs(5);

/// Whether the writer keeps up with what is scraped.
fn writer_state(telemetry: &Telemetry) -> (HealthStatus, Option<String>) {
    let lag = telemetry.write_lag_seconds.get();
    if lag > BEHIND_AFTER.as_secs_f64() {
        let output = format!(
            "writer is {lag:.1} s behind with {} samples buffered",
            telemetry.buffered_samples.get()
        );
        (HealthStatus::Warn, Some(output))
    } else {
        (HealthStatus::Pass, None)
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    http_metrics::render(&state.telemetry.registry)
}
