//! The checker's own metrics, served at its `/metrics`.

use metr_service::http_metrics::HttpMetrics;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::shard::Shard;

/// Counters and gauges the scheduler and the writer update.
#[derive(Clone)]
pub struct Telemetry {
    pub registry: Registry,
    pub http: HttpMetrics,
    pub scrapes: IntCounterVec,
    pub scrape_duration: HistogramVec,
    pub samples_written: IntCounter,
    pub checks_written: IntCounter,
    pub write_errors: IntCounter,
    pub buffered_samples: IntGauge,
    pub dropped_samples: IntCounter,
    pub write_lag_seconds: Gauge,
    /// Always 1, labelled with this replica's shard index and count.
    pub shard: IntGaugeVec,
    /// Targets this replica checks (its shard's share).
    pub targets: IntGauge,
    /// Resident memory, measured every second.
    pub memory_resident_bytes: IntGauge,
    /// The memory limit in force (cgroup or `memory_limit_bytes`), -1 when none.
    pub memory_limit_bytes: IntGauge,
    /// The most memory the settings let the checker need.
    pub memory_bound_bytes: IntGauge,
}

impl Telemetry {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let http = HttpMetrics::register(&registry, "checker")?;
        let scrapes = IntCounterVec::new(
            Opts::new(
                "checker_scrapes_total",
                "Checks run, by target and result (success or failure).",
            ),
            &["target", "result"],
        )?;
        let scrape_duration = HistogramVec::new(
            HistogramOpts::new(
                "checker_scrape_duration_seconds",
                "Duration of one check of a target.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["target"],
        )?;
        let samples_written = IntCounter::new(
            "checker_samples_written_total",
            "Samples stored in the database.",
        )?;
        let checks_written = IntCounter::new(
            "checker_checks_written_total",
            "Checks stored in the database.",
        )?;
        let write_errors = IntCounter::new(
            "checker_write_errors_total",
            "Failed attempts to write a batch.",
        )?;
        let buffered_samples = IntGauge::new(
            "checker_buffered_samples",
            "Samples held in memory, waiting to be written.",
        )?;
        let dropped_samples = IntCounter::new(
            "checker_dropped_samples_total",
            "Samples dropped: the buffer was full, or the database rejected them.",
        )?;
        let write_lag_seconds = Gauge::new(
            "checker_write_lag_seconds",
            "Age of the oldest batch waiting to be written: how far behind storage is.",
        )?;
        let shard = IntGaugeVec::new(
            Opts::new(
                "checker_shard",
                "This replica's shard: 1, labelled with its index and the shard count.",
            ),
            &["index", "count"],
        )?;
        let targets = IntGauge::new(
            "checker_targets",
            "Targets this replica checks: its shard's share of the configuration.",
        )?;
        let memory_resident_bytes = IntGauge::new(
            "checker_memory_resident_bytes",
            "Resident memory of the checker, measured every second.",
        )?;
        let memory_limit_bytes = IntGauge::new(
            "checker_memory_limit_bytes",
            "The checker's memory limit (its cgroup's, or memory_limit_bytes); -1 when none.",
        )?;
        let memory_bound_bytes = IntGauge::new(
            "checker_memory_bound_bytes",
            "The most memory the checker's settings let it need (README: the checker's memory).",
        )?;
        registry.register(Box::new(memory_resident_bytes.clone()))?;
        registry.register(Box::new(memory_limit_bytes.clone()))?;
        registry.register(Box::new(memory_bound_bytes.clone()))?;
        registry.register(Box::new(shard.clone()))?;
        registry.register(Box::new(targets.clone()))?;
        registry.register(Box::new(scrapes.clone()))?;
        registry.register(Box::new(scrape_duration.clone()))?;
        registry.register(Box::new(samples_written.clone()))?;
        registry.register(Box::new(checks_written.clone()))?;
        registry.register(Box::new(write_errors.clone()))?;
        registry.register(Box::new(buffered_samples.clone()))?;
        registry.register(Box::new(dropped_samples.clone()))?;
        registry.register(Box::new(write_lag_seconds.clone()))?;
        Ok(Telemetry {
            registry,
            http,
            scrapes,
            scrape_duration,
            samples_written,
            checks_written,
            write_errors,
            buffered_samples,
            dropped_samples,
            write_lag_seconds,
            shard,
            targets,
            memory_resident_bytes,
            memory_limit_bytes,
            memory_bound_bytes,
        })
    }

    /// Records which shard this replica is and how many targets it owns.
    pub fn record_shard(&self, shard: Shard, targets: usize) {
        self.shard.reset();
        self.shard
            .with_label_values(&[shard.index().to_string(), shard.count().to_string()])
            .set(1);
        self.targets.set(targets as i64);
    }
}
