//! Configuration that is not Docker: environment files (`metrtest.yaml`)
//! laid one over another.

pub mod layers;
