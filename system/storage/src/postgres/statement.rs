//! A client span per SQL statement, with OpenTelemetry's database conventions:
//! `db.system` is `postgresql`, the name is the statement's summary (`SELECT
//! checks`), and neither the statement's text nor its bound values are kept.

use std::future::Future;

use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::error::StorageError;

/// The span of one statement named by its summary: an operation, then what it reads or writes.
pub(super) fn span(summary: &'static str) -> Span {
    let operation = summary.split(' ').next().unwrap_or(summary);
    tracing::info_span!(
        "sql",
        otel.name = summary,
        otel.kind = "client",
        db.system = "postgresql",
        db.system.name = "postgresql",
        db.operation.name = operation,
        db.query.summary = summary,
        db.response.returned_rows = Empty,
        rows = Empty,
        otel.status_description = Empty,
    )
}

/// Runs `statement` in the span of `summary`, recording the rows it returned
/// (counted by `rows`) or its error.
pub(super) async fn traced<T>(
    summary: &'static str,
    rows: impl FnOnce(&T) -> usize,
    statement: impl Future<Output = Result<T, StorageError>>,
) -> Result<T, StorageError> {
    let span = span(summary);
    if span.is_disabled() {
        return statement.await;
    }
    let result = statement.instrument(span.clone()).await;
    match &result {
        Ok(value) => span.record("db.response.returned_rows", rows(value)),
        Err(e) => span.record("otel.status_description", described(e)),
    };
    result
}

/// Runs `copy`, which sends `rows` rows, in the span of `summary`, recording its error.
pub(super) async fn copied(
    summary: &'static str,
    rows: usize,
    copy: impl Future<Output = Result<(), StorageError>>,
) -> Result<(), StorageError> {
    let span = span(summary);
    if span.is_disabled() {
        return copy.await;
    }
    span.record("rows", rows);
    let result = copy.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("otel.status_description", described(e));
    }
    result
}

/// The error with its causes, as the logs give it: the operation alone
/// ("query checks") would not say what went wrong.
fn described(error: &StorageError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
