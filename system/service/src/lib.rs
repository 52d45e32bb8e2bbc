//! Plumbing every service of the system shares, so each binary stays thin.

pub mod error;
pub mod health;
pub mod health_probe;
pub mod http_client;
pub mod http_metrics;
pub mod logging;
mod otlp_client;
pub mod parse_errors;
pub mod server;
pub mod shutdown;
#[cfg(any(test, feature = "testing"))]
pub mod trace_capture;
pub mod trace_context;
pub mod traces;
