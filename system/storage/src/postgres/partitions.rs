//! Day partitions of `sample_blocks` (created ahead of the data) and of
//! `sample_chunks` (created by compaction), dropped whole for retention.

use chrono::{DateTime, NaiveDate, Utc};

use super::repo::PgRepository;
use super::write::day_of;
use crate::error::StorageError;

const PREFIXES: [&str; 2] = ["sample_blocks_", "sample_chunks_"];

fn date_of_day(day: i32) -> NaiveDate {
    DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .unwrap_or_default()
        .date_naive()
}

/// The day a partition holds, from its name `sample_blocks_YYYYMMDD` or
/// `sample_chunks_YYYYMMDD`.
fn day_of_partition(name: &str) -> Option<NaiveDate> {
    let date = PREFIXES.iter().find_map(|p| name.strip_prefix(p))?;
    NaiveDate::parse_from_str(date, "%Y%m%d").ok()
}

impl PgRepository {
    /// Makes sure a partition exists for each day, asking the database only
    /// about days this process has not seen yet.
    pub(super) async fn ensure_partitions(
        &self,
        client: &deadpool_postgres::Object,
        days: Vec<i32>,
    ) -> Result<(), StorageError> {
        let unknown: Vec<i32> = {
            let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            days.into_iter().filter(|d| !known.contains(d)).collect()
        };
        for day in unknown {
            client
                .execute(
                    "SELECT metr_ensure_sample_partition($1)",
                    &[&date_of_day(day)],
                )
                .await
                .map_err(|e| StorageError::database("create a sample partition", e))?;
            self.partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(day);
        }
        Ok(())
    }

    pub(super) fn forget_partitions(&self) {
        self.partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Drops every day partition that ends at or before `cutoff`; never deletes rows.
    pub(super) async fn drop_partitions_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent IN ('sample_blocks'::regclass, 'sample_chunks'::regclass)",
                &[],
            )
            .await
            .map_err(|e| StorageError::database("list sample partitions", e))?;
        let mut dropped = 0;
        for row in rows {
            let name: String = row.get(0);
            let Some(day) = day_of_partition(&name) else {
                continue;
            };
            let end = day
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc());
            if end.is_some_and(|end| end <= cutoff) {
                // The name comes from pg_class and matched our pattern: safe to quote.
                client
                    .batch_execute(&format!("DROP TABLE IF EXISTS \"{name}\""))
                    .await
                    .map_err(|e| StorageError::database("drop a sample partition", e))?;
                let epoch_day = day_of(
                    day.and_hms_opt(0, 0, 0)
                        .unwrap_or_default()
                        .and_utc()
                        .timestamp_micros(),
                );
                self.partitions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&epoch_day);
                tracing::info!(partition = %name, "retention: dropped a day of samples");
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_give_their_day() {
        assert_eq!(
            day_of_partition("sample_blocks_20261125"),
            NaiveDate::from_ymd_opt(2026, 11, 25)
        );
        assert_eq!(
            day_of_partition("sample_chunks_20261125"),
            NaiveDate::from_ymd_opt(2026, 11, 25)
        );
        assert_eq!(day_of_partition("sample_blocks_x"), None);
        assert_eq!(day_of_partition("other_20261125"), None);
    }

    #[test]
    fn epoch_days_convert_to_dates() {
        assert_eq!(date_of_day(0), NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
        assert_eq!(
            date_of_day(-1),
            NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()
        );
        assert_eq!(day_of(-1), -1);
    }
}
