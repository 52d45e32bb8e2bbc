//! What the sample storage holds and takes on disk, by part.

use super::repo::PgRepository;
use super::statement::traced;
use crate::error::StorageError;
use crate::usage::{StoragePart, StorageUsage};

type Client = deadpool_postgres::Object;

/// Block rows counted exactly per request: about a second's read at 128
/// samples a row. Counting days of rows would outlast the API's query
/// timeout, so partitions beyond, oldest first, are estimated from their row
/// count as of the last ANALYZE and a sample of their pages.
pub const EXACT_ROWS: f64 = 1_000_000.0;

/// Each partition of `sample_blocks`, newest first: its name, bytes (indexes
/// and TOAST included) and rows as of the last ANALYZE (-1: never analysed).
const PARTITIONS: &str = "\
    SELECT p.relid::regclass::text, pg_total_relation_size(p.relid), c.reltuples::float8 \
    FROM pg_partition_tree('sample_blocks') p JOIN pg_class c ON c.oid = p.relid \
    WHERE p.isleaf ORDER BY c.relname DESC";

/// Samples in chunks (a column of each chunk row, not its data) and the bytes
/// of every partition of `sample_chunks`, indexes and TOAST included.
const COMPRESSED: &str = "\
    SELECT (SELECT coalesce(sum(samples), 0)::bigint FROM sample_chunks), \
           (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint \
              FROM pg_partition_tree('sample_chunks'))";

/// Rows an estimate reads, about.
const SAMPLED_ROWS: f64 = 10_000.0;

/// Present slots of a row.
const PRESENT: &str = "cardinality(vals) - cardinality(array_positions(vals, NULL))";

impl PgRepository {
    pub(super) async fn read_usage(&self) -> Result<StorageUsage, StorageError> {
        self.read_usage_counting_up_to(EXACT_ROWS).await
    }

    /// [`crate::ReadRepository::usage`], counting at most about `exact_rows`
    /// block rows exactly and estimating the samples of the others.
    pub async fn read_usage_counting_up_to(
        &self,
        exact_rows: f64,
    ) -> Result<StorageUsage, StorageError> {
        let client = self.client().await?;
        let partitions = traced("SELECT pg_class", Vec::len, async {
            client.query(PARTITIONS, &[]).await.map_err(failed)
        })
        .await?;
        let mut head = StoragePart::default();
        let mut budget = exact_rows;
        for partition in &partitions {
            let (name, bytes, rows): (String, i64, f64) =
                (partition.get(0), partition.get(1), partition.get(2));
            head.bytes += bytes.max(0) as u64;
            // A partition never analysed is new, so small.
            let exact = rows < 0.0 || rows <= budget;
            budget -= rows.max(0.0);
            head.samples += if exact {
                exact_samples(&client, &name).await?
            } else {
                estimated_samples(&client, &name, rows).await?
            };
        }
        let row = traced("SELECT sample_chunks", one, async {
            client.query_one(COMPRESSED, &[]).await.map_err(failed)
        })
        .await?;
        let compressed = StoragePart {
            samples: row.get::<_, i64>(0).max(0) as u64,
            bytes: row.get::<_, i64>(1).max(0) as u64,
        };
        Ok(StorageUsage { head, compressed })
    }
}

/// A statement that returns one row.
fn one(_: &tokio_postgres::Row) -> usize {
    1
}

fn failed(e: tokio_postgres::Error) -> StorageError {
    StorageError::database("measure the sample storage", e)
}

async fn exact_samples(client: &Client, partition: &str) -> Result<u64, StorageError> {
    let sql = format!("SELECT coalesce(sum({PRESENT}), 0)::bigint FROM {partition}");
    let row = traced("SELECT sample_blocks", one, async {
        client.query_one(&sql, &[]).await.map_err(failed)
    })
    .await?;
    Ok(row.get::<_, i64>(0).max(0) as u64)
}

async fn estimated_samples(
    client: &Client,
    partition: &str,
    rows: f64,
) -> Result<u64, StorageError> {
    // Pages enough for about SAMPLED_ROWS rows, at least 0.1 % of them.
    let percent = (100.0 * SAMPLED_ROWS / rows.max(1.0)).clamp(0.1, 100.0);
    let sql =
        format!("SELECT avg({PRESENT})::float8 FROM {partition} TABLESAMPLE SYSTEM ({percent})");
    let per_row: Option<f64> = traced("SELECT sample_blocks", one, async {
        client.query_one(&sql, &[]).await.map_err(failed)
    })
    .await?
    .get(0);
    match per_row {
        Some(per_row) => Ok((per_row * rows).round().max(0.0) as u64),
        // The sample missed every row: count them after all.
        None => exact_samples(client, partition).await,
    }
}
