//! gometr's own metrics: the series scenarios and the checker look at.

use std::fmt::Write;

use std::sync::Mutex;

use crate::control::SeriesProfile;
use crate::realistic::Realistic;
use metr_service::http_metrics::HttpMetrics;
use prometheus::{Encoder, Gauge, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

/// Every metric gometr exposes.
pub struct Telemetry {
    pub registry: Registry,
    pub http: HttpMetrics,
    /// Goes up by exactly one on every `/metrics` request: proves no scrape was lost.
    pub scrapes: IntCounter,
    pub uptime: Gauge,
    pub start: std::time::Instant,
    /// The `realistic` profile's series, advanced by each scrape that shows them.
    realistic: Mutex<Realistic>,
}

impl Telemetry {
    pub fn new(version: &str) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let http = HttpMetrics::register(&registry, "gometr")?;
        let scrapes = IntCounter::new(
            "gometr_scrapes_total",
            "Requests to /metrics, this one included.",
        )?;
        let uptime = Gauge::new("gometr_uptime_seconds", "Seconds since gometr started.")?;
        let info = IntGaugeVec::new(Opts::new("gometr_info", "Build information."), &["version"])?;
        info.with_label_values(&[version]).set(1);
        let threads = IntGauge::new("gometr_worker_threads", "Tokio worker threads.")?;
        threads.set(
            std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
        );
        registry.register(Box::new(scrapes.clone()))?;
        registry.register(Box::new(uptime.clone()))?;
        registry.register(Box::new(info))?;
        registry.register(Box::new(threads))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Telemetry {
            registry,
            http,
            scrapes,
            uptime,
            start: std::time::Instant::now(),
            realistic: Mutex::new(Realistic::new(0)),
        })
    }

    /// The exposition for one scrape, with the synthetic series `synthetic` asks for.
    pub fn render(&self, synthetic: &Synthetic) -> String {
        self.scrapes.inc();
        self.uptime.set(self.start.elapsed().as_secs_f64());
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut text = String::from_utf8(buf).unwrap_or_default();
        let width = synthetic.label_value_bytes as usize;
        if synthetic.profile == SeriesProfile::Realistic {
            let mut realistic = self.realistic.lock().expect("realistic series lock");
            if realistic.seed() != synthetic.seed {
                *realistic = Realistic::new(synthetic.seed);
            }
            realistic.render(synthetic.extra_series, &mut text);
        } else if synthetic.extra_series > 0 {
            text.push_str("# HELP gometr_synthetic_series Synthetic series for load tests.\n");
            text.push_str("# TYPE gometr_synthetic_series gauge\n");
            for i in 0..synthetic.extra_series {
                let _ = writeln!(
                    text,
                    "gometr_synthetic_series{{index=\"{i:0>width$}\"}} {i}"
                );
            }
        }
        if synthetic.churn_series > 0 {
            // The scrape's own number makes every label set new: no earlier
            // scrape exposed it, none later will.
            let scrape = self.scrapes.get();
            text.push_str("# HELP gometr_churn_series Series that exist for one scrape only.\n");
            text.push_str("# TYPE gometr_churn_series gauge\n");
            for i in 0..synthetic.churn_series {
                let _ = writeln!(
                    text,
                    "gometr_churn_series{{scrape=\"{scrape}\",index=\"{i:0>width$}\"}} {i}"
                );
            }
        }
        text
    }
}

/// The synthetic series of one scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Synthetic {
    /// `gometr_synthetic_series`, the same label sets every scrape.
    pub extra_series: u32,
    /// `gometr_churn_series`, label sets new to every scrape.
    pub churn_series: u32,
    /// Minimum length of the `index` label values (zero-padded), 0 for none.
    pub label_value_bytes: u32,
    /// What the `extra_series` samples look like.
    pub profile: SeriesProfile,
    /// Seed of the realistic profile.
    pub seed: u64,
}
