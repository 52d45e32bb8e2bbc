//! Builds the read queries: filters become numbered parameters, never text.

use chrono::{DateTime, Utc};
use tokio_postgres::types::{Json, ToSql};

use crate::query::{CheckQuery, MetricQuery, SeriesQuery};

/// SQL text with its parameters, in order.
pub struct Sql {
    pub text: String,
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter and returns its placeholder (`$n`).
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn and(&mut self, condition: String) {
        self.text.push_str(if self.text.contains(" WHERE ") {
            " AND "
        } else {
            " WHERE "
        });
        self.text.push_str(&condition);
    }

    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

fn micros(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(ts).unwrap_or_default()
}

/// Newest checks first; keyset pagination on (checked_at, id).
pub fn checks(query: &CheckQuery) -> Sql {
    let mut sql = Sql::new(
        "SELECT c.id, t.name, t.kind, c.up, c.http_status, c.latency_ms, c.error, c.checked_at \
         FROM checks c JOIN targets t ON t.id = c.target_id",
    );
    if let Some(target) = &query.target {
        let p = sql.param(target.clone());
        // A scalar subquery, not a join filter: the planner then walks
        // checks_target_time_idx for that one target instead of every check.
        sql.and(format!(
            "c.target_id = (SELECT id FROM targets WHERE name = {p})"
        ));
    }
    if let Some(status) = query.status {
        let p = sql.param(status == metr_domain::CheckStatus::Up);
        sql.and(format!("c.up = {p}"));
    }
    if let Some(from) = query.from {
        let p = sql.param(from);
        sql.and(format!("c.checked_at >= {p}"));
    }
    if let Some(to) = query.to {
        let p = sql.param(to);
        sql.and(format!("c.checked_at <= {p}"));
    }
    if let Some(cursor) = query.cursor {
        let ts = sql.param(micros(cursor.ts_micros));
        let id = sql.param(cursor.id);
        sql.and(format!("(c.checked_at, c.id) < ({ts}, {id})"));
    }
    let limit = sql.param(i64::from(query.limit) + 1);
    sql.text.push_str(&format!(
        " ORDER BY c.checked_at DESC, c.id DESC LIMIT {limit}"
    ));
    sql
}

/// Ids (and target ids) of the series a filtered `/api/v1/metrics` asks for,
/// at most `limit` of them (in no particular order), or only those among
/// `among` when given.
pub fn series_ids(
    query: &MetricQuery,
    target_id: Option<i32>,
    among: Option<&[i64]>,
    limit: i64,
) -> Sql {
    let mut sql = Sql::new("SELECT se.id, se.target_id FROM series se");
    if let Some(among) = among {
        let p = sql.param(among.to_vec());
        sql.and(format!("se.id = ANY({p})"));
    }
    if let Some(target_id) = target_id {
        let p = sql.param(target_id);
        sql.and(format!("se.target_id = {p}"));
    }
    if let Some(name) = &query.name {
        let p = sql.param(name.clone());
        sql.and(format!("se.name = {p}"));
    }
    if !query.labels.is_empty() {
        let wanted: serde_json::Map<String, serde_json::Value> = query
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let p = sql.param(Json(serde_json::Value::Object(wanted)));
        sql.and(format!("se.labels @> {p}"));
    }
    let l = sql.param(limit);
    sql.text.push_str(&format!(" LIMIT {l}"));
    sql
}

fn time_range(sql: &mut Sql, query: &MetricQuery) {
    if let Some(from) = query.from {
        let p = sql.param(from);
        sql.and(format!("ts >= {p}"));
    }
    if let Some(to) = query.to {
        let p = sql.param(to);
        sql.and(format!("ts <= {p}"));
    }
}

/// The newest `limit` rows of each (target, block) pair, older than `before`
/// (µs): the history of the few series a narrow query asks for, in one round
/// trip; each pair's rows come from its own backward index scan.
pub fn pair_rows(
    query: &MetricQuery,
    pairs: &[(i32, i64)],
    before: Option<i64>,
    limit: i64,
) -> Sql {
    let mut inner = Sql::new(
        "SELECT b.ts, b.vals FROM sample_blocks b WHERE b.target_id = p.t AND b.block = p.b",
    );
    let targets = inner.param(pairs.iter().map(|p| p.0).collect::<Vec<i32>>());
    let blocks = inner.param(pairs.iter().map(|p| p.1).collect::<Vec<i64>>());
    if let Some(before) = before {
        let p = inner.param(micros(before));
        inner.text.push_str(&format!(" AND b.ts < {p}"));
    }
    if let Some(from) = query.from {
        let p = inner.param(from);
        inner.text.push_str(&format!(" AND b.ts >= {p}"));
    }
    if let Some(to) = query.to {
        let p = inner.param(to);
        inner.text.push_str(&format!(" AND b.ts <= {p}"));
    }
    let l = inner.param(limit);
    inner.text = format!(
        "SELECT p.t, p.b, r.ts, r.vals FROM unnest({targets}::int4[], {blocks}::int8[]) AS p(t, b) \
         CROSS JOIN LATERAL ({} ORDER BY b.ts DESC LIMIT {l}) AS r",
        inner.text
    );
    inner
}

/// The newest chunks of each (target, block) pair holding rows older than
/// `before` (µs), enough of them for `limit` rows: the newest chunk, which
/// `before` or `query.to` may cut, and older ones until `limit` rows more.
/// Chunks of one pair never overlap in time.
pub fn chunk_pair_rows(
    query: &MetricQuery,
    pairs: &[(i32, i64)],
    before: Option<i64>,
    limit: i64,
) -> Sql {
    // At most `limit` chunks (each holds a row at least), newest first by the
    // primary key's backward scan, then only as many as `limit` rows need.
    let mut inner = Sql::new(
        "SELECT c.data, c.n_rows, c.ts_from FROM sample_chunks c \
         WHERE c.target_id = p.t AND c.block = p.b",
    );
    let targets = inner.param(pairs.iter().map(|p| p.0).collect::<Vec<i32>>());
    let blocks = inner.param(pairs.iter().map(|p| p.1).collect::<Vec<i64>>());
    if let Some(before) = before {
        let p = inner.param(micros(before));
        inner.text.push_str(&format!(" AND c.ts_from < {p}"));
    }
    chunk_range(&mut inner, query);
    let l = inner.param(limit);
    inner.text = format!(
        "SELECT p.t, p.b, r.data FROM unnest({targets}::int4[], {blocks}::int8[]) AS p(t, b) \
         CROSS JOIN LATERAL ( \
           SELECT x.data FROM ( \
             SELECT y.data, row_number() OVER w AS rank, \
                    coalesce(sum(y.n_rows) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) \
                      - first_value(y.n_rows) OVER w AS newer \
             FROM ({} ORDER BY c.ts_from DESC LIMIT {l}) y \
             WINDOW w AS (ORDER BY y.ts_from DESC)) x \
           WHERE x.rank = 1 OR x.newer < {l}) AS r",
        inner.text
    );
    inner
}

/// Chunks that may hold rows of `query`'s time range.
fn chunk_range(sql: &mut Sql, query: &MetricQuery) {
    if let Some(from) = query.from {
        let p = sql.param(from);
        sql.text.push_str(&format!(" AND c.ts_to >= {p}"));
    }
    if let Some(to) = query.to {
        let p = sql.param(to);
        sql.text.push_str(&format!(" AND c.ts_from <= {p}"));
    }
}

/// The `limit` chunks with the newest last rows (ties by block and target,
/// newest first as rows are walked), of one target or of all,
/// optionally only of some blocks, that may hold rows at or before
/// `after_ts` and at or after `oldest` (both µs).
pub fn chunk_time_rows(
    query: &MetricQuery,
    target_id: Option<i32>,
    blocks: Option<&[i64]>,
    after_ts: Option<i64>,
    oldest: Option<i64>,
    limit: i64,
) -> Sql {
    let mut sql =
        Sql::new("SELECT c.target_id, c.block, c.ts_to, c.data FROM sample_chunks c WHERE true");
    if let Some(target_id) = target_id {
        let t = sql.param(target_id);
        sql.text.push_str(&format!(" AND c.target_id = {t}"));
    }
    if let Some(blocks) = blocks {
        let p = sql.param(blocks.to_vec());
        sql.text.push_str(&format!(" AND c.block = ANY({p})"));
    }
    if let Some(after_ts) = after_ts {
        let p = sql.param(micros(after_ts));
        sql.text.push_str(&format!(" AND c.ts_from <= {p}"));
    }
    if let Some(oldest) = oldest {
        let p = sql.param(micros(oldest));
        sql.text.push_str(&format!(" AND c.ts_to >= {p}"));
    }
    chunk_range(&mut sql, query);
    let l = sql.param(limit);
    sql.text.push_str(&format!(
        " ORDER BY c.ts_to DESC, c.block DESC, c.target_id DESC LIMIT {l}"
    ));
    sql
}

/// Block rows newest first by (ts, block, target), of one target or of all,
/// from `after` on (inclusive or not), optionally only of some blocks.
pub fn time_rows(
    query: &MetricQuery,
    target_id: Option<i32>,
    blocks: Option<&[i64]>,
    after: Option<(i64, i64, i32)>,
    inclusive: bool,
    limit: i64,
) -> Sql {
    let mut sql = Sql::new("SELECT ts, block, target_id, vals FROM sample_blocks");
    let op = if inclusive { "<=" } else { "<" };
    match target_id {
        Some(target_id) => {
            let t = sql.param(target_id);
            sql.and(format!("target_id = {t}"));
            if let Some((ts, block, _)) = after {
                let ts = sql.param(micros(ts));
                let b = sql.param(block);
                sql.and(format!("(ts, block) {op} ({ts}, {b})"));
            }
        }
        None => {
            if let Some((ts, block, target)) = after {
                let ts = sql.param(micros(ts));
                let b = sql.param(block);
                let t = sql.param(target);
                sql.and(format!("(ts, block, target_id) {op} ({ts}, {b}, {t})"));
            }
        }
    }
    if let Some(blocks) = blocks {
        let p = sql.param(blocks.to_vec());
        sql.and(format!("block = ANY({p})"));
    }
    time_range(&mut sql, query);
    let l = sql.param(limit);
    let order = if target_id.is_some() {
        "ts DESC, block DESC"
    } else {
        "ts DESC, block DESC, target_id DESC"
    };
    sql.text.push_str(&format!(" ORDER BY {order} LIMIT {l}"));
    sql
}

/// Distinct series in id order; keyset pagination on id.
/// `target_id` is the resolved id of `query.target`: a plain parameter, so the
/// plan cached with the prepared statement walks `series (target_id, id)`.
pub fn series(query: &SeriesQuery, target_id: Option<i32>) -> Sql {
    let mut sql = Sql::new(
        "SELECT se.id, t.name, se.name, se.labels FROM series se JOIN targets t ON t.id = se.target_id",
    );
    if let Some(target_id) = target_id {
        let p = sql.param(target_id);
        sql.and(format!("se.target_id = {p}"));
    }
    if let Some(name) = &query.name {
        let p = sql.param(name.clone());
        sql.and(format!("se.name = {p}"));
    }
    if let Some(cursor) = query.cursor {
        let p = sql.param(cursor.id);
        sql.and(format!("se.id > {p}"));
    }
    let limit = sql.param(i64::from(query.limit) + 1);
    // The equality-filtered column leads the order so that the plan cached
    // with the prepared statement walks the matching index, (target_id, id)
    // or (name, id), instead of the primary key filtered row by row.
    let order = if target_id.is_some() {
        "se.target_id, se.id"
    } else if query.name.is_some() {
        "se.name, se.id"
    } else {
        "se.id"
    };
    sql.text
        .push_str(&format!(" ORDER BY {order} LIMIT {limit}"));
    sql
}

/// Every target with its last check, its uptime over the hour before `$1`, and
/// the times of its last `$2` checks, newest first (the API infers intervals).
pub const TARGETS: &str = "\
SELECT t.name, t.kind, t.url, l.up, l.checked_at, l.latency_ms, u.ratio, \
    ARRAY(SELECT c.checked_at FROM checks c WHERE c.target_id = t.id \
        ORDER BY c.checked_at DESC, c.id DESC LIMIT $2) \
FROM targets t \
LEFT JOIN LATERAL (SELECT c.up, c.checked_at, c.latency_ms FROM checks c \
    WHERE c.target_id = t.id ORDER BY c.checked_at DESC, c.id DESC LIMIT 1) l ON true \
LEFT JOIN LATERAL (SELECT avg(CASE WHEN c.up THEN 1.0 ELSE 0.0 END)::float8 AS ratio FROM checks c \
    WHERE c.target_id = t.id AND c.checked_at > $1::timestamptz - interval '1 hour' AND c.checked_at <= $1) u ON true \
ORDER BY t.name";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::Cursor;

    #[test]
    fn no_filters_means_no_where_clause() {
        let sql = checks(&CheckQuery::default());
        assert!(!sql.text.contains("WHERE"), "{}", sql.text);
        assert_eq!(sql.params.len(), 1, "only the limit");
        assert!(
            sql.text
                .ends_with("ORDER BY c.checked_at DESC, c.id DESC LIMIT $1")
        );
    }

    #[test]
    fn every_filter_is_a_numbered_parameter_never_text() {
        let query = MetricQuery {
            target: Some("x'; DROP TABLE samples; --".into()),
            name: Some("up'--".into()),
            labels: vec![("le".into(), "+Inf".into())],
            from: Some(Utc::now()),
            to: Some(Utc::now()),
            limit: 10,
            cursor: Some(Cursor {
                ts_micros: 1,
                id: 2,
            }),
        };
        let ids = series_ids(&query, Some(3), None, 10);
        assert!(!ids.text.contains("--"));
        assert!(
            ids.text
                .contains("se.target_id = $1 AND se.name = $2 AND se.labels @> $3 LIMIT $4"),
            "{}",
            ids.text
        );
        let rows = time_rows(&query, None, Some(&[1, 2]), Some((5, 0, 1)), true, 8);
        assert!(
            rows.text.contains("(ts, block, target_id) <= ($1, $2, $3)"),
            "{}",
            rows.text
        );
        assert!(rows.text.contains("block = ANY($4)"));
        assert!(rows.text.ends_with("LIMIT $7"), "{}", rows.text);
        assert_eq!(rows.params.len(), 7);
    }

    #[test]
    fn a_one_target_walk_orders_by_time_then_block() {
        let rows = time_rows(
            &MetricQuery::default(),
            Some(1),
            None,
            Some((5, 0, 0)),
            false,
            8,
        );
        assert!(
            rows.text
                .contains("target_id = $1 AND (ts, block) < ($2, $3)"),
            "{}",
            rows.text
        );
        assert!(rows.text.ends_with("ORDER BY ts DESC, block DESC LIMIT $4"));
        let pairs = pair_rows(&MetricQuery::default(), &[(1, 2), (3, 4)], Some(9), 101);
        assert!(
            pairs.text.contains(
                "b.target_id = p.t AND b.block = p.b AND b.ts < $3 ORDER BY b.ts DESC LIMIT $4"
            ),
            "{}",
            pairs.text
        );
        assert_eq!(pairs.params.len(), 4);
    }

    #[test]
    fn the_series_cursor_continues_after_the_last_id() {
        let sql = series(
            &SeriesQuery {
                cursor: Some(Cursor {
                    ts_micros: 0,
                    id: 9,
                }),
                ..Default::default()
            },
            None,
        );
        assert!(sql.text.contains("WHERE se.id > $1"), "{}", sql.text);
    }
}
