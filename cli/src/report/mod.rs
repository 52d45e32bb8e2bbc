//! Report renderers: terminal table, JUnit XML, JSON.

pub mod json;
pub mod junit;
pub mod table;
