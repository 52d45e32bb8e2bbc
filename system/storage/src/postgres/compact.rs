//! Compaction: block rows of closed windows become compressed chunks.
//!
//! One step takes one target's rows of one window for up to [`BLOCKS_PER_STEP`]
//! blocks, in one transaction under an advisory lock on the target, so that
//! sharded checkers compacting at once wait for each other instead of racing:
//!
//! 1. `DELETE … RETURNING` the head rows: exactly the rows read are removed;
//!    a row a writer commits meanwhile stays in the head for the next pass.
//! 2. Take out the window's chunks of those blocks, if an earlier pass made
//!    them (the head then held a retried batch, or samples that came late).
//! 3. Merge: a sample a chunk holds wins, as the first write of a sample wins
//!    in the head; write one chunk per block back.
//!
//! Nothing is deleted that is not written back in the same transaction, and a
//! pass over data already compacted finds no head rows and changes nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tokio_postgres::types::ToSql;

use super::repo::PgRepository;
use crate::chunk::{self, Row};
use crate::error::StorageError;

type Client = deadpool_postgres::Object;

/// Advisory lock class of compaction (with the target id as the second key).
const LOCK_CLASS: i32 = 0x6d65_7472;
/// Blocks compacted per transaction: at 1 s scrapes and 10-minute windows,
/// 16 blocks are about 10 MB of block rows in memory at once.
pub const BLOCKS_PER_STEP: i64 = 16;
const MICROS_PER_DAY: i64 = 86_400_000_000;

fn failed(e: tokio_postgres::Error) -> StorageError {
    StorageError::database("compact samples", e)
}

fn timestamp(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The window of `span_us` holding `ts`, cut at the end of its UTC day so
/// that a chunk stays in one day partition.
pub fn window_of(ts: i64, span_us: i64) -> (i64, i64) {
    let start = ts.div_euclid(span_us) * span_us;
    let day_end = (ts.div_euclid(MICROS_PER_DAY) + 1) * MICROS_PER_DAY;
    (
        start.max(ts.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY),
        (start + span_us).min(day_end),
    )
}

/// Rows of one block, chunk rows first: a sample already in a chunk keeps
/// its value, the head fills only the slots the chunk lacks.
pub fn merge(chunk_rows: Vec<Row>, head_rows: Vec<Row>) -> Vec<Row> {
    let mut by_ts: BTreeMap<i64, Vec<Option<f64>>> = BTreeMap::new();
    for (ts, vals) in chunk_rows.into_iter().chain(head_rows) {
        let kept = by_ts.entry(ts).or_default();
        if kept.len() < vals.len() {
            kept.resize(vals.len(), None);
        }
        for (slot, v) in vals.into_iter().enumerate() {
            if kept[slot].is_none() {
                kept[slot] = v;
            }
        }
    }
    by_ts.into_iter().collect()
}

impl PgRepository {
    /// Compacts every window of `span` that ends at or before `cutoff`;
    /// returns the samples moved out of the head.
    pub(super) async fn compact_before(
        &self,
        cutoff: DateTime<Utc>,
        span: Duration,
    ) -> Result<u64, StorageError> {
        let span_us = span.num_microseconds().unwrap_or(i64::MAX).max(1_000_000);
        let end = cutoff.timestamp_micros().div_euclid(span_us) * span_us;
        let mut client = self.client().await?;
        let targets: Vec<i32> = client
            .query("SELECT id FROM targets ORDER BY id", &[])
            .await
            .map_err(failed)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut moved = 0;
        for target in targets {
            while let Some(oldest) = oldest_before(&client, target, end).await? {
                let (from, to) = window_of(oldest, span_us);
                let mut block = 0;
                while let Some(first) = first_block(&client, target, from, to, block).await? {
                    moved += compact_step(&mut client, target, (from, to), first).await?;
                    block = first + BLOCKS_PER_STEP;
                }
            }
        }
        Ok(moved)
    }
}

/// The oldest head timestamp of `target` before `end` (µs).
async fn oldest_before(
    client: &Client,
    target: i32,
    end: i64,
) -> Result<Option<i64>, StorageError> {
    let row = client
        .query_one(
            "SELECT min(ts) FROM sample_blocks WHERE target_id = $1 AND ts < $2",
            &[&target, &timestamp(end)],
        )
        .await
        .map_err(failed)?;
    Ok(row
        .get::<_, Option<DateTime<Utc>>>(0)
        .map(|t| t.timestamp_micros()))
}

/// The lowest block from `from_block` on with head rows in the window.
async fn first_block(
    client: &Client,
    target: i32,
    from: i64,
    to: i64,
    from_block: i64,
) -> Result<Option<i64>, StorageError> {
    let row = client
        .query_one(
            "SELECT min(block) FROM sample_blocks \
             WHERE target_id = $1 AND ts >= $2 AND ts < $3 AND block >= $4",
            &[&target, &timestamp(from), &timestamp(to), &from_block],
        )
        .await
        .map_err(failed)?;
    Ok(row.get(0))
}

/// Compacts blocks `first..first + BLOCKS_PER_STEP` of one target's window.
async fn compact_step(
    client: &mut Client,
    target: i32,
    (from, to): (i64, i64),
    first: i64,
) -> Result<u64, StorageError> {
    let last = first + BLOCKS_PER_STEP;
    let tx = client.transaction().await.map_err(failed)?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LOCK_CLASS, &target],
    )
    .await
    .map_err(failed)?;
    let day = NaiveDate::default() + Duration::days(from.div_euclid(MICROS_PER_DAY));
    tx.execute("SELECT metr_ensure_chunk_partition($1)", &[&day])
        .await
        .map_err(failed)?;
    let range: [&(dyn ToSql + Sync); 5] =
        [&target, &timestamp(from), &timestamp(to), &first, &last];
    let head = tx
        .query(
            "DELETE FROM sample_blocks WHERE target_id = $1 AND ts >= $2 AND ts < $3 \
             AND block >= $4 AND block < $5 RETURNING block, ts, vals",
            &range,
        )
        .await
        .map_err(failed)?;
    let chunks = tx
        .query(
            "DELETE FROM sample_chunks WHERE target_id = $1 AND ts_from >= $2 AND ts_from < $3 \
             AND block >= $4 AND block < $5 RETURNING block, data",
            &range,
        )
        .await
        .map_err(failed)?;
    let mut blocks: BTreeMap<i64, (Vec<Row>, Vec<Row>)> = BTreeMap::new();
    for row in &chunks {
        let data: &[u8] = row.get(1);
        let rows = chunk::decode(data)?;
        blocks.entry(row.get(0)).or_default().0.extend(rows);
    }
    let mut moved = 0;
    for row in &head {
        let ts: DateTime<Utc> = row.get(1);
        let vals: Vec<Option<f64>> = row.get(2);
        moved += vals.iter().flatten().count() as u64;
        blocks
            .entry(row.get(0))
            .or_default()
            .1
            .push((ts.timestamp_micros(), vals));
    }
    let mut columns = Columns::default();
    for (block, (chunk_rows, head_rows)) in blocks {
        columns.push(block, merge(chunk_rows, head_rows));
    }
    tx.execute(
        "INSERT INTO sample_chunks (target_id, block, ts_from, ts_to, n_rows, samples, data) \
         SELECT $1, * FROM unnest($2::int8[], $3::timestamptz[], $4::timestamptz[], \
                                  $5::int4[], $6::int4[], $7::bytea[])",
        &[
            &target,
            &columns.block,
            &columns.ts_from,
            &columns.ts_to,
            &columns.n_rows,
            &columns.samples,
            &columns.data,
        ],
    )
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    Ok(moved)
}

/// The chunk rows of one step, as arrays for one INSERT.
#[derive(Default)]
struct Columns {
    block: Vec<i64>,
    ts_from: Vec<DateTime<Utc>>,
    ts_to: Vec<DateTime<Utc>>,
    n_rows: Vec<i32>,
    samples: Vec<i32>,
    data: Vec<Vec<u8>>,
}

impl Columns {
    fn push(&mut self, block: i64, rows: Vec<Row>) {
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return;
        };
        self.block.push(block);
        self.ts_from.push(timestamp(first.0));
        self.ts_to.push(timestamp(last.0));
        self.n_rows.push(rows.len() as i32);
        self.samples.push(
            rows.iter()
                .map(|r| r.1.iter().flatten().count())
                .sum::<usize>() as i32,
        );
        self.data.push(chunk::encode(&rows));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_align_to_the_span_and_stop_at_midnight() {
        let minute = 60_000_000;
        assert_eq!(window_of(7 * minute + 5, 10 * minute), (0, 10 * minute));
        assert_eq!(
            window_of(12 * minute, 10 * minute),
            (10 * minute, 20 * minute)
        );
        // 7 hours does not divide a day: the window at 21:00 ends at midnight.
        let (from, to) = window_of(MICROS_PER_DAY - 1, 7 * 60 * minute);
        assert_eq!((from, to), (21 * 60 * minute, MICROS_PER_DAY));
        let (from, _) = window_of(MICROS_PER_DAY + 1, 7 * 60 * minute);
        assert_eq!(from, MICROS_PER_DAY);
    }

    #[test]
    fn a_chunk_keeps_its_samples_and_the_head_fills_what_it_lacks() {
        let chunk = vec![(10, vec![Some(1.0), None]), (20, vec![Some(2.0)])];
        let head = vec![
            (10, vec![Some(9.0), Some(3.0), Some(4.0)]),
            (15, vec![Some(5.0)]),
        ];
        assert_eq!(
            merge(chunk, head),
            vec![
                (10, vec![Some(1.0), Some(3.0), Some(4.0)]),
                (15, vec![Some(5.0)]),
                (20, vec![Some(2.0)]),
            ]
        );
    }
}
