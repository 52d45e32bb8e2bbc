//! The read path: checks, series and targets by keyset queries; samples by
//! walking block rows newest first until a page is full.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use metr_domain::{
    Check, CheckStatus, Labels, Sample, SampleValue, Series, TargetKind, TargetSummary,
};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use super::repo::PgRepository;
use crate::blocks::{block_of, decode_desc};
use crate::cursor::Cursor;
use crate::error::StorageError;
use crate::query::{CheckQuery, MetricQuery, Page, SeriesQuery};
use crate::sql::{self, Sql};

type Client = deadpool_postgres::Object;

fn kind_of(row: &Row, index: usize) -> TargetKind {
    let kind: &str = row.get(index);
    kind.parse().unwrap_or(TargetKind::Http)
}

fn cursor_at(ts: DateTime<Utc>, id: i64) -> Cursor {
    Cursor {
        ts_micros: ts.timestamp_micros(),
        id,
    }
}

async fn query(
    client: &Client,
    sql: &Sql,
    operation: &'static str,
) -> Result<Vec<Row>, StorageError> {
    let statement = client
        .prepare_cached(&sql.text)
        .await
        .map_err(|e| StorageError::database(operation, e))?;
    client
        .query(&statement, &sql.param_refs())
        .await
        .map_err(|e| StorageError::database(operation, e))
}

/// One sample found by a walk: (timestamp µs, series id, value).
type Found = (i64, i64, f64);

/// Series ids a filtered query may return, with the targets that hold them.
struct Wanted {
    /// Sorted, for binary search while decoding rows.
    ids: Vec<i64>,
    /// Distinct (target id, block) pairs the ids live in.
    pairs: Vec<(i32, i64)>,
}

impl Wanted {
    fn contains(&self, id: i64) -> bool {
        self.ids.binary_search(&id).is_ok()
    }
}

/// Per-(target, block) walks beat a walk over time when the wanted series sit in
/// few blocks: each walk reads only rows that hold one of them.
const MAX_BLOCK_WALKS: usize = 16;
/// Rows fetched by the first round trip of a walk; later ones fetch more.
const FIRST_ROWS: i64 = 8;

impl PgRepository {
    pub(super) async fn read_checks(
        &self,
        query_: &CheckQuery,
    ) -> Result<Page<Check>, StorageError> {
        let sql = sql::checks(query_);
        let client = self.client().await?;
        let rows = query(&client, &sql, "query checks").await?;
        let rows = rows
            .iter()
            .map(|row| {
                let checked_at: DateTime<Utc> = row.get(7);
                let up: bool = row.get(3);
                let http_status: Option<i32> = row.get(4);
                let check = Check {
                    target: row.get(1),
                    kind: kind_of(row, 2),
                    status: if up {
                        CheckStatus::Up
                    } else {
                        CheckStatus::Down
                    },
                    http_status: http_status.and_then(|s| u16::try_from(s).ok()),
                    latency_ms: row.get(5),
                    error: row.get(6),
                    checked_at,
                };
                (cursor_at(checked_at, row.get(0)), check)
            })
            .collect();
        Ok(Page::from_rows(rows, query_.limit))
    }

    pub(super) async fn read_metrics(&self, q: &MetricQuery) -> Result<Page<Sample>, StorageError> {
        let client = self.client().await?;
        let target_id = match &q.target {
            Some(name) => match target_id(&client, name).await? {
                Some(id) => Some(id),
                None => return Ok(Page::from_rows(Vec::new(), q.limit)),
            },
            None => None,
        };
        let wanted = if q.name.is_some() || !q.labels.is_empty() {
            let wanted = wanted_series(&client, q, target_id).await?;
            if wanted.ids.is_empty() {
                return Ok(Page::from_rows(Vec::new(), q.limit));
            }
            Some(wanted)
        } else {
            None
        };
        let need = q.limit as usize + 1;
        let mut found = match &wanted {
            Some(w) if w.pairs.len() <= MAX_BLOCK_WALKS => {
                let mut found = Vec::new();
                for &(target, block) in &w.pairs {
                    found.extend(walk_block(&client, q, target, block, w, need).await?);
                }
                found
            }
            _ => walk_time(&client, q, target_id, wanted.as_ref(), need).await?,
        };
        found.sort_by_key(|f| std::cmp::Reverse((f.0, f.1)));
        found.truncate(need);
        let series = series_by_id(&client, found.iter().map(|f| f.1)).await?;
        let rows = found
            .into_iter()
            .filter_map(|(ts, id, value)| {
                let s = series.get(&id)?;
                let timestamp = DateTime::from_timestamp_micros(ts)?;
                Some((
                    Cursor { ts_micros: ts, id },
                    Sample {
                        target: s.target.clone(),
                        name: s.name.clone(),
                        labels: s.labels.clone(),
                        value: SampleValue(value),
                        timestamp,
                    },
                ))
            })
            .collect();
        Ok(Page::from_rows(rows, q.limit))
    }

    pub(super) async fn read_series(&self, q: &SeriesQuery) -> Result<Page<Series>, StorageError> {
        let sql = sql::series(q);
        let client = self.client().await?;
        let rows = query(&client, &sql, "query series").await?;
        let rows = rows
            .iter()
            .map(|row| {
                let Json(labels): Json<Labels> = row.get(3);
                let series = Series {
                    target: row.get(1),
                    name: row.get(2),
                    labels,
                };
                (
                    Cursor {
                        ts_micros: 0,
                        id: row.get(0),
                    },
                    series,
                )
            })
            .collect();
        Ok(Page::from_rows(rows, q.limit))
    }

    pub(super) async fn read_targets(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<TargetSummary>, StorageError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql::TARGETS)
            .await
            .map_err(|e| StorageError::database("query targets", e))?;
        let rows = client
            .query(&statement, &[&now])
            .await
            .map_err(|e| StorageError::database("query targets", e))?;
        Ok(rows
            .iter()
            .map(|row| {
                let up: Option<bool> = row.get(3);
                TargetSummary {
                    name: row.get(0),
                    kind: kind_of(row, 1),
                    url: row.get(2),
                    last_status: up.map(|up| {
                        if up {
                            CheckStatus::Up
                        } else {
                            CheckStatus::Down
                        }
                    }),
                    last_checked_at: row.get(4),
                    last_latency_ms: row.get(5),
                    uptime_ratio: row.get(6),
                }
            })
            .collect())
    }

    pub(super) async fn read_held_range(
        &self,
    ) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StorageError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT min(ts), max(ts) FROM sample_blocks", &[])
            .await
            .map_err(|e| StorageError::database("query the stored time range", e))?;
        let oldest: Option<DateTime<Utc>> = row.get(0);
        let newest: Option<DateTime<Utc>> = row.get(1);
        Ok(oldest.zip(newest))
    }
}

async fn target_id(client: &Client, name: &str) -> Result<Option<i32>, StorageError> {
    let statement = client
        .prepare_cached("SELECT id FROM targets WHERE name = $1")
        .await
        .map_err(|e| StorageError::database("look up a target", e))?;
    let row = client
        .query_opt(&statement, &[&name])
        .await
        .map_err(|e| StorageError::database("look up a target", e))?;
    Ok(row.map(|r| r.get(0)))
}

async fn wanted_series(
    client: &Client,
    q: &MetricQuery,
    target_id: Option<i32>,
) -> Result<Wanted, StorageError> {
    let sql = sql::series_ids(q, target_id);
    let rows = query(client, &sql, "query series").await?;
    let mut ids = Vec::with_capacity(rows.len());
    let mut pairs = Vec::new();
    for row in &rows {
        let id: i64 = row.get(0);
        let target: i32 = row.get(1);
        let pair = (target, block_of(id));
        if pairs.last() != Some(&pair) && !pairs.contains(&pair) {
            pairs.push(pair);
        }
        ids.push(id);
    }
    ids.sort_unstable();
    Ok(Wanted { ids, pairs })
}

/// Whether a decoded sample belongs on the page: before the cursor and wanted.
fn keep(q: &MetricQuery, wanted: Option<&Wanted>, ts: i64, id: i64) -> bool {
    q.cursor.is_none_or(|c| (ts, id) < (c.ts_micros, c.id)) && wanted.is_none_or(|w| w.contains(id))
}

/// Walks the rows of one (target, block) newest first.
async fn walk_block(
    client: &Client,
    q: &MetricQuery,
    target: i32,
    block: i64,
    wanted: &Wanted,
    need: usize,
) -> Result<Vec<Found>, StorageError> {
    let mut found = Vec::new();
    let mut before: Option<i64> = q.cursor.map(|c| c.ts_micros + 1);
    let mut rows_wanted = FIRST_ROWS.max(need as i64);
    loop {
        let sql = sql::block_rows(q, target, block, before, rows_wanted);
        let rows = query(client, &sql, "query samples").await?;
        let exhausted = (rows.len() as i64) < rows_wanted;
        for row in &rows {
            let ts: DateTime<Utc> = row.get(0);
            let ts = ts.timestamp_micros();
            let vals: Vec<Option<f64>> = row.get(1);
            found.extend(
                decode_desc(block, &vals)
                    .filter(|&(id, _)| keep(q, Some(wanted), ts, id))
                    .map(|(id, v)| (ts, id, v)),
            );
            before = Some(ts);
        }
        if found.len() >= need || exhausted {
            return Ok(found);
        }
        rows_wanted *= 4;
    }
}

/// Walks block rows newest first over time, of one target or of all.
async fn walk_time(
    client: &Client,
    q: &MetricQuery,
    target_id: Option<i32>,
    wanted: Option<&Wanted>,
    need: usize,
) -> Result<Vec<Found>, StorageError> {
    let mut found: Vec<Found> = Vec::new();
    // Rows come in (ts, block, target) order, descending; `after` is the last one read.
    let mut after: Option<(i64, i64, i32)> =
        q.cursor.map(|c| (c.ts_micros, block_of(c.id), i32::MAX));
    let mut inclusive = true;
    let mut rows_wanted = FIRST_ROWS;
    let blocks: Option<Vec<i64>> = wanted.map(|w| {
        let mut b: Vec<i64> = w.pairs.iter().map(|p| p.1).collect();
        b.sort_unstable();
        b.dedup();
        b
    });
    loop {
        let sql = sql::time_rows(
            q,
            target_id,
            blocks.as_deref(),
            after,
            inclusive,
            rows_wanted,
        );
        let rows = query(client, &sql, "query samples").await?;
        let exhausted = (rows.len() as i64) < rows_wanted;
        for row in &rows {
            let ts: DateTime<Utc> = row.get(0);
            let ts = ts.timestamp_micros();
            let block: i64 = row.get(1);
            let target: i32 = row.get(2);
            // A full page is final once the walk leaves the (ts, block) of its
            // last sample: rows of other targets may share a block.
            if found.len() >= need && after.is_some_and(|(t, b, _)| (t, b) != (ts, block)) {
                return Ok(found);
            }
            let vals: Vec<Option<f64>> = row.get(3);
            found.extend(
                decode_desc(block, &vals)
                    .filter(|&(id, _)| keep(q, wanted, ts, id))
                    .map(|(id, v)| (ts, id, v)),
            );
            after = Some((ts, block, target));
            inclusive = false;
        }
        if exhausted {
            return Ok(found);
        }
        rows_wanted = (rows_wanted * 4).min(4096);
    }
}

async fn series_by_id(
    client: &Client,
    ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, Series>, StorageError> {
    let mut ids: Vec<i64> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = client
        .prepare_cached(
            "SELECT se.id, t.name, se.name, se.labels FROM series se \
             JOIN targets t ON t.id = se.target_id WHERE se.id = ANY($1)",
        )
        .await
        .map_err(|e| StorageError::database("look up series", e))?;
    let params: [&(dyn ToSql + Sync); 1] = [&ids];
    let rows = client
        .query(&statement, &params)
        .await
        .map_err(|e| StorageError::database("look up series", e))?;
    Ok(rows
        .iter()
        .map(|row| {
            let Json(labels): Json<Labels> = row.get(3);
            (
                row.get(0),
                Series {
                    target: row.get(1),
                    name: row.get(2),
                    labels,
                },
            )
        })
        .collect())
}
