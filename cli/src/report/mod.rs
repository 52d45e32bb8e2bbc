//! Reporters and renderers: live terminal progress, the end-of-run table,
//! JUnit XML, JSON (written and merged), TAP, GitHub annotations, a stack's
//! services.

pub mod end;
pub mod github;
pub mod json;
pub mod junit;
pub mod live;
pub mod merge;
pub mod stack;
pub mod table;
pub mod tap;
