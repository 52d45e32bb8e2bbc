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
use super::statement::copied;
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
        let (tx, targets) = self.begin(client, &batch.targets).await?;
        let target_of = target_lookup(&targets);
        // Each scrape's known ids, looked up once for both steps below.
        let known = known_ids(scrapes);
        let new_ids = create_all_series(&tx, scrapes, &known, &target_of).await?;
        let rows = encode(scrapes, &known, &new_ids, &target_of)?;
        if mode == Mode::Merge {
            stage_tables(&tx).await?;
        }
        let checks = batch.checks.len();
        copied(
            "COPY sample_blocks",
            rows.len(),
            copy_blocks(&tx, &rows, mode),
        )
        .await?;
        copied(
            "COPY checks",
            checks,
            copy_checks(&tx, batch, &target_of, mode),
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| StorageError::database("commit a batch", e))?;
        // Only committed ids may be remembered: a rolled-back insert leaves none.
        remember_ids(scrapes, &new_ids);
        self.remember_targets(&batch.targets, &targets);
        Ok(())
    }

    /// Creates up to `max_series` of the batch's series that have no id yet,
    /// in a transaction of their own, and remembers their ids: a later piece,
    /// the write, or its retry, starts where this one stopped. True when every
    /// series of the batch has an id.
    pub(super) async fn create_batch_series(
        &self,
        batch: &Batch,
        max_series: usize,
    ) -> Result<bool, StorageError> {
        let scrapes: Vec<&ScrapeSamples> = batch.scrapes.iter().collect();
        let known = known_ids(&scrapes);
        if known.iter().flatten().all(Option::is_some) {
            return Ok(true);
        }
        let mut client = self.client().await?;
        let (tx, targets) = self.begin(&mut client, &batch.targets).await?;
        let target_of = target_lookup(&targets);
        let limit = max_series.clamp(1, SERIES_PER_STATEMENT);
        let (missing, more) = missing_series(&scrapes, &known, &target_of, limit)?;
        let new_ids = create_series(&tx, missing).await?;
        tx.commit()
            .await
            .map_err(|e| StorageError::database("commit new series", e))?;
        remember_ids(&scrapes, &new_ids);
        self.remember_targets(&batch.targets, &targets);
        Ok(!more)
    }

    /// A transaction with the batch's targets registered in it, and their ids.
    async fn begin<'a>(
        &self,
        client: &'a mut deadpool_postgres::Object,
        targets: &[TargetRef],
    ) -> Result<(Tx<'a>, HashMap<String, i32>), StorageError> {
        let tx = client
            .transaction()
            .await
            .map_err(|e| StorageError::database("begin a transaction", e))?;
        let ids = self.register_targets(&tx, targets).await?;
        Ok((tx, ids))
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

/// Resolves a target's name to its id among those the batch registered.
fn target_lookup(
    targets: &HashMap<String, i32>,
) -> impl Fn(&str) -> Result<i32, StorageError> + '_ {
    |name: &str| {
        targets
            .get(name)
            .copied()
            .ok_or(StorageError::Rejected(format!(
                "store data of target {name:?}: the batch does not register it"
            )))
    }
}

/// Each scrape's known series ids, sample by sample.
fn known_ids(scrapes: &[&ScrapeSamples]) -> Vec<Vec<Option<i64>>> {
    scrapes
        .iter()
        .map(|s| s.table.ids(s.samples.iter().map(|x| x.series)))
        .collect()
}

/// Hands committed new ids to the series tables they belong to.
fn remember_ids(scrapes: &[&ScrapeSamples], new_ids: &NewIds) {
    if new_ids.is_empty() {
        return;
    }
    let mut done = HashSet::new();
    for scrape in scrapes {
        let key = table_key(&scrape.table);
        if done.insert(key) {
            scrape.table.set_ids(
                new_ids
                    .iter()
                    .filter(|((table, _), _)| *table == key)
                    .map(|((_, index), id)| (*index, *id)),
            );
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

/// New series per `INSERT`: bounds a PostgreSQL backend's memory for series
/// creation (one statement of 600k rows took over 1 GiB) and the time of one
/// piece of work (about 0.2 s for 5,000 series here), whatever the batch holds.
pub const SERIES_PER_STATEMENT: usize = 5_000;

/// A series of the batch with no id yet: its target's id, its table and index, name and labels.
type Missing = (i32, usize, SeriesIndex, String, Labels);

/// Up to `limit` distinct series of the scrapes that have no id yet, and
/// whether more than those remain.
fn missing_series(
    scrapes: &[&ScrapeSamples],
    known: &[Vec<Option<i64>>],
    target_of: &impl Fn(&str) -> Result<i32, StorageError>,
    limit: usize,
) -> Result<(Vec<Missing>, bool), StorageError> {
    let mut missing: Vec<Missing> = Vec::new();
    let mut seen = HashSet::new();
    for (scrape, ids) in scrapes.iter().zip(known) {
        let key = table_key(&scrape.table);
        for (sample, id) in scrape.samples.iter().zip(ids) {
            if id.is_some() || seen.contains(&(key, sample.series)) {
                continue;
            }
            if missing.len() == limit {
                return Ok((missing, true));
            }
            seen.insert((key, sample.series));
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
    Ok((missing, false))
}

/// Creates `missing` (one statement's worth) and returns their ids.
async fn create_series(tx: &Tx<'_>, mut missing: Vec<Missing>) -> Result<NewIds, StorageError> {
    let mut new_ids = NewIds::new();
    if missing.is_empty() {
        return Ok(new_ids);
    }
    // One target's new series get neighbouring ids, so they share block rows.
    missing.sort_by_key(|m| m.0);
    let target_ids: Vec<i32> = missing.iter().map(|m| m.0).collect();
    let names: Vec<&str> = missing.iter().map(|m| m.3.as_str()).collect();
    let labels: Vec<Json<&Labels>> = missing.iter().map(|m| Json(&m.4)).collect();
    // The ids of the rows inserted come back with them; only series that
    // already existed (a retry whose commit was not acknowledged, another
    // shard) need a lookup. The lookup cost as much as the insert.
    let inserted = tx
        .query(
            "INSERT INTO series (target_id, name, labels) \
             SELECT * FROM unnest($1::int4[], $2::text[], $3::jsonb[]) ON CONFLICT DO NOTHING \
             RETURNING target_id, name, labels, id",
            &[&target_ids, &names, &labels],
        )
        .await
        .map_err(|e| StorageError::database("create series", e))?;
    let mut places: HashMap<(i32, &str, &Labels), Vec<usize>> = HashMap::new();
    for (i, m) in missing.iter().enumerate() {
        places.entry((m.0, m.3.as_str(), &m.4)).or_default().push(i);
    }
    for row in &inserted {
        let Json(row_labels): Json<Labels> = row.get(2);
        if let Some(at) = places.get(&(row.get::<_, i32>(0), row.get::<_, &str>(1), &row_labels)) {
            for &i in at {
                new_ids.insert((missing[i].1, missing[i].2), row.get(3));
            }
        }
    }
    if new_ids.len() < missing.len() {
        let left: Vec<usize> = (0..missing.len())
            .filter(|&i| !new_ids.contains_key(&(missing[i].1, missing[i].2)))
            .collect();
        let target_ids: Vec<i32> = left.iter().map(|&i| missing[i].0).collect();
        let names: Vec<&str> = left.iter().map(|&i| missing[i].3.as_str()).collect();
        let labels: Vec<Json<&Labels>> = left.iter().map(|&i| Json(&missing[i].4)).collect();
        let rows = tx
            .query(
                "SELECT u.i::int4, se.id FROM series se \
                 JOIN unnest($1::int4[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS u(t, n, l, i) \
                 ON se.target_id = u.t \
                 AND metr_series_key(se.name, se.labels) = metr_series_key(u.n, u.l) \
                 AND se.name = u.n AND se.labels = u.l",
                &[&target_ids, &names, &labels],
            )
            .await
            .map_err(|e| StorageError::database("look up series", e))?;
        for row in rows {
            let ordinal: i32 = row.get(0);
            let m = &missing[left[(ordinal - 1) as usize]];
            new_ids.insert((m.1, m.2), row.get(1));
        }
    }
    if new_ids.len() != missing.len() {
        return Err(StorageError::Rejected(format!(
            "create series: {} of {} new series were not found after their insert",
            missing.len() - new_ids.len(),
            missing.len()
        )));
    }
    Ok(new_ids)
}

/// Creates every series of the scrapes that has no id yet, a statement at a time.
async fn create_all_series(
    tx: &Tx<'_>,
    scrapes: &[&ScrapeSamples],
    known: &[Vec<Option<i64>>],
    target_of: &impl Fn(&str) -> Result<i32, StorageError>,
) -> Result<NewIds, StorageError> {
    // Copied only when a batch needs more than one statement (a batch whose
    // series were created in pieces beforehand needs none).
    let mut known = std::borrow::Cow::Borrowed(known);
    let mut new_ids = NewIds::new();
    loop {
        let (missing, more) = missing_series(scrapes, &known, target_of, SERIES_PER_STATEMENT)?;
        let created = create_series(tx, missing).await?;
        if !more {
            new_ids.extend(created);
            return Ok(new_ids);
        }
        // Mark what this statement created, so the next one skips it.
        for (scrape, ids) in scrapes.iter().zip(known.to_mut().iter_mut()) {
            let key = table_key(&scrape.table);
            for (sample, id) in scrape.samples.iter().zip(ids.iter_mut()) {
                if id.is_none() {
                    *id = created.get(&(key, sample.series)).copied();
                }
            }
        }
        new_ids.extend(created);
    }
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
