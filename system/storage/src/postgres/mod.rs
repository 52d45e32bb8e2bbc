//! The PostgreSQL repository: binary COPY of block rows for writes, keyset walks
//! over block rows for reads, day partitions for retention.

mod chunk_read;
mod compact;
mod partitions;
mod read;
mod repo;
mod statement;
mod usage;
mod write;

pub use compact::{BLOCKS_PER_STEP, merge, window_of};
pub use repo::{PgRepository, PoolOptions};
pub use write::SERIES_PER_STATEMENT;
