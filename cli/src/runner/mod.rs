//! Running scenarios: steps, scenarios, the whole suite, and what they report.

pub mod network;
pub mod report;
pub mod scenario;
pub mod step;
pub mod suite;
pub mod target;
