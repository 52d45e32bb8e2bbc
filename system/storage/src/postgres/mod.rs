//! The PostgreSQL repository: binary COPY of block rows for writes, keyset walks
//! over block rows for reads, day partitions for retention.

mod partitions;
mod read;
mod repo;
mod usage;
mod write;

pub use repo::{PgRepository, PoolOptions};
pub use write::SERIES_PER_STATEMENT;
