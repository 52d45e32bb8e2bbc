//! Everything that talks to the Docker engine, through bollard only.

pub mod attach;
pub mod context;
pub mod control;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod faults;
pub mod images;
pub mod labels;
pub mod layers;
pub mod network;
pub mod partition;
pub mod postgres_image;
pub mod reaper;
pub mod spec;
pub mod ssh;
pub mod stack;
pub mod state;
pub mod teardown;

pub use error::{EngineError, Result};
