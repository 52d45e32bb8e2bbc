//! The PostgreSQL repository: batched binary COPY for writes, keyset-paginated reads.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::pin_mut;
use metr_domain::{
    Check, CheckStatus, Labels, Sample, SampleValue, Series, TargetKind, TargetSummary,
};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, Type};
use tokio_postgres::{NoTls, Row};

use crate::batch::Batch;
use crate::cursor::Cursor;
use crate::error::StorageError;
use crate::migrate;
use crate::query::{CheckQuery, MetricQuery, Page, SeriesQuery};
use crate::repository::{ReadRepository, WriteRepository};
use crate::secret::DatabaseUrl;
use crate::sql;

type SeriesKey = (i32, String, Labels);

/// Repository over a pooled PostgreSQL connection.
pub struct PgRepository {
    pool: Pool,
    /// Ids of series already stored, so steady-state batches skip the series upsert.
    series_ids: Mutex<HashMap<SeriesKey, i64>>,
}

/// Connection settings of the pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: usize,
    /// How long to wait for a connection, including connecting.
    pub timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 8,
            timeout: Duration::from_secs(5),
        }
    }
}

impl PgRepository {
    /// Builds a pool; no connection is made until first use.
    pub fn connect(url: &DatabaseUrl, options: &PoolOptions) -> Result<Self, StorageError> {
        let mut config = tokio_postgres::Config::from_str(url.expose())
            .map_err(|_| StorageError::Unavailable("parse the database URL".into()))?;
        config.connect_timeout(options.timeout);
        if config.get_application_name().is_none() {
            config.application_name("metr");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.timeout))
            .create_timeout(Some(options.timeout))
            .recycle_timeout(Some(options.timeout))
            .build()
            .map_err(|e| StorageError::Unavailable(format!("build the connection pool: {e}")))?;
        Ok(PgRepository {
            pool,
            series_ids: Mutex::new(HashMap::new()),
        })
    }

    /// Fails with [`StorageError::NotMigrated`] unless the schema is current.
    pub async fn ensure_migrated(&self) -> Result<(), StorageError> {
        let mut client = self.pool.get().await?;
        migrate::ensure_current(&mut client).await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        Ok(self.pool.get().await?)
    }

    async fn target_ids(
        tx: &deadpool_postgres::Transaction<'_>,
        batch: &Batch,
    ) -> Result<HashMap<String, i32>, StorageError> {
        let mut ids = HashMap::new();
        let upsert = "INSERT INTO targets (name, kind, url) VALUES ($1, $2, $3) \
                      ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, url = EXCLUDED.url \
                      RETURNING id";
        for target in &batch.targets {
            let row = tx
                .query_one(upsert, &[&target.name, &target.kind.as_str(), &target.url])
                .await
                .map_err(|e| StorageError::database("register a target", e))?;
            ids.insert(target.name.clone(), row.get(0));
        }
        Ok(ids)
    }

    /// Resolves every series of the batch to its id, creating the missing ones.
    async fn series_ids(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        samples: &[(i32, &Sample)],
    ) -> Result<HashMap<SeriesKey, i64>, StorageError> {
        let mut known = HashMap::new();
        let mut missing: Vec<SeriesKey> = Vec::new();
        {
            let cache = self.series_ids.lock().expect("series cache lock");
            for (target_id, sample) in samples {
                let key = (*target_id, sample.name.clone(), sample.labels.clone());
                if known.contains_key(&key) || missing.contains(&key) {
                    continue;
                }
                match cache.get(&key) {
                    Some(id) => {
                        known.insert(key, *id);
                    }
                    None => missing.push(key),
                }
            }
        }
        if missing.is_empty() {
            return Ok(known);
        }
        let target_ids: Vec<i32> = missing.iter().map(|k| k.0).collect();
        let names: Vec<&str> = missing.iter().map(|k| k.1.as_str()).collect();
        let labels: Vec<Json<&Labels>> = missing.iter().map(|k| Json(&k.2)).collect();
        tx.execute(
            "INSERT INTO series (target_id, name, labels) \
             SELECT * FROM unnest($1::int4[], $2::text[], $3::jsonb[]) ON CONFLICT DO NOTHING",
            &[&target_ids, &names, &labels],
        )
        .await
        .map_err(|e| StorageError::database("create series", e))?;
        let rows = tx
            .query(
                "SELECT se.id, se.target_id, se.name, se.labels FROM series se \
                 JOIN unnest($1::int4[], $2::text[], $3::jsonb[]) AS u(t, n, l) \
                 ON se.target_id = u.t AND se.name = u.n AND se.labels = u.l",
                &[&target_ids, &names, &labels],
            )
            .await
            .map_err(|e| StorageError::database("look up series", e))?;
        for row in rows {
            let Json(labels): Json<Labels> = row.get(3);
            known.insert((row.get(1), row.get(2), labels), row.get(0));
        }
        Ok(known)
    }
}

#[async_trait]
impl WriteRepository for PgRepository {
    async fn write(&self, batch: &Batch) -> Result<(), StorageError> {
        if batch.is_empty() && batch.targets.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| StorageError::database("begin a transaction", e))?;
        let targets = Self::target_ids(&tx, batch).await?;
        let target_of = |name: &str| {
            targets
                .get(name)
                .copied()
                .ok_or(StorageError::Rejected(format!(
                    "store data of target {name:?}: the batch does not register it"
                )))
        };

        let samples: Vec<(i32, &Sample)> = batch
            .samples
            .iter()
            .map(|s| Ok((target_of(&s.target)?, s)))
            .collect::<Result<_, StorageError>>()?;
        let series = self.series_ids(&tx, &samples).await?;

        // COPY into per-session staging tables, then move with ON CONFLICT DO NOTHING:
        // COPY is the fast path, and the conflict clause makes a retried batch idempotent.
        tx.batch_execute(
            "SET LOCAL client_min_messages = warning;
             CREATE TEMP TABLE IF NOT EXISTS samples_in (series_id int8, ts timestamptz, value float8) ON COMMIT DELETE ROWS;
             CREATE TEMP TABLE IF NOT EXISTS checks_in (target_id int4, up bool, http_status int4, latency_ms float8, error text, checked_at timestamptz) ON COMMIT DELETE ROWS;",
        )
        .await
        .map_err(|e| StorageError::database("prepare staging tables", e))?;

        if !samples.is_empty() {
            let sink = tx
                .copy_in("COPY samples_in (series_id, ts, value) FROM STDIN BINARY")
                .await
                .map_err(|e| StorageError::database("start copying samples", e))?;
            let writer =
                BinaryCopyInWriter::new(sink, &[Type::INT8, Type::TIMESTAMPTZ, Type::FLOAT8]);
            pin_mut!(writer);
            for (target_id, sample) in &samples {
                let key = (*target_id, sample.name.clone(), sample.labels.clone());
                let id = series[&key];
                writer
                    .as_mut()
                    .write(&[&id, &sample.timestamp, &sample.value.0])
                    .await
                    .map_err(|e| StorageError::database("copy samples", e))?;
            }
            writer
                .finish()
                .await
                .map_err(|e| StorageError::database("copy samples", e))?;
            tx.execute(
                "INSERT INTO samples (series_id, ts, value) SELECT series_id, ts, value FROM samples_in \
                 ON CONFLICT DO NOTHING",
                &[],
            )
            .await
            .map_err(|e| StorageError::database("store samples", e))?;
        }

        if !batch.checks.is_empty() {
            let sink = tx
                .copy_in("COPY checks_in FROM STDIN BINARY")
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
                writer
                    .as_mut()
                    .write(&[
                        &target_id,
                        &up,
                        &http_status,
                        &check.latency_ms,
                        &check.error,
                        &check.checked_at,
                    ])
                    .await
                    .map_err(|e| StorageError::database("copy checks", e))?;
            }
            writer
                .finish()
                .await
                .map_err(|e| StorageError::database("copy checks", e))?;
            tx.execute(
                "INSERT INTO checks (target_id, up, http_status, latency_ms, error, checked_at) \
                 SELECT * FROM checks_in ON CONFLICT DO NOTHING",
                &[],
            )
            .await
            .map_err(|e| StorageError::database("store checks", e))?;
        }

        tx.commit()
            .await
            .map_err(|e| StorageError::database("commit a batch", e))?;
        // Only committed series ids may be cached: a rolled-back insert leaves none.
        self.series_ids
            .lock()
            .expect("series cache lock")
            .extend(series);
        Ok(())
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| StorageError::database("ping the database", e))?;
        Ok(())
    }
}

fn kind_of(row: &Row, index: usize) -> TargetKind {
    let kind: &str = row.get(index);
    kind.parse().unwrap_or(TargetKind::Http)
}

fn cursor_at(ts: DateTime<Utc>, id: i64) -> Cursor {
    Cursor {
        ts_micros: ts.timestamp_micros(),
        id,
    }
}

#[async_trait]
impl ReadRepository for PgRepository {
    async fn checks(&self, query: &CheckQuery) -> Result<Page<Check>, StorageError> {
        let sql = sql::checks(query);
        let client = self.client().await?;
        let rows = client
            .query(&sql.text, &sql.param_refs())
            .await
            .map_err(|e| StorageError::database("query checks", e))?;
        let rows = rows
            .iter()
            .map(|row| {
                let checked_at: DateTime<Utc> = row.get(7);
                let up: bool = row.get(3);
                let http_status: Option<i32> = row.get(4);
                let check = Check {
                    target: row.get(1),
                    kind: kind_of(row, 2),
                    status: if up {
                        CheckStatus::Up
                    } else {
                        CheckStatus::Down
                    },
                    http_status: http_status.and_then(|s| u16::try_from(s).ok()),
                    latency_ms: row.get(5),
                    error: row.get(6),
                    checked_at,
                };
                (cursor_at(checked_at, row.get(0)), check)
            })
            .collect();
        Ok(Page::from_rows(rows, query.limit))
    }

    async fn metrics(&self, query: &MetricQuery) -> Result<Page<Sample>, StorageError> {
        let sql = sql::metrics(query);
        let client = self.client().await?;
        let rows = client
            .query(&sql.text, &sql.param_refs())
            .await
            .map_err(|e| StorageError::database("query samples", e))?;
        let rows = rows
            .iter()
            .map(|row| {
                let timestamp: DateTime<Utc> = row.get(5);
                let Json(labels): Json<Labels> = row.get(3);
                let sample = Sample {
                    target: row.get(1),
                    name: row.get(2),
                    labels,
                    value: SampleValue(row.get(4)),
                    timestamp,
                };
                (cursor_at(timestamp, row.get(0)), sample)
            })
            .collect();
        Ok(Page::from_rows(rows, query.limit))
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Page<Series>, StorageError> {
        let sql = sql::series(query);
        let client = self.client().await?;
        let rows = client
            .query(&sql.text, &sql.param_refs())
            .await
            .map_err(|e| StorageError::database("query series", e))?;
        let rows = rows
            .iter()
            .map(|row| {
                let Json(labels): Json<Labels> = row.get(3);
                let series = Series {
                    target: row.get(1),
                    name: row.get(2),
                    labels,
                };
                (
                    Cursor {
                        ts_micros: 0,
                        id: row.get(0),
                    },
                    series,
                )
            })
            .collect();
        Ok(Page::from_rows(rows, query.limit))
    }

    async fn targets(&self, now: DateTime<Utc>) -> Result<Vec<TargetSummary>, StorageError> {
        let client = self.client().await?;
        let rows = client
            .query(sql::TARGETS, &[&now])
            .await
            .map_err(|e| StorageError::database("query targets", e))?;
        Ok(rows
            .iter()
            .map(|row| {
                let up: Option<bool> = row.get(3);
                TargetSummary {
                    name: row.get(0),
                    kind: kind_of(row, 1),
                    url: row.get(2),
                    last_status: up.map(|up| {
                        if up {
                            CheckStatus::Up
                        } else {
                            CheckStatus::Down
                        }
                    }),
                    last_checked_at: row.get(4),
                    last_latency_ms: row.get(5),
                    uptime_ratio: row.get(6),
                }
            })
            .collect())
    }

    async fn ping(&self) -> Result<(), StorageError> {
        WriteRepository::ping(self).await
    }
}
