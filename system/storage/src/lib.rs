//! Storage of checks and samples behind a write and a read repository, each with a
//! PostgreSQL and an in-memory implementation, plus the schema migrations.

pub mod batch;
pub mod blocks;
pub mod chunk;
pub mod cursor;
pub mod error;
pub mod memory;
pub mod migrate;
pub mod postgres;
pub mod query;
pub mod repository;
pub mod secret;
pub mod series;
pub mod sql;
pub mod startup;
pub mod usage;

pub use batch::{Batch, TargetRef};
pub use cursor::Cursor;
pub use error::StorageError;
pub use memory::MemoryRepository;
pub use postgres::{PgRepository, SERIES_PER_STATEMENT};
pub use query::{CheckQuery, MetricQuery, Page, SeriesQuery};
pub use repository::{ReadRepository, WriteRepository};
pub use secret::DatabaseUrl;
pub use series::{
    DuplicateSample, Recorder, ScrapeSamples, ScrapedSample, SeriesIndex, SeriesTable,
};
pub use usage::{StoragePart, StorageUsage};
