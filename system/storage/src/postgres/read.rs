//! The read path: checks, series and targets by keyset queries; samples by
//! walking block rows newest first until a page is full.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use metr_domain::{
    Check, CheckStatus, Labels, Sample, SampleValue, Series, TargetKind, TargetSummary,
};
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

use super::chunk_read::{self, TimeRow};
use super::repo::PgRepository;
use super::statement::traced;
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

/// Runs a built query in the span of `summary`; `operation` says what failed.
async fn query(
    client: &Client,
    sql: &Sql,
    summary: &'static str,
    operation: &'static str,
) -> Result<Vec<Row>, StorageError> {
    traced(summary, Vec::len, async {
        let statement = client
            .prepare_cached(&sql.text)
            .await
            .map_err(|e| StorageError::database(operation, e))?;
        client
            .query(&statement, &sql.param_refs())
            .await
            .map_err(|e| StorageError::database(operation, e))
    })
    .await
}

/// One sample found by a walk: (timestamp µs, series id, value).
type Found = (i64, i64, f64);

/// Series ids a narrow filtered query may return, with where they live.
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

/// Which series a walk over block rows keeps.
enum Filter<'a> {
    /// Every series (no name or label filter).
    All,
    /// A known, small set of ids.
    Ids(&'a Wanted),
    /// Too many matches to list: the candidates of each fetched chunk of rows
    /// are checked against the filter in the database.
    Query,
}

/// A filter matching more series than this is checked chunk by chunk
/// ([`Filter::Query`]) instead of fetching every matching id per request.
const NARROW_SERIES: i64 = 2048;
/// Few enough (target, block) pairs to read each one's history by its own
/// index scan; more, and a walk over time is cheaper.
const MAX_PAIRS: usize = 64;
/// Rows fetched by the first round trip of a walk over time; later ones fetch more.
const FIRST_ROWS: i64 = 8;

impl PgRepository {
    pub(super) async fn read_checks(
        &self,
        query_: &CheckQuery,
    ) -> Result<Page<Check>, StorageError> {
        let sql = sql::checks(query_);
        let client = self.client().await?;
        let rows = query(&client, &sql, "SELECT checks", "query checks").await?;
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
        let Some(target_id) = target_filter(&client, q.target.as_deref()).await? else {
            return Ok(Page::from_rows(Vec::new(), q.limit));
        };
        let need = q.limit as usize + 1;
        let filtered = q.name.is_some() || !q.labels.is_empty();
        let wanted = if filtered {
            wanted_series(&client, q, target_id).await?
        } else {
            None
        };
        let mut found = match (&wanted, filtered) {
            (None, false) => walk_time(&client, q, target_id, Filter::All, need).await?,
            (None, true) => walk_time(&client, q, target_id, Filter::Query, need).await?,
            (Some(w), _) if w.ids.is_empty() => Vec::new(),
            (Some(w), _) if w.pairs.len() <= MAX_PAIRS => walk_pairs(&client, q, w, need).await?,
            (Some(w), _) => walk_time(&client, q, target_id, Filter::Ids(w), need).await?,
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
        let client = self.client().await?;
        let Some(target_id) = target_filter(&client, q.target.as_deref()).await? else {
            return Ok(Page::from_rows(Vec::new(), q.limit));
        };
        let sql = sql::series(q, target_id);
        let rows = query(&client, &sql, "SELECT series", "query series").await?;
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
        let rows = traced("SELECT targets", Vec::len, async {
            let statement = client
                .prepare_cached(sql::TARGETS)
                .await
                .map_err(|e| StorageError::database("query targets", e))?;
            client
                .query(&statement, &[&now, &(TargetSummary::RECENT_CHECKS as i64)])
                .await
                .map_err(|e| StorageError::database("query targets", e))
        })
        .await?;
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
                    recent_checks: row.get(7),
                }
            })
            .collect())
    }

    pub(super) async fn read_held_range(
        &self,
    ) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StorageError> {
        let client = self.client().await?;
        let one = |_: &Row| 1;
        let row = traced("SELECT sample_blocks sample_chunks", one, async {
            client
                .query_one(
                    "SELECT least((SELECT min(ts) FROM sample_blocks), \
                              (SELECT min(ts_from) FROM sample_chunks)), \
                        greatest((SELECT max(ts) FROM sample_blocks), \
                                 (SELECT max(ts_to) FROM sample_chunks))",
                    &[],
                )
                .await
                .map_err(|e| StorageError::database("query the stored time range", e))
        })
        .await?;
        let oldest: Option<DateTime<Utc>> = row.get(0);
        let newest: Option<DateTime<Utc>> = row.get(1);
        Ok(oldest.zip(newest))
    }
}

/// The id of the target a query filters on: `Some(None)` without a filter,
/// `None` for a target that was never seen (the answer is then empty).
async fn target_filter(
    client: &Client,
    name: Option<&str>,
) -> Result<Option<Option<i32>>, StorageError> {
    match name {
        None => Ok(Some(None)),
        Some(name) => Ok(target_id(client, name).await?.map(Some)),
    }
}

async fn target_id(client: &Client, name: &str) -> Result<Option<i32>, StorageError> {
    let row = traced("SELECT targets", |r: &Option<Row>| r.iter().len(), async {
        let statement = client
            .prepare_cached("SELECT id FROM targets WHERE name = $1")
            .await
            .map_err(|e| StorageError::database("look up a target", e))?;
        client
            .query_opt(&statement, &[&name])
            .await
            .map_err(|e| StorageError::database("look up a target", e))
    })
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// The series a filter matches, or `None` when they are too many to list.
async fn wanted_series(
    client: &Client,
    q: &MetricQuery,
    target_id: Option<i32>,
) -> Result<Option<Wanted>, StorageError> {
    let sql = sql::series_ids(q, target_id, None, NARROW_SERIES + 1);
    let rows = query(client, &sql, "SELECT series", "query series").await?;
    if rows.len() as i64 > NARROW_SERIES {
        return Ok(None);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut pairs = Vec::new();
    for row in &rows {
        let id: i64 = row.get(0);
        let target: i32 = row.get(1);
        ids.push(id);
        pairs.push((target, block_of(id)));
    }
    ids.sort_unstable();
    pairs.sort_unstable();
    pairs.dedup();
    Ok(Some(Wanted { ids, pairs }))
}

/// Whether a decoded sample is before the cursor.
fn before_cursor(q: &MetricQuery, ts: i64, id: i64) -> bool {
    q.cursor.is_none_or(|c| (ts, id) < (c.ts_micros, c.id))
}

/// Reads the newest rows of every wanted (target, block) pair in one round
/// trip, fetching deeper until the page is provably complete: every pair not
/// yet exhausted has been read back to the page's oldest timestamp.
async fn walk_pairs(
    client: &Client,
    q: &MetricQuery,
    wanted: &Wanted,
    need: usize,
) -> Result<Vec<Found>, StorageError> {
    let before = q.cursor.map(|c| c.ts_micros + 1);
    let mut per_pair = (need / wanted.pairs.len() + 2) as i64;
    loop {
        let sql = sql::pair_rows(q, &wanted.pairs, before, per_pair);
        let head: Vec<TimeRow> = query(client, &sql, "SELECT sample_blocks", "query samples")
            .await?
            .iter()
            .map(|row| {
                let ts: DateTime<Utc> = row.get(2);
                (ts.timestamp_micros(), row.get(1), row.get(0), row.get(3))
            })
            .collect();
        let chunks = chunk_read::pair_rows(client, q, &wanted.pairs, before, per_pair).await?;
        let rows = chunk_read::newest_per_pair(chunks, head, per_pair);
        let mut found = Vec::new();
        // Per pair: rows read and the oldest timestamp reached.
        let mut reach: HashMap<(i32, i64), (i64, i64)> = HashMap::new();
        for (ts, block, target, vals) in rows {
            let pair = (target, block);
            let r = reach.entry(pair).or_insert((0, i64::MAX));
            *r = (r.0 + 1, r.1.min(ts));
            found.extend(
                decode_desc(pair.1, &vals)
                    .filter(|&(id, _)| before_cursor(q, ts, id) && wanted.contains(id))
                    .map(|(id, v)| (ts, id, v)),
            );
        }
        found.sort_by_key(|f: &Found| std::cmp::Reverse((f.0, f.1)));
        let cutoff = found.get(need - 1).map(|f| f.0);
        let complete = reach.values().all(|&(read, oldest)| {
            read < per_pair || cutoff.is_some_and(|cutoff| oldest <= cutoff)
        });
        if complete {
            return Ok(found);
        }
        per_pair *= 4;
    }
}

/// Walks block rows newest first over time, of one target or of all.
async fn walk_time(
    client: &Client,
    q: &MetricQuery,
    target_id: Option<i32>,
    filter: Filter<'_>,
    need: usize,
) -> Result<Vec<Found>, StorageError> {
    let mut found: Vec<Found> = Vec::new();
    // Rows come in (ts, block, target) order, descending; `after` is the last one read.
    let mut after: Option<(i64, i64, i32)> =
        q.cursor.map(|c| (c.ts_micros, block_of(c.id), i32::MAX));
    let mut inclusive = true;
    let mut rows_wanted = FIRST_ROWS;
    let blocks: Option<Vec<i64>> = match &filter {
        Filter::Ids(w) => {
            let mut b: Vec<i64> = w.pairs.iter().map(|p| p.1).collect();
            b.sort_unstable();
            b.dedup();
            Some(b)
        }
        _ => None,
    };
    loop {
        let sql = sql::time_rows(
            q,
            target_id,
            blocks.as_deref(),
            after,
            inclusive,
            rows_wanted,
        );
        let head: Vec<TimeRow> = query(client, &sql, "SELECT sample_blocks", "query samples")
            .await?
            .iter()
            .map(|row| {
                let ts: DateTime<Utc> = row.get(0);
                (ts.timestamp_micros(), row.get(1), row.get(2), row.get(3))
            })
            .collect();
        let by_target = target_id.is_some();
        let position = (after, inclusive);
        let keep = |r: &TimeRow| after_position(position, by_target, r);
        let rows = chunk_read::time_rows(
            client,
            q,
            target_id,
            blocks.as_deref(),
            after.map(|a| a.0),
            keep,
            head,
            rows_wanted,
        )
        .await?;
        let exhausted = (rows.len() as i64) < rows_wanted;
        let mut chunk: Vec<Found> = Vec::new();
        let mut full = false;
        let mut stopped_early = false;
        for (ts, block, target, vals) in rows {
            // A full page is final once the walk leaves the (ts, block) of its
            // last row: rows of other targets may share a block.
            if found.len() + chunk.len() >= need
                && after.is_some_and(|(t, b, _)| (t, b) != (ts, block))
            {
                full = true;
                stopped_early = true;
                break;
            }
            chunk.extend(
                decode_desc(block, &vals)
                    .filter(|&(id, _)| before_cursor(q, ts, id))
                    .filter(|&(id, _)| match &filter {
                        Filter::Ids(w) => w.contains(id),
                        _ => true,
                    })
                    .map(|(id, v)| (ts, id, v)),
            );
            after = Some((ts, block, target));
            inclusive = false;
        }
        if matches!(filter, Filter::Query) && !chunk.is_empty() {
            let matching = matching_ids(client, q, target_id, &chunk).await?;
            chunk.retain(|f| matching.binary_search(&f.1).is_ok());
            // What the filter removed does not count towards a full page.
            full = full && found.len() + chunk.len() >= need;
        }
        found.extend(chunk);
        // Rows left unread after an early stop are read again from `after`.
        if full || (exhausted && !stopped_early) {
            return Ok(found);
        }
        rows_wanted = (rows_wanted * 4).min(4096);
    }
}

/// Whether a row comes after the walk's position (newest first), as
/// `sql::time_rows` selects: by (ts, block) within a target, by (ts, block,
/// target) across targets, the position itself included when `inclusive`.
fn after_position(
    (after, inclusive): (Option<(i64, i64, i32)>, bool),
    by_target: bool,
    row: &TimeRow,
) -> bool {
    let Some((ts, block, target)) = after else {
        return true;
    };
    let (mine, theirs) = if by_target {
        ((row.0, row.1, 0), (ts, block, 0))
    } else {
        ((row.0, row.1, row.2), (ts, block, target))
    };
    if inclusive {
        mine <= theirs
    } else {
        mine < theirs
    }
}

/// Which of the chunk's series match the query's name and label filters.
async fn matching_ids(
    client: &Client,
    q: &MetricQuery,
    target_id: Option<i32>,
    chunk: &[Found],
) -> Result<Vec<i64>, StorageError> {
    let mut candidates: Vec<i64> = chunk.iter().map(|f| f.1).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let limit = candidates.len() as i64;
    let sql = sql::series_ids(q, target_id, Some(&candidates), limit);
    let rows = query(client, &sql, "SELECT series", "query series").await?;
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    Ok(ids)
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
    let rows = traced("SELECT series", Vec::len, async {
        let statement = client
            .prepare_cached(
                "SELECT se.id, t.name, se.name, se.labels FROM series se \
                 JOIN targets t ON t.id = se.target_id WHERE se.id = ANY($1)",
            )
            .await
            .map_err(|e| StorageError::database("look up series", e))?;
        let params: [&(dyn ToSql + Sync); 1] = [&ids];
        client
            .query(&statement, &params)
            .await
            .map_err(|e| StorageError::database("look up series", e))
    })
    .await?;
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
