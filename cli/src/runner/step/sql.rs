//! `sql`: one query on the stack's PostgreSQL, rows as JSON objects.

use serde_json::{Map, Value};

use crate::runner::observation::Observation;
use crate::runner::step::{Seen, StepContext, Trouble};
use crate::scenario::template;

pub(super) async fn observe(query: &str, ctx: &StepContext<'_>) -> Result<Seen, Trouble> {
    let query = template::render_str(query, ctx.vars).map_err(Trouble::new)?;
    let shown = format!("SQL {query}");
    let failed = |why: String| Trouble::new(why).request(&shown);
    let url = ctx.stack.stack.postgres_url.clone();
    let connect = tokio::time::timeout(
        ctx.request_timeout,
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    );
    let (client, connection) = match connect.await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(failed(format!("connect to postgres: {e}"))),
        Err(_) => return Err(failed("connect to postgres: timed out".into())),
    };
    let task = tokio::spawn(connection);
    let result = tokio::time::timeout(ctx.request_timeout, client.query(query.as_str(), &[])).await;
    drop(client);
    task.abort();
    let rows = match result {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            let why = match e.as_db_error() {
                Some(db) => explain(db, &query),
                None => e.to_string(),
            };
            return Err(failed(format!("query failed: {why}")));
        }
        Err(_) => return Err(failed("query timed out".into())),
    };
    let mut table = Vec::new();
    for row in &rows {
        let mut object = Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            let value = cell(row, i).map_err(|e| failed(e.to_string()))?;
            object.insert(column.name().to_owned(), value);
        }
        table.push(Value::Object(object));
    }
    Ok(Seen {
        request: shown,
        observation: Observation::Sql(Value::Array(table)),
    })
}

/// PostgreSQL's message with its DETAIL and HINT, and the query line with a
/// caret under the error position: what psql shows, and what fixes the query.
fn explain(db: &tokio_postgres::error::DbError, query: &str) -> String {
    use tokio_postgres::error::ErrorPosition;
    let position = match db.position() {
        Some(ErrorPosition::Original(at)) => Some(*at),
        // An error inside a function's own query: its text is not the step's.
        Some(ErrorPosition::Internal { .. }) | None => None,
    };
    let parts = DbFailure {
        message: db.message(),
        detail: db.detail(),
        hint: db.hint(),
        position,
    };
    parts.render(query)
}

/// The parts of a PostgreSQL error a scenario's author needs.
struct DbFailure<'a> {
    message: &'a str,
    detail: Option<&'a str>,
    hint: Option<&'a str>,
    /// 1-based character index into the query, as PostgreSQL reports it.
    position: Option<u32>,
}

impl DbFailure<'_> {
    fn render(&self, query: &str) -> String {
        let mut out = self.message.to_owned();
        if let Some(detail) = self.detail {
            out.push_str(&format!("\n  detail: {detail}"));
        }
        if let Some(hint) = self.hint {
            out.push_str(&format!("\n  hint: {hint}"));
        }
        if let Some((line, column)) = self.position.and_then(|p| line_and_column(query, p)) {
            let text = query.lines().nth(line - 1).unwrap_or_default();
            let pad = " ".repeat(column - 1);
            out.push_str(&format!(
                "\n  at line {line}, column {column} of the query:\n    {text}\n    {pad}^"
            ));
        }
        out
    }
}

/// The 1-based line and column (in characters) of a 1-based character position.
fn line_and_column(query: &str, position: u32) -> Option<(usize, usize)> {
    let index = usize::try_from(position).ok()?.checked_sub(1)?;
    let before: String = query.chars().take(index).collect();
    if before.chars().count() < index {
        return None;
    }
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Some((line, column))
}

/// A column whose value could not be read as JSON.
#[derive(Debug, thiserror::Error)]
enum CellError {
    #[error(
        "column {column:?} has type {ty}, which metrtest does not convert; cast it in the query (e.g. ::text or ::float8)"
    )]
    Unconverted { column: String, ty: String },
    #[error(transparent)]
    Read(#[from] tokio_postgres::Error),
}

/// A column value as JSON, for the common PostgreSQL types.
fn cell(row: &tokio_postgres::Row, i: usize) -> Result<Value, CellError> {
    use tokio_postgres::types::Type;
    let column = &row.columns()[i];
    let v = match column.type_().clone() {
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map(|v| v.map(Value::from)),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map(|v| v.map(Value::from)),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map(|v| v.map(Value::from)),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::from)),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)
            .map(|v| v.map(|f| Value::from(f64::from(f)))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::from)),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => row
            .try_get::<_, Option<String>>(i)
            .map(|v| v.map(Value::from)),
        Type::JSON | Type::JSONB => row.try_get::<_, Option<Value>>(i),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
            .map(|v| v.map(|t| Value::from(t.to_rfc3339()))),
        other => {
            return Err(CellError::Unconverted {
                column: column.name().to_owned(),
                ty: other.to_string(),
            });
        }
    };
    Ok(v?.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(position: Option<u32>) -> DbFailure<'static> {
        DbFailure {
            message: "column \"target\" does not exist",
            detail: Some("There is a column named \"target_id\" in table \"checks\"."),
            hint: Some("Perhaps you meant to reference the column \"checks.target_id\"."),
            position,
        }
    }

    #[test]
    fn a_failure_shows_detail_hint_and_a_caret_under_the_position() {
        let text = failure(Some(8)).render("SELECT target FROM checks");
        assert_eq!(
            text,
            "column \"target\" does not exist\n  \
             detail: There is a column named \"target_id\" in table \"checks\".\n  \
             hint: Perhaps you meant to reference the column \"checks.target_id\".\n  \
             at line 1, column 8 of the query:\n    \
             SELECT target FROM checks\n           ^"
        );
    }

    #[test]
    fn the_position_of_a_multi_line_query_names_its_line() {
        let query = "SELECT count(*)\nFROM checks\nWHERE target = 'x'";
        let at = query.find("target").unwrap() + 1;
        let text = failure(Some(u32::try_from(at).unwrap())).render(query);
        assert!(
            text.ends_with(
                "at line 3, column 7 of the query:\n    WHERE target = 'x'\n          ^"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_position_past_the_query_is_left_out() {
        let text = failure(Some(99)).render("SELECT 1");
        assert!(!text.contains("at line"), "{text}");
        assert!(text.contains("hint: Perhaps"), "{text}");
    }

    #[test]
    fn a_bare_message_stays_one_line() {
        let bare = DbFailure {
            message: "division by zero",
            detail: None,
            hint: None,
            position: None,
        };
        assert_eq!(bare.render("SELECT 1/0"), "division by zero");
    }
}
