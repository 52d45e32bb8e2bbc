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
            let why = e
                .as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or(e.to_string());
            return Err(failed(format!("query failed: {why}")));
        }
        Err(_) => return Err(failed("query timed out".into())),
    };
    let mut table = Vec::new();
    for row in &rows {
        let mut object = Map::new();
        for (i, column) in row.columns().iter().enumerate() {
            object.insert(column.name().to_owned(), cell(row, i).map_err(&failed)?);
        }
        table.push(Value::Object(object));
    }
    Ok(Seen {
        request: shown,
        observation: Observation::Sql(Value::Array(table)),
    })
}

/// A column value as JSON, for the common PostgreSQL types.
fn cell(row: &tokio_postgres::Row, i: usize) -> Result<Value, String> {
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
            return Err(format!(
                "column {:?} has type {other}, which metrtest does not convert; cast it in the query (e.g. ::text or ::float8)",
                column.name()
            ));
        }
    };
    Ok(v.map_err(|e| e.to_string())?.unwrap_or(Value::Null))
}
