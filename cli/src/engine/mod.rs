//! The Docker engine: where it is (`DOCKER_HOST`, contexts, ssh), connecting
//! to it, the labels that mark what metrtest creates, and the typed errors of
//! every engine operation.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod labels;
pub mod ssh;

pub use client::{Client, connect, root_cause};
pub use error::{EngineError, Result};
