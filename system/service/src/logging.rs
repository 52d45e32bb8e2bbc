//! Log setup: human text by default, JSON lines for log collectors.

use tracing::Subscriber;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logging options every service binary accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `checker=debug,info`.
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// Installs the global subscriber, logs only; call once from `main`.
/// Services that trace call [`crate::traces::init`] instead.
pub fn init(args: &LogArgs) {
    tracing_subscriber::registry().with(layer(args)).init();
}

/// The log lines' layer, filtered by `args.log`.
///
/// It sees events only, never spans: spans are for traces, and a log line
/// stays the same whether tracing is on or not (no span prefix in text, no
/// `span`/`spans` keys in JSON).
pub fn layer<S>(args: &LogArgs) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let env = EnvFilter::try_new(&args.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = env.and(filter_fn(|meta| !meta.is_span()));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => fmt.with_ansi(false).with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).with_filter(filter).boxed(),
    }
}
