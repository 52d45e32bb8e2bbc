//! An in-memory repository with the same semantics as the PostgreSQL one, for
//! unit tests of the checker and the API. It can be switched "unavailable" to
//! play a database outage.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use metr_domain::{Check, CheckStatus, Labels, Sample, SampleValue, Series, TargetSummary};

use crate::batch::{Batch, TargetRef};
use crate::cursor::Cursor;
use crate::error::StorageError;
use crate::query::{CheckQuery, MetricQuery, Page, SeriesQuery};
use crate::repository::{ReadRepository, WriteRepository};
use crate::usage::{StoragePart, StorageUsage};

#[derive(Default)]
struct Store {
    targets: BTreeMap<String, TargetRef>,
    /// Series in insertion order; a series' id is its index + 1.
    series: Vec<Series>,
    series_ids: HashMap<Series, i64>,
    /// (series id, timestamp in µs) → value; the key makes rewrites idempotent.
    samples: BTreeMap<(i64, i64), f64>,
    /// Checks with their id; (target, checked_at) is unique, as in PostgreSQL.
    checks: Vec<(i64, Check)>,
}

/// Repository kept in process memory.
#[derive(Default)]
pub struct MemoryRepository {
    store: Mutex<Store>,
    unavailable: AtomicBool,
    writes: std::sync::atomic::AtomicUsize,
}

impl MemoryRepository {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail as if the database were down (`true`) or back (`false`).
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// Number of batches stored so far.
    pub fn write_count(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// Every stored sample, oldest first per series: for assertions in tests.
    pub fn all_samples(&self) -> Vec<Sample> {
        let store = self.store.lock().expect("store lock");
        store
            .samples
            .iter()
            .map(|(&(id, ts), &value)| sample_of(&store.series[(id - 1) as usize], ts, value))
            .collect()
    }

    /// Every stored check in insertion order: for assertions in tests.
    pub fn all_checks(&self) -> Vec<Check> {
        let store = self.store.lock().expect("store lock");
        store.checks.iter().map(|(_, c)| c.clone()).collect()
    }

    fn available(&self) -> Result<(), StorageError> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(StorageError::Unavailable(
                "in-memory store switched off".into(),
            ))
        } else {
            Ok(())
        }
    }
}

fn sample_of(series: &Series, ts_micros: i64, value: f64) -> Sample {
    Sample {
        target: series.target.clone(),
        name: series.name.clone(),
        labels: series.labels.clone(),
        value: SampleValue(value),
        timestamp: DateTime::from_timestamp_micros(ts_micros).unwrap_or_default(),
    }
}

fn in_range(ts: DateTime<Utc>, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> bool {
    from.is_none_or(|f| ts >= f) && to.is_none_or(|t| ts <= t)
}

fn has_labels(labels: &Labels, wanted: &[(String, String)]) -> bool {
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[async_trait]
impl WriteRepository for MemoryRepository {
    async fn write(&self, batch: &Batch) -> Result<(), StorageError> {
        self.available()?;
        let mut store = self.store.lock().expect("store lock");
        for target in &batch.targets {
            store.targets.insert(target.name.clone(), target.clone());
        }
        let mut stored: Vec<(Series, i64, f64)> = batch
            .samples
            .iter()
            .map(|sample| {
                let series = Series {
                    target: sample.target.clone(),
                    name: sample.name.clone(),
                    labels: sample.labels.clone(),
                };
                (series, sample.timestamp.timestamp_micros(), sample.value.0)
            })
            .collect();
        for scrape in &batch.scrapes {
            for sample in &scrape.samples {
                let entry = scrape.table.entry(sample.series).ok_or_else(|| {
                    StorageError::Rejected("store a sample of an unknown series".into())
                })?;
                let series = Series {
                    target: scrape.target.clone(),
                    name: entry.name,
                    labels: entry.labels,
                };
                stored.push((series, sample.ts_micros, sample.value));
            }
        }
        for (series, ts, value) in stored {
            let id = match store.series_ids.get(&series) {
                Some(id) => *id,
                None => {
                    store.series.push(series.clone());
                    let id = store.series.len() as i64;
                    store.series_ids.insert(series, id);
                    id
                }
            };
            store.samples.entry((id, ts)).or_insert(value);
        }
        for check in &batch.checks {
            let duplicate = store
                .checks
                .iter()
                .any(|(_, c)| c.target == check.target && c.checked_at == check.checked_at);
            if !duplicate {
                let id = store.checks.len() as i64 + 1;
                store.checks.push((id, check.clone()));
            }
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn drop_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        self.available()?;
        let mut store = self.store.lock().expect("store lock");
        let before = store.samples.len();
        let cutoff = cutoff.timestamp_micros();
        store.samples.retain(|&(_, ts), _| ts >= cutoff);
        Ok((before - store.samples.len()) as u64)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.available()
    }
}

#[async_trait]
impl ReadRepository for MemoryRepository {
    async fn checks(&self, query: &CheckQuery) -> Result<Page<Check>, StorageError> {
        self.available()?;
        let store = self.store.lock().expect("store lock");
        let mut rows: Vec<(Cursor, Check)> = store
            .checks
            .iter()
            .filter(|(_, c)| query.target.as_ref().is_none_or(|t| &c.target == t))
            .filter(|(_, c)| query.status.is_none_or(|s| c.status == s))
            .filter(|(_, c)| in_range(c.checked_at, query.from, query.to))
            .map(|(id, c)| {
                let key = Cursor {
                    ts_micros: c.checked_at.timestamp_micros(),
                    id: *id,
                };
                (key, c.clone())
            })
            .filter(|(key, _)| {
                query
                    .cursor
                    .is_none_or(|c| (key.ts_micros, key.id) < (c.ts_micros, c.id))
            })
            .collect();
        rows.sort_by_key(|(key, _)| std::cmp::Reverse((key.ts_micros, key.id)));
        rows.truncate(query.limit as usize + 1);
        Ok(Page::from_rows(rows, query.limit))
    }

    async fn metrics(&self, query: &MetricQuery) -> Result<Page<Sample>, StorageError> {
        self.available()?;
        let store = self.store.lock().expect("store lock");
        let mut rows: Vec<(Cursor, Sample)> = store
            .samples
            .iter()
            .filter_map(|(&(id, ts), &value)| {
                let series = &store.series[(id - 1) as usize];
                let key = Cursor { ts_micros: ts, id };
                let wanted = query.target.as_ref().is_none_or(|t| &series.target == t)
                    && query.name.as_ref().is_none_or(|n| &series.name == n)
                    && has_labels(&series.labels, &query.labels)
                    && query.cursor.is_none_or(|c| (ts, id) < (c.ts_micros, c.id));
                wanted.then(|| (key, sample_of(series, ts, value)))
            })
            .filter(|(_, s)| in_range(s.timestamp, query.from, query.to))
            .collect();
        rows.sort_by_key(|(key, _)| std::cmp::Reverse((key.ts_micros, key.id)));
        rows.truncate(query.limit as usize + 1);
        Ok(Page::from_rows(rows, query.limit))
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Page<Series>, StorageError> {
        self.available()?;
        let store = self.store.lock().expect("store lock");
        let rows: Vec<(Cursor, Series)> = store
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    Cursor {
                        ts_micros: 0,
                        id: i as i64 + 1,
                    },
                    s,
                )
            })
            .filter(|(_, s)| query.target.as_ref().is_none_or(|t| &s.target == t))
            .filter(|(_, s)| query.name.as_ref().is_none_or(|n| &s.name == n))
            .filter(|(key, _)| query.cursor.is_none_or(|c| key.id > c.id))
            .take(query.limit as usize + 1)
            .map(|(key, s)| (key, s.clone()))
            .collect();
        Ok(Page::from_rows(rows, query.limit))
    }

    async fn targets(&self, now: DateTime<Utc>) -> Result<Vec<TargetSummary>, StorageError> {
        self.available()?;
        let store = self.store.lock().expect("store lock");
        let hour_ago = now - Duration::hours(1);
        Ok(store
            .targets
            .values()
            .map(|t| {
                let mut checks: Vec<&Check> = store
                    .checks
                    .iter()
                    .map(|(_, c)| c)
                    .filter(|c| c.target == t.name)
                    .collect();
                checks.sort_by_key(|c| std::cmp::Reverse(c.checked_at));
                let last = checks.iter().max_by_key(|c| c.checked_at);
                let recent: Vec<_> = checks.iter().filter(|c| c.checked_at > hour_ago).collect();
                let up = recent
                    .iter()
                    .filter(|c| c.status == CheckStatus::Up)
                    .count();
                TargetSummary {
                    name: t.name.clone(),
                    kind: t.kind,
                    url: t.url.clone(),
                    last_status: last.map(|c| c.status),
                    last_checked_at: last.map(|c| c.checked_at),
                    last_latency_ms: last.map(|c| c.latency_ms),
                    uptime_ratio: (!recent.is_empty()).then(|| up as f64 / recent.len() as f64),
                    recent_checks: checks
                        .iter()
                        .take(TargetSummary::RECENT_CHECKS)
                        .map(|c| c.checked_at)
                        .collect(),
                }
            })
            .collect())
    }

    async fn held_range(&self) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StorageError> {
        self.available()?;
        let store = self.store.lock().expect("store lock");
        let oldest = store.samples.keys().map(|&(_, ts)| ts).min();
        let newest = store.samples.keys().map(|&(_, ts)| ts).max();
        Ok(oldest.zip(newest).and_then(|(o, n)| {
            DateTime::from_timestamp_micros(o).zip(DateTime::from_timestamp_micros(n))
        }))
    }

    /// Everything is head; its bytes are what the samples' keys and values
    /// take in memory (series id, timestamp, value), as nothing is on disk.
    async fn usage(&self) -> Result<StorageUsage, StorageError> {
        self.available()?;
        let samples = self.store.lock().expect("store lock").samples.len() as u64;
        Ok(StorageUsage {
            head: StoragePart {
                samples,
                bytes: samples * IN_MEMORY_SAMPLE_BYTES,
            },
            compressed: StoragePart::default(),
        })
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.available()
    }
}

/// Series id, timestamp and value of one in-memory sample.
const IN_MEMORY_SAMPLE_BYTES: u64 = 24;
