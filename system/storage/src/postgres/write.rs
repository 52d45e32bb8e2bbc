//! The write path: resolve series ids, encode block rows, COPY them in one transaction.
//!
//! A batch is first COPYed straight into its tables, which is the cheapest way
//! PostgreSQL takes rows. Only when that meets a row that already exists (the
//! retry of a batch whose commit was not acknowledged, or a target repeating an
//! explicit timestamp) is the batch written again through staging tables with
//! `ON CONFLICT`, merging into what is there: retries stay idempotent without
//! every batch paying for a second copy of its rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::pin_mut;
use metr_domain::{CheckStatus, Labels, Sample};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};

use super::repo::PgRepository;
use crate::batch::{Batch, TargetRef};
use crate::blocks::{BlockEncoder, BlockRow};
use crate::error::StorageError;
use crate::series::{ScrapeSamples, SeriesIndex, SeriesTable};

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// How rows reach their tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// COPY straight into the tables; fails on a row that exists.
    Copy,
    /// COPY into staging tables, then merge with `ON CONFLICT`.
    Merge,
}

/// Series created in this transaction: (table, index) → id, kept until commit.
type NewIds = HashMap<(usize, SeriesIndex), i64>;

fn table_key(table: &Arc<SeriesTable>) -> usize {
    Arc::as_ptr(table) as usize
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Day since the Unix epoch (UTC) of a timestamp in microseconds.
pub(super) fn day_of(ts_micros: i64) -> i32 {
    ts_micros.div_euclid(MICROS_PER_DAY) as i32
}

fn timestamp(ts_micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(ts_micros).unwrap_or_default()
}

impl PgRepository {
    pub(super) async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        if batch.is_empty() && batch.targets.is_empty() {
            return Ok(());
        }
        let converted = scrapes_of_samples(&batch.samples);
        let scrapes: Vec<&ScrapeSamples> = batch.scrapes.iter().chain(&converted).collect();
        let mut client = self.client().await?;
        self.ensure_partitions(&client, days(&scrapes)).await?;
        let mut mode = Mode::Copy;
        let mut partitions_refreshed = false;
        loop {
            match self.write_tx(&mut client, batch, &scrapes, mode).await {
                Err(e) if e.is_conflict() && mode == Mode::Copy => mode = Mode::Merge,
                Err(e) if e.is_missing_partition() && !partitions_refreshed => {
                    // Someone dropped a partition this process thought was there.
                    self.forget_partitions();
                    self.ensure_partitions(&client, days(&scrapes)).await?;
                    partitions_refreshed = true;
                }
                other => return other,
            }
        }
    }

    async fn write_tx(
        &self,
        client: &mut deadpool_postgres::Object,
        batch: &Batch,
        scrapes: &[&ScrapeSamples],
        mode: Mode,
    ) -> Result<(), StorageError> {
        let tx = client
            .transaction()
            .await
            .map_err(|e| StorageError::database("begin a transaction", e))?;
        let targets = self.register_targets(&tx, &batch.targets).await?;
        let target_of = |name: &str| {
            targets
                .get(name)
                .copied()
                .ok_or(StorageError::Rejected(format!(
                    "store data of target {name:?}: the batch does not register it"
                )))
        };
        // Each scrape's known ids, looked up once for both steps below.
        let known: Vec<Vec<Option<i64>>> = scrapes
            .iter()
            .map(|s| s.table.ids(s.samples.iter().map(|x| x.series)))
            .collect();
        let new_ids = create_series(&tx, scrapes, &known, &target_of).await?;
        let rows = encode(scrapes, &known, &new_ids, &target_of)?;
        if mode == Mode::Merge {
            stage_tables(&tx).await?;
        }
        copy_blocks(&tx, &rows, mode).await?;
        copy_checks(&tx, batch, &target_of, mode).await?;
        tx.commit()
            .await
            .map_err(|e| StorageError::database("commit a batch", e))?;
        // Only committed ids may be remembered: a rolled-back insert leaves none.
        for scrape in scrapes {
            let key = table_key(&scrape.table);
            scrape.table.set_ids(
                new_ids
                    .iter()
                    .filter(|((table, _), _)| *table == key)
                    .map(|((_, index), id)| (*index, *id)),
            );
        }
        self.remember_targets(&batch.targets, &targets);
        Ok(())
    }

    /// Ids of the batch's targets, upserting only those not registered as they are.
    async fn register_targets(
        &self,
        tx: &Tx<'_>,
        targets: &[TargetRef],
    ) -> Result<HashMap<String, i32>, StorageError> {
        let mut ids = HashMap::new();
        let mut unknown = Vec::new();
        {
            let known = self.targets.lock().unwrap_or_else(|p| p.into_inner());
            for target in targets {
                match known.get(target) {
                    Some(id) => {
                        ids.insert(target.name.clone(), *id);
                    }
                    None => unknown.push(target),
                }
            }
        }
        let upsert = "INSERT INTO targets (name, kind, url) VALUES ($1, $2, $3) \
                      ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, url = EXCLUDED.url \
                      RETURNING id";
        for target in unknown {
            let row = tx
                .query_one(upsert, &[&target.name, &target.kind.as_str(), &target.url])
                .await
                .map_err(|e| StorageError::database("register a target", e))?;
            ids.insert(target.name.clone(), row.get(0));
        }
        Ok(ids)
    }

    fn remember_targets(&self, targets: &[TargetRef], ids: &HashMap<String, i32>) {
        let mut known = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        for target in targets {
            if let Some(id) = ids.get(&target.name) {
                known.insert(target.clone(), *id);
            }
        }
    }
}

/// Turns whole samples into scrapes, one series table per target.
fn scrapes_of_samples(samples: &[Sample]) -> Vec<ScrapeSamples> {
    let mut by_target: Vec<(String, Vec<&Sample>)> = Vec::new();
    for sample in samples {
        match by_target.iter_mut().find(|(t, _)| *t == sample.target) {
            Some((_, list)) => list.push(sample),
            None => by_target.push((sample.target.clone(), vec![sample])),
        }
    }
    by_target
        .into_iter()
        .map(|(target, samples)| {
            let table = Arc::new(SeriesTable::new());
            let recorded = {
                let mut recorder = table.record();
                for s in samples {
                    // A repeated sample is stored once, as a retried write would be.
                    let _ = recorder.push(
                        &s.name,
                        s.labels.clone(),
                        s.value.0,
                        s.timestamp.timestamp_micros(),
                    );
                }
                recorder.finish()
            };
            ScrapeSamples {
                target,
                table,
                samples: recorded,
            }
        })
        .collect()
}

/// Distinct days the samples fall on.
fn days(scrapes: &[&ScrapeSamples]) -> Vec<i32> {
    let mut days = Vec::new();
    for scrape in scrapes {
        let mut last = None;
        for sample in &scrape.samples {
            let day = day_of(sample.ts_micros);
            if last != Some(day) && !days.contains(&day) {
                days.push(day);
            }
            last = Some(day);
        }
    }
    days
}

/// Creates the series of the batch that have no id yet; returns their ids.
async fn create_series(
    tx: &Tx<'_>,
    scrapes: &[&ScrapeSamples],
    known: &[Vec<Option<i64>>],
    target_of: &impl Fn(&str) -> Result<i32, StorageError>,
) -> Result<NewIds, StorageError> {
    let mut missing: Vec<(i32, usize, SeriesIndex, String, Labels)> = Vec::new();
    let mut seen = HashSet::new();
    for (scrape, ids) in scrapes.iter().zip(known) {
        let key = table_key(&scrape.table);
        for (sample, id) in scrape.samples.iter().zip(ids) {
            if id.is_none() && seen.insert((key, sample.series)) {
                let entry = scrape.table.entry(sample.series).ok_or_else(|| {
                    StorageError::Rejected("store a sample of an unknown series".into())
                })?;
                missing.push((
                    target_of(&scrape.target)?,
                    key,
                    sample.series,
                    entry.name,
                    entry.labels,
                ));
            }
        }
    }
    let mut new_ids = NewIds::new();
    if missing.is_empty() {
        return Ok(new_ids);
    }
    // One target's new series get neighbouring ids, so they share block rows.
    missing.sort_by_key(|m| m.0);
    let target_ids: Vec<i32> = missing.iter().map(|m| m.0).collect();
    let names: Vec<&str> = missing.iter().map(|m| m.3.as_str()).collect();
    let labels: Vec<Json<&Labels>> = missing.iter().map(|m| Json(&m.4)).collect();
    tx.execute(
        "INSERT INTO series (target_id, name, labels) \
         SELECT * FROM unnest($1::int4[], $2::text[], $3::jsonb[]) ON CONFLICT DO NOTHING",
        &[&target_ids, &names, &labels],
    )
    .await
    .map_err(|e| StorageError::database("create series", e))?;
    let rows = tx
        .query(
            "SELECT u.i::int4, se.id FROM series se \
             JOIN unnest($1::int4[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS u(t, n, l, i) \
             ON se.target_id = u.t AND se.name = u.n AND se.labels = u.l",
            &[&target_ids, &names, &labels],
        )
        .await
        .map_err(|e| StorageError::database("look up series", e))?;
    for row in rows {
        let ordinal: i32 = row.get(0);
        let m = &missing[(ordinal - 1) as usize];
        new_ids.insert((m.1, m.2), row.get(1));
    }
    Ok(new_ids)
}

fn encode(
    scrapes: &[&ScrapeSamples],
    known: &[Vec<Option<i64>>],
    new_ids: &NewIds,
    target_of: &impl Fn(&str) -> Result<i32, StorageError>,
) -> Result<Vec<BlockRow>, StorageError> {
    let mut encoder = BlockEncoder::new();
    for (scrape, ids) in scrapes.iter().zip(known) {
        let target_id = target_of(&scrape.target)?;
        let key = table_key(&scrape.table);
        for (sample, id) in scrape.samples.iter().zip(ids) {
            let id = id
                .or_else(|| new_ids.get(&(key, sample.series)).copied())
                .ok_or_else(|| {
                    StorageError::Rejected("store a sample whose series was not created".into())
                })?;
            encoder.push(target_id, id, sample.ts_micros, sample.value);
        }
    }
    Ok(encoder.finish())
}

async fn stage_tables(tx: &Tx<'_>) -> Result<(), StorageError> {
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning;
         CREATE TEMP TABLE IF NOT EXISTS blocks_in (target_id int4, block int8, ts timestamptz, vals float8[]) ON COMMIT DELETE ROWS;
         CREATE TEMP TABLE IF NOT EXISTS checks_in (target_id int4, up bool, http_status int4, latency_ms float8, error text, checked_at timestamptz) ON COMMIT DELETE ROWS;",
    )
    .await
    .map_err(|e| StorageError::database("prepare staging tables", e))
}

async fn copy_blocks(tx: &Tx<'_>, rows: &[BlockRow], mode: Mode) -> Result<(), StorageError> {
    if rows.is_empty() {
        return Ok(());
    }
    let table = match mode {
        Mode::Copy => "sample_blocks",
        Mode::Merge => "blocks_in",
    };
    let sink = tx
        .copy_in(&format!(
            "COPY {table} (target_id, block, ts, vals) FROM STDIN BINARY"
        ))
        .await
        .map_err(|e| StorageError::database("start copying samples", e))?;
    let types = [
        Type::INT4,
        Type::INT8,
        Type::TIMESTAMPTZ,
        Type::FLOAT8_ARRAY,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for row in rows {
        let ts = timestamp(row.ts_micros);
        let values: [&(dyn ToSql + Sync); 4] = [&row.target_id, &row.block, &ts, &row.vals];
        writer
            .as_mut()
            .write(&values)
            .await
            .map_err(|e| StorageError::database("copy samples", e))?;
    }
    writer
        .finish()
        .await
        .map_err(|e| StorageError::database("copy samples", e))?;
    if mode == Mode::Merge {
        // Slots already stored keep their value: the first write of a sample wins.
        tx.execute(
            "INSERT INTO sample_blocks AS b (target_id, block, ts, vals) \
             SELECT target_id, block, ts, vals FROM blocks_in \
             ON CONFLICT (target_id, block, ts) DO UPDATE SET vals = ARRAY( \
                 SELECT coalesce(u.old, u.new) \
                 FROM unnest(b.vals, EXCLUDED.vals) WITH ORDINALITY AS u(old, new, slot) \
                 ORDER BY u.slot) \
             WHERE b.vals IS DISTINCT FROM EXCLUDED.vals",
            &[],
        )
        .await
        .map_err(|e| StorageError::database("store samples", e))?;
    }
    Ok(())
}

async fn copy_checks(
    tx: &Tx<'_>,
    batch: &Batch,
    target_of: &impl Fn(&str) -> Result<i32, StorageError>,
    mode: Mode,
) -> Result<(), StorageError> {
    if batch.checks.is_empty() {
        return Ok(());
    }
    let table = match mode {
        Mode::Copy => "checks",
        Mode::Merge => "checks_in",
    };
    let sink = tx
        .copy_in(&format!(
            "COPY {table} (target_id, up, http_status, latency_ms, error, checked_at) FROM STDIN BINARY"
        ))
        .await
        .map_err(|e| StorageError::database("start copying checks", e))?;
    let types = [
        Type::INT4,
        Type::BOOL,
        Type::INT4,
        Type::FLOAT8,
        Type::TEXT,
        Type::TIMESTAMPTZ,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for check in &batch.checks {
        let target_id = target_of(&check.target)?;
        let up = check.status == CheckStatus::Up;
        let http_status = check.http_status.map(i32::from);
        // PostgreSQL text cannot hold NUL; an error message quoting a hostile
        // target must not make the whole batch fail.
        let error = check.error.as_ref().map(|e| e.replace('\0', "\u{FFFD}"));
        writer
            .as_mut()
            .write(&[
                &target_id,
                &up,
                &http_status,
                &check.latency_ms,
                &error,
                &check.checked_at,
            ])
            .await
            .map_err(|e| StorageError::database("copy checks", e))?;
    }
    writer
        .finish()
        .await
        .map_err(|e| StorageError::database("copy checks", e))?;
    if mode == Mode::Merge {
        tx.execute(
            "INSERT INTO checks (target_id, up, http_status, latency_ms, error, checked_at) \
             SELECT * FROM checks_in ON CONFLICT DO NOTHING",
            &[],
        )
        .await
        .map_err(|e| StorageError::database("store checks", e))?;
    }
    Ok(())
}
