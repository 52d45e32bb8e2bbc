//! The scenario format: model, loading with positions, matchers, templates, selectors.

pub mod load;
pub mod matcher;
pub mod model;
pub mod selector;
pub mod template;
