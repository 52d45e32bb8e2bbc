//! What a reader asks for, already validated, and what a page of answers holds.

use chrono::{DateTime, Utc};
use metr_domain::CheckStatus;

use crate::cursor::Cursor;

/// Largest page any list endpoint returns.
pub const MAX_LIMIT: u32 = 1000;
/// Page size when the reader gives none.
pub const DEFAULT_LIMIT: u32 = 100;

/// Filters of `/api/v1/checks`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckQuery {
    pub target: Option<String>,
    pub status: Option<CheckStatus>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

impl Default for CheckQuery {
    fn default() -> Self {
        CheckQuery {
            target: None,
            status: None,
            from: None,
            to: None,
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// Filters of `/api/v1/metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricQuery {
    pub target: Option<String>,
    pub name: Option<String>,
    /// Label matchers `(key, value)`; a sample must carry all of them.
    pub labels: Vec<(String, String)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

impl Default for MetricQuery {
    fn default() -> Self {
        MetricQuery {
            target: None,
            name: None,
            labels: Vec::new(),
            from: None,
            to: None,
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// Filters of `/api/v1/series`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    pub target: Option<String>,
    pub name: Option<String>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

impl Default for SeriesQuery {
    fn default() -> Self {
        SeriesQuery {
            target: None,
            name: None,
            limit: MAX_LIMIT,
            cursor: None,
        }
    }
}

/// One page of results, newest first, and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` keyed rows: the extra row only proves
    /// that a next page exists, and the cursor points after the last kept row.
    pub fn from_rows(mut rows: Vec<(Cursor, T)>, limit: u32) -> Page<T> {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|(c, _)| *c)
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(|(_, item)| item).collect(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: i64) -> Vec<(Cursor, i64)> {
        (0..n)
            .map(|i| {
                (
                    Cursor {
                        ts_micros: 100 - i,
                        id: i,
                    },
                    i,
                )
            })
            .collect()
    }

    #[test]
    fn a_full_page_with_more_rows_points_after_its_last_item() {
        let page = Page::from_rows(rows(4), 3);
        assert_eq!(page.items, vec![0, 1, 2]);
        assert_eq!(
            page.next_cursor,
            Some(Cursor {
                ts_micros: 98,
                id: 2
            })
        );
    }

    #[test]
    fn the_last_page_has_no_cursor() {
        let page = Page::from_rows(rows(3), 3);
        assert_eq!(page.items.len(), 3);
        assert_eq!(page.next_cursor, None);
        assert_eq!(Page::from_rows(rows(0), 3).next_cursor, None);
    }
}
