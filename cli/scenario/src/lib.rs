//! The scenario format of metrtest: the model, loading with file:line:column
//! diagnostics, matchers, templates and series selectors. No engine, no network.

pub mod capture;
pub mod compare;
mod decode;
mod decode_expect;
mod decode_network;
mod decode_step;
pub mod diagnostic;
pub mod error;
pub mod expect;
pub mod files;
pub mod isolation;
pub mod load;
pub mod matcher;
pub mod model;
pub mod network;
pub mod references;
pub mod selector;
pub mod span;
pub mod suggest;
pub mod template;
pub mod yaml;
