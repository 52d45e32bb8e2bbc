//! The checker: polls configured targets on a schedule and stores what it sees.

pub mod app;
pub mod checkable;
pub mod config;
pub mod fetch;
pub mod memory;
pub mod probe;
pub mod schedule;
pub mod scrape;
pub mod shard;
pub mod target_series;
pub mod telemetry;
pub mod writer;

pub use app::Application;
pub use config::Settings;
