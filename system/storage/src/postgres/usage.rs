//! What the sample storage holds and takes on disk, by part.

use super::repo::PgRepository;
use crate::error::StorageError;
use crate::usage::{StoragePart, StorageUsage};

/// Samples in block rows (present slots) and the bytes of every partition of
/// `sample_blocks`, its indexes and TOAST included. Counting samples reads
/// every row: cheap on a head of the last hour, slow on days of rows.
const HEAD: &str = "\
    SELECT (SELECT coalesce(sum(cardinality(vals) - cardinality(array_positions(vals, NULL))), 0)::bigint \
              FROM sample_blocks), \
           (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint \
              FROM pg_partition_tree('sample_blocks'))";

impl PgRepository {
    pub(super) async fn read_usage(&self) -> Result<StorageUsage, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_one(HEAD, &[])
            .await
            .map_err(|e| StorageError::database("measure the sample storage", e))?;
        let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
        Ok(StorageUsage {
            head: StoragePart {
                samples: count(0),
                bytes: count(1),
            },
            compressed: StoragePart::default(),
        })
    }
}
