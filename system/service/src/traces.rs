//! Traces: the services' `tracing` spans, exported over OTLP/HTTP (protobuf)
//! when an endpoint is configured by the standard OpenTelemetry variables.
//!
//! Without `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! no exporter and no layer is installed: every span is disabled at its call
//! site, which costs a load and a branch. With one, the SDK reads the rest of
//! the standard variables itself (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_BSP_*`,
//! `OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`); [`export_timeout`] reads
//! `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT` for our HTTP client.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
pub use opentelemetry_sdk::trace::Sampler;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::logging::{self, LogArgs};
use crate::otlp_client::ExportClient;

/// How long one export may take when `OTEL_EXPORTER_OTLP_TIMEOUT` does not say.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// What decides whether and how a service traces, read from the environment.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// The service name when `OTEL_SERVICE_NAME` (or `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`) does not give one.
    pub service: &'static str,
    /// Whether an OTLP endpoint is configured: nothing is traced without one.
    pub endpoint: bool,
    /// Whether `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names the service.
    pub named: bool,
    /// Whether `OTEL_TRACES_SAMPLER` chooses the sampler.
    pub sampler_configured: bool,
    /// The sampler when `OTEL_TRACES_SAMPLER` is not set.
    pub default_sampler: Sampler,
    /// Whether `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turns tracing off.
    pub disabled: bool,
}

impl TraceSettings {
    /// The settings of `service` from the process environment.
    pub fn from_env(service: &'static str) -> Self {
        Self::from_lookup(service, |k| std::env::var(k).ok())
    }

    /// The settings of `service` from any variable lookup (tests pass a map).
    pub fn from_lookup(service: &'static str, var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |k: &str| var(k).is_some_and(|v| !v.trim().is_empty());
        let endpoint =
            set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT");
        let named = set("OTEL_SERVICE_NAME")
            || var("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
                a.split(',')
                    .any(|kv| kv.trim_start().starts_with("service.name="))
            });
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true")
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none");
        TraceSettings {
            service,
            endpoint,
            named,
            sampler_configured: set("OTEL_TRACES_SAMPLER"),
            default_sampler: Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            disabled,
        }
    }

    /// Uses `sampler` unless `OTEL_TRACES_SAMPLER` chooses one.
    pub fn with_default_sampler(mut self, sampler: Sampler) -> Self {
        self.default_sampler = sampler;
        self
    }

    /// Whether spans are exported at all.
    pub fn enabled(&self) -> bool {
        self.endpoint && !self.disabled
    }
}

/// Why traces cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("the OTLP exporter needs a tokio runtime: call from within one")]
    NoRuntime,
}

/// The tracer provider installed by [`init`], if any: shut it down before
/// exiting so that the spans still queued are sent.
#[must_use = "shut it down before exiting, or the last spans are lost"]
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// Whether an exporter is installed.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes the spans still queued and stops the exporter.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK blocks until its export thread is done, and that thread
        // sends through this runtime: wait for it off the runtime's threads.
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(e)) = done {
            tracing::warn!(error = %e, "flushing the last spans failed");
        }
    }
}

/// Installs the global subscriber: log lines as [`logging::init`] writes them,
/// plus spans exported over OTLP when `settings` have an endpoint. Call once
/// from `main`, within the tokio runtime.
pub fn init(log: &LogArgs, settings: &TraceSettings) -> Result<Traces, TraceError> {
    let provider = provider(settings)?;
    let otel = provider.as_ref().map(layer);
    tracing_subscriber::registry()
        .with(logging::layer(log))
        .with(otel)
        .init();
    Ok(Traces { provider })
}

/// The provider exporting over OTLP/HTTP in batches, or `None` when tracing is off.
pub fn provider(settings: &TraceSettings) -> Result<Option<SdkTracerProvider>, TraceError> {
    if !settings.enabled() {
        return Ok(None);
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| TraceError::NoRuntime)?;
    let client = ExportClient::new(runtime, export_timeout())
        .map_err(|e| TraceError::Exporter(format!("build the HTTP client: {e}")))?;
    // The endpoint, headers and timeout come from the OTEL_EXPORTER_OTLP_* variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(client)
        .build()
        .map_err(|e| TraceError::Exporter(e.to_string()))?;
    let mut resource = Resource::builder();
    if !settings.named {
        resource = resource.with_service_name(settings.service);
    }
    let mut builder = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build());
    if !settings.sampler_configured {
        builder = builder.with_sampler(settings.default_sampler.clone());
    }
    Ok(Some(builder.build()))
}

/// The export timeout of `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds): our client enforces it, the
/// exporter does not.
fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.trim().parse::<u64>().ok())
    .map_or(EXPORT_TIMEOUT, Duration::from_millis)
}

/// The layer that turns `tracing` spans into OpenTelemetry spans of `provider`.
///
/// It sees spans at INFO and above (the services' spans for traces; library
/// spans are DEBUG or TRACE) and, as span events, warnings and errors logged
/// inside them. A span's name is its `otel.name` field, its kind `otel.kind`,
/// its status `otel.status_code` / `otel.status_description`; every other
/// field is an attribute.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let tracer = provider.tracer("metr");
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // Our spans carry a `target` attribute of their own (the scraped target).
        .with_target(false)
        .with_level(false)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(|meta| {
            let most_verbose = if meta.is_span() {
                Level::INFO
            } else {
                Level::WARN
            };
            *meta.level() <= most_verbose
        }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> TraceSettings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TraceSettings::from_lookup("api", |k| vars.get(k).cloned())
    }

    #[tokio::test]
    async fn without_an_endpoint_no_exporter_is_installed() {
        for vars in [
            &[][..],
            &[
                ("OTEL_SERVICE_NAME", "api"),
                ("OTEL_TRACES_SAMPLER", "always_on"),
            ],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")],
        ] {
            let settings = settings(vars);
            assert!(!settings.enabled(), "{vars:?}");
            assert!(provider(&settings).unwrap().is_none(), "{vars:?}");
        }
    }

    #[tokio::test]
    async fn an_endpoint_installs_one_unless_tracing_is_disabled() {
        let on = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")]);
        let provider = provider(&on).unwrap().expect("an exporter");
        provider.shutdown().ok();
        let traces_only = settings(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:1/v1/traces",
        )]);
        assert!(traces_only.enabled());
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let off = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1"), off]);
            assert!(super::provider(&off).unwrap().is_none());
        }
    }

    #[test]
    fn the_service_is_named_by_the_environment_first() {
        assert!(!settings(&[]).named);
        assert!(settings(&[("OTEL_SERVICE_NAME", "gometr-2")]).named);
        assert!(settings(&[("OTEL_RESOURCE_ATTRIBUTES", "a=b, service.name=x")]).named);
        assert!(!settings(&[("OTEL_RESOURCE_ATTRIBUTES", "service.namespace=x")]).named);
    }
}
