//! A stack's life on the engine: its spec from the configuration, the images
//! it needs, starting it in waves until every service is ready, the reaper
//! that outlives us, faults on its links, attaching to one that runs, and
//! teardown. The runner asks; nothing here knows about scenarios.

pub mod attach;
pub mod build_context;
pub mod compose;
pub mod containers;
pub mod control;
pub mod faults;
pub mod image_archive;
pub mod images;
pub mod lifecycle;
pub mod limits;
pub mod postgres_image;
pub mod private_network;
pub mod progress;
pub mod provision;
pub mod readiness;
pub mod reaper;
pub mod services;
pub mod spec;
pub mod state;
pub mod teardown;

pub use containers::{container_request, volume_name};
pub use lifecycle::*;
pub use readiness::{published_port, wait_ready};
