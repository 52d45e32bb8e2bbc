//! The API: serves stored checks and samples over the `/api/v1` contract.

pub mod app;
pub mod error;
pub mod handlers;
pub mod openapi;
pub mod params;
pub mod staleness;

pub use app::{Application, Options, router};
