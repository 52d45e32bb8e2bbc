//! Plumbing every service of the system shares, so each binary stays thin.

pub mod error;
pub mod health;
pub mod http_metrics;
pub mod logging;
pub mod parse_errors;
pub mod server;
pub mod shutdown;
