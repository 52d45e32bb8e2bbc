//! Tests only: spans captured in memory by the same layer the services use.

pub use opentelemetry;
pub use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// Every span finished on this thread while it lives, every trace sampled.
///
/// The subscriber is the thread's default, not the global one: a test on
/// tokio's current-thread runtime sees the spans of its own server and
/// client, and tests running beside it see none of them.
pub struct Capture {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _guard: DefaultGuard,
}

impl Capture {
    pub fn start() -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(crate::traces::layer(&provider));
        let guard = tracing::subscriber::set_default(subscriber);
        Capture {
            exporter,
            provider,
            _guard: guard,
        }
    }

    /// The spans finished so far, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        let _ = self.provider.force_flush();
        self.exporter.get_finished_spans().unwrap_or_default()
    }
}

/// A span's attribute as text, if it has it.
pub fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}
