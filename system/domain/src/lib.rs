//! The monitored system's model, shared by the checker and the API, and the
//! exposition parsers: lenient Prometheus text and strict OpenMetrics. No
//! I/O lives here.

pub mod exposition;
pub mod format;
pub mod model;
pub mod openmetrics;
pub mod value;

pub use model::{Check, CheckStatus, Labels, Sample, Series, TargetKind, TargetSummary};
pub use value::SampleValue;
