//! The Docker engine: where it is (`DOCKER_HOST`, contexts, ssh), its client
//! (the only code that speaks bollard: one method per operation, each with
//! its typed error), the labels that mark what metrtest creates, and what the
//! engine reports, in metrtest's own types.

pub mod client;
pub mod endpoint;
pub mod error;
pub mod labels;
pub mod model;
pub mod resources;
pub mod ssh;

pub use client::{Client, connect, root_cause};
pub use error::{EngineError, Result};
pub use model::{
    Attachment, Container, ContainerDetails, ContainerRequest, ContainerState, NetworkEndpoint,
    Publish, PublishedPort, Subnet,
};
