//! The series table of one target, bounded so that series churn cannot grow it forever.

use std::sync::{Arc, Mutex};

use metr_storage::SeriesTable;

/// Holds a target's [`SeriesTable`] and starts a fresh one before a scrape
/// could push it past `max_series` (series that came and went). Scrapes still
/// buffered keep the old table alive through their `Arc` until they are
/// written: a target holds at most two tables of `max_series` series.
pub struct TargetSeries {
    table: Mutex<Arc<SeriesTable>>,
    max_series: usize,
    /// Series one scrape may add (its sample limit).
    per_scrape: usize,
}

impl TargetSeries {
    pub fn new(max_series: usize, per_scrape: usize) -> Self {
        TargetSeries {
            table: Mutex::new(Arc::new(SeriesTable::new())),
            max_series,
            per_scrape,
        }
    }

    /// Series in the current table and the bytes it holds.
    pub fn usage(&self) -> (usize, usize) {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (table.len(), table.memory_bytes())
    }

    /// The table the next scrape records into.
    pub fn current(&self) -> Arc<SeriesTable> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len().saturating_add(self.per_scrape) > self.max_series {
            tracing::info!(
                series = table.len(),
                "series table outgrew its bound: starting a fresh one"
            );
            *table = Arc::new(SeriesTable::new());
        }
        table.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metr_domain::Labels;

    #[test]
    fn a_table_past_its_bound_is_replaced_and_the_old_one_survives_its_users() {
        let series = TargetSeries::new(3, 1);
        let old = series.current();
        let mut rec = old.record();
        for name in ["a", "b", "c"] {
            rec.push(name, Labels::new(), 1.0, 0).unwrap();
        }
        drop(rec);
        let new = series.current();
        assert!(!Arc::ptr_eq(&old, &new));
        assert_eq!(old.len(), 3, "buffered scrapes still resolve their series");
        assert!(new.is_empty());
    }

    #[test]
    fn a_target_that_keeps_its_series_keeps_its_table_even_at_its_sample_limit() {
        let limit = 100;
        let series = TargetSeries::new(crate::memory::max_series(limit), limit);
        let first = series.current();
        for scrape in 0..5 {
            let table = series.current();
            assert!(Arc::ptr_eq(&first, &table), "replaced at scrape {scrape}");
            let mut rec = table.record();
            for i in 0..limit {
                rec.push(&format!("m{i}"), Labels::new(), 1.0, scrape)
                    .unwrap();
            }
        }
        // Churn: a whole new set of series each scrape; the table never
        // holds more than max_series.
        for scrape in 0..10 {
            let table = series.current();
            assert!(table.len() + limit <= crate::memory::max_series(limit));
            let mut rec = table.record();
            for i in 0..limit {
                rec.push(&format!("c{scrape}_{i}"), Labels::new(), 1.0, 0)
                    .unwrap();
            }
        }
    }
}
