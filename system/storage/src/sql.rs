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

/// Newest samples first; keyset pagination on (ts, series_id).
pub fn metrics(query: &MetricQuery) -> Sql {
    let mut sql = Sql::new(
        "SELECT s.series_id, t.name, se.name, se.labels, s.value, s.ts \
         FROM samples s JOIN series se ON se.id = s.series_id JOIN targets t ON t.id = se.target_id",
    );
    if let Some(target) = &query.target {
        let p = sql.param(target.clone());
        sql.and(format!(
            "se.target_id = (SELECT id FROM targets WHERE name = {p})"
        ));
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
    if let Some(from) = query.from {
        let p = sql.param(from);
        sql.and(format!("s.ts >= {p}"));
    }
    if let Some(to) = query.to {
        let p = sql.param(to);
        sql.and(format!("s.ts <= {p}"));
    }
    if let Some(cursor) = query.cursor {
        let ts = sql.param(micros(cursor.ts_micros));
        let id = sql.param(cursor.id);
        sql.and(format!("(s.ts, s.series_id) < ({ts}, {id})"));
    }
    let limit = sql.param(i64::from(query.limit) + 1);
    sql.text.push_str(&format!(
        " ORDER BY s.ts DESC, s.series_id DESC LIMIT {limit}"
    ));
    sql
}

/// Distinct series in id order; keyset pagination on id.
pub fn series(query: &SeriesQuery) -> Sql {
    let mut sql = Sql::new(
        "SELECT se.id, t.name, se.name, se.labels FROM series se JOIN targets t ON t.id = se.target_id",
    );
    if let Some(target) = &query.target {
        let p = sql.param(target.clone());
        sql.and(format!("t.name = {p}"));
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
    sql.text.push_str(&format!(" ORDER BY se.id LIMIT {limit}"));
    sql
}

/// Every target with its last check and its uptime over the hour before `$1`.
pub const TARGETS: &str = "\
SELECT t.name, t.kind, t.url, l.up, l.checked_at, l.latency_ms, u.ratio \
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
            name: Some("up".into()),
            labels: vec![("le".into(), "+Inf".into())],
            from: Some(Utc::now()),
            to: Some(Utc::now()),
            limit: 10,
            cursor: Some(Cursor {
                ts_micros: 1,
                id: 2,
            }),
        };
        let sql = metrics(&query);
        assert!(!sql.text.contains("DROP"));
        assert_eq!(sql.params.len(), 8);
        assert!(
            sql.text
                .contains("name = $1) AND se.name = $2 AND se.labels @> $3")
        );
        assert!(sql.text.contains("(s.ts, s.series_id) < ($6, $7)"));
        assert!(sql.text.ends_with("LIMIT $8"));
    }

    #[test]
    fn the_series_cursor_continues_after_the_last_id() {
        let sql = series(&SeriesQuery {
            cursor: Some(Cursor {
                ts_micros: 0,
                id: 9,
            }),
            ..Default::default()
        });
        assert!(sql.text.contains("WHERE se.id > $1"), "{}", sql.text);
    }
}
