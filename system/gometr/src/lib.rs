//! gometr: the demo target. It exposes Prometheus metrics and its health, and lets
//! scenarios inject faults at run time through `/control`.

pub mod app;
pub mod body;
pub mod control;
pub mod realistic;
pub mod telemetry;

pub use app::Application;
pub use control::{Control, SeriesProfile};
