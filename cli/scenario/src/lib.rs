//! The scenario format of metrtest: the model, loading with file:line:column
//! diagnostics, matchers, templates and series selectors. No engine, no network.

pub mod files;
pub mod load;
pub mod matcher;
pub mod model;
pub mod network;
pub mod references;
pub mod selector;
pub mod template;
