//! Block rows from both places they live: the head (`sample_blocks`) and
//! compressed chunks (`sample_chunks`), merged so that the walks of
//! `read.rs` see one sequence of rows whatever was compacted.
//!
//! A row of one key (target, block, timestamp) may be in both for a while (a
//! batch retried after its window was compacted): the chunk's samples win,
//! the head fills the slots the chunk lacks, as compaction will.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::statement::traced;
use crate::chunk;
use crate::error::StorageError;
use crate::query::MetricQuery;
use crate::sql::{self, Sql};

type Client = deadpool_postgres::Object;

/// One block row: (timestamp µs, block, target, values by slot).
pub(super) type TimeRow = (i64, i64, i32, Vec<Option<f64>>);

/// Chunks fetched by the first round trip of a walk; later ones fetch more.
const FIRST_CHUNKS: i64 = 4;

async fn query(client: &Client, sql: &Sql) -> Result<Vec<tokio_postgres::Row>, StorageError> {
    traced("SELECT sample_chunks", Vec::len, async {
        let statement = client
            .prepare_cached(&sql.text)
            .await
            .map_err(|e| StorageError::database("query compressed samples", e))?;
        client
            .query(&statement, &sql.param_refs())
            .await
            .map_err(|e| StorageError::database("query compressed samples", e))
    })
    .await
}

/// Whether a row's timestamp is in the query's time range.
fn in_range(q: &MetricQuery, ts: i64) -> bool {
    q.from.is_none_or(|f| ts >= f.timestamp_micros())
        && q.to.is_none_or(|t| ts <= t.timestamp_micros())
}

/// Merges `extra` into `rows` by key, `rows` (the chunks') winning per slot.
fn merge_into(rows: &mut Vec<TimeRow>, extra: Vec<TimeRow>) {
    let mut at: HashMap<(i64, i64, i32), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.0, r.1, r.2), i))
        .collect();
    for row in extra {
        match at.get(&(row.0, row.1, row.2)) {
            Some(&i) => {
                let kept = &mut rows[i].3;
                if kept.len() < row.3.len() {
                    kept.resize(row.3.len(), None);
                }
                for (slot, v) in row.3.into_iter().enumerate() {
                    if kept[slot].is_none() {
                        kept[slot] = v;
                    }
                }
            }
            None => {
                at.insert((row.0, row.1, row.2), rows.len());
                rows.push(row);
            }
        }
    }
}

/// Newest first by (ts, block, target).
fn sort_desc(rows: &mut [TimeRow]) {
    rows.sort_by_key(|r| std::cmp::Reverse((r.0, r.1, r.2)));
}

/// The newest `limit` rows of the head rows given (the newest `limit` head
/// rows after the walk's position) and of the chunks, for `walk_time`.
/// `keep` says which rows are after the walk's position.
#[expect(
    clippy::too_many_arguments,
    reason = "the walk's position, as time_rows takes it"
)]
pub(super) async fn time_rows(
    client: &Client,
    q: &MetricQuery,
    target_id: Option<i32>,
    blocks: Option<&[i64]>,
    after_ts: Option<i64>,
    keep: impl Fn(&TimeRow) -> bool,
    head: Vec<TimeRow>,
    limit: i64,
) -> Result<Vec<TimeRow>, StorageError> {
    let limit = limit as usize;
    // With a full page of head rows, older chunks cannot rank.
    let oldest = (head.len() >= limit)
        .then(|| head.last().map(|r| r.0))
        .flatten();
    let mut chunks = FIRST_CHUNKS;
    let mut rows = loop {
        let sql = sql::chunk_time_rows(q, target_id, blocks, after_ts, oldest, chunks);
        let found = query(client, &sql).await?;
        let mut rows = Vec::new();
        let mut last = None;
        for row in &found {
            let (target, block): (i32, i64) = (row.get(0), row.get(1));
            let ts_to: DateTime<Utc> = row.get(2);
            last = Some((ts_to.timestamp_micros(), block, target));
            for (ts, vals) in chunk::decode(row.get(3))? {
                let r = (ts, block, target, vals);
                if in_range(q, ts) && keep(&r) {
                    rows.push(r);
                }
            }
        }
        if (found.len() as i64) < chunks {
            break rows;
        }
        // A chunk not fetched comes after the last one fetched in (last
        // row's ts, block, target) order, so each of its rows does too: rows
        // from the last chunk's last row on are sure to rank above theirs.
        let last = last.unwrap_or((i64::MIN, i64::MIN, i32::MIN));
        rows.retain(|r| (r.0, r.1, r.2) >= last);
        if rows.len() >= limit {
            break rows;
        }
        chunks *= 4;
    };
    merge_into(&mut rows, head);
    sort_desc(&mut rows);
    rows.truncate(limit);
    Ok(rows)
}

/// Rows of the chunks of each (target, block) pair, older than `before`:
/// enough for the newest `limit` of each pair, for `walk_pairs`.
pub(super) async fn pair_rows(
    client: &Client,
    q: &MetricQuery,
    pairs: &[(i32, i64)],
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<TimeRow>, StorageError> {
    let sql = sql::chunk_pair_rows(q, pairs, before, limit);
    let mut rows = Vec::new();
    for row in &query(client, &sql).await? {
        let (target, block): (i32, i64) = (row.get(0), row.get(1));
        for (ts, vals) in chunk::decode(row.get(2))? {
            if in_range(q, ts) && before.is_none_or(|b| ts < b) {
                rows.push((ts, block, target, vals));
            }
        }
    }
    Ok(rows)
}

/// The newest `limit` rows of each pair, of head and chunk rows merged.
pub(super) fn newest_per_pair(
    chunk_rows: Vec<TimeRow>,
    head: Vec<TimeRow>,
    limit: i64,
) -> Vec<TimeRow> {
    let mut rows = chunk_rows;
    merge_into(&mut rows, head);
    sort_desc(&mut rows);
    let mut taken: HashMap<(i32, i64), i64> = HashMap::new();
    rows.retain(|r| {
        let n = taken.entry((r.2, r.1)).or_insert(0);
        *n += 1;
        *n <= limit
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_in_both_places_keeps_the_chunks_samples() {
        let mut rows = vec![(10, 0, 1, vec![Some(1.0), None])];
        merge_into(
            &mut rows,
            vec![
                (10, 0, 1, vec![Some(9.0), Some(2.0), Some(3.0)]),
                (10, 1, 1, vec![Some(4.0)]),
            ],
        );
        assert_eq!(rows[0].3, vec![Some(1.0), Some(2.0), Some(3.0)]);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn each_pair_keeps_its_newest_rows() {
        let chunk = vec![
            (1, 0, 1, vec![Some(1.0)]),
            (2, 0, 1, vec![Some(2.0)]),
            (1, 1, 1, vec![Some(5.0)]),
        ];
        let head = vec![(3, 0, 1, vec![Some(3.0)])];
        let rows = newest_per_pair(chunk, head, 2);
        let ts: Vec<(i64, i64)> = rows.iter().map(|r| (r.0, r.1)).collect();
        assert_eq!(ts, vec![(3, 0), (2, 0), (1, 1)]);
    }
}
