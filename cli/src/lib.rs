//! metrtest: integration tests of the metr system on Docker.

pub mod cli;
pub mod commands;
pub mod config;
#[cfg(feature = "containers")]
pub mod containers;
pub mod engine;
pub mod exit;
pub mod interrupt;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod stack;
pub mod ui;

/// The scenario format (its own crate, with no I/O beyond reading files).
pub use metrtest_scenario as scenario;
