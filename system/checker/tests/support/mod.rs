//! What the checker's black-box tests share.

use std::sync::Arc;
use std::time::Duration;

use checker::scrape::{PrometheusTarget, SampleLimits};
use checker::target_series::TargetSeries;
use metr_domain::TargetKind;
use metr_storage::TargetRef;

/// A Prometheus target `name` at `url`, with small limits and `timeout`.
pub fn prometheus_target(name: &str, url: String, timeout: Duration) -> PrometheusTarget {
    PrometheusTarget {
        target: TargetRef {
            name: name.into(),
            kind: TargetKind::Prometheus,
            url,
        },
        labels: Default::default(),
        timeout,
        max_body_bytes: 1 << 20,
        limits: SampleLimits {
            max_samples: 100,
            max_age: Duration::from_secs(3600),
            max_ahead: Duration::from_secs(600),
        },
        series: TargetSeries::new(1000, 100),
        memory: Arc::new(checker::memory::MemoryWatch::new(None)),
        client: checker::fetch::client().unwrap(),
    }
}
