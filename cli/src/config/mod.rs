//! Configuration that is not Docker: the environment file (`metrtest.yaml`)
//! and files laid one over another.

pub mod envfile;
pub mod layers;
