//! The repository over a connection pool, and the caches that spare round trips.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use metr_domain::{Check, Sample, Series, TargetSummary};
use tokio_postgres::NoTls;

use crate::batch::{Batch, TargetRef};
use crate::error::StorageError;
use crate::migrate;
use crate::query::{CheckQuery, MetricQuery, Page, SeriesQuery};
use crate::repository::{ReadRepository, WriteRepository};
use crate::secret::DatabaseUrl;
use crate::usage::StorageUsage;

/// Repository over a pooled PostgreSQL connection.
pub struct PgRepository {
    pub(super) pool: Pool,
    /// Targets registered with these exact settings, so batches skip the upsert.
    pub(super) targets: Mutex<HashMap<TargetRef, i32>>,
    /// Days (since the epoch) whose sample partition is known to exist.
    pub(super) partitions: Mutex<HashSet<i32>>,
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
            targets: Mutex::new(HashMap::new()),
            partitions: Mutex::new(HashSet::new()),
        })
    }

    /// Fails with [`StorageError::NotMigrated`] unless the schema is current.
    pub async fn ensure_migrated(&self) -> Result<(), StorageError> {
        let mut client = self.pool.get().await?;
        migrate::ensure_current(&mut client).await
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        Ok(self.pool.get().await?)
    }
}

#[async_trait]
impl WriteRepository for PgRepository {
    async fn write(&self, batch: &Batch) -> Result<(), StorageError> {
        self.write_batch(batch).await
    }

    async fn create_series(&self, batch: &Batch, max_series: usize) -> Result<bool, StorageError> {
        self.create_batch_series(batch, max_series).await
    }

    async fn drop_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError> {
        self.drop_partitions_before(cutoff).await
    }

    async fn compact(
        &self,
        cutoff: DateTime<Utc>,
        span: chrono::Duration,
    ) -> Result<u64, StorageError> {
        self.compact_before(cutoff, span).await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let client = self.client().await?;
        super::statement::traced("SELECT 1", Vec::len, async {
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| StorageError::database("ping the database", e))
        })
        .await?;
        Ok(())
    }
}

#[async_trait]
impl ReadRepository for PgRepository {
    async fn checks(&self, query: &CheckQuery) -> Result<Page<Check>, StorageError> {
        self.read_checks(query).await
    }

    async fn metrics(&self, query: &MetricQuery) -> Result<Page<Sample>, StorageError> {
        self.read_metrics(query).await
    }

    async fn series(&self, query: &SeriesQuery) -> Result<Page<Series>, StorageError> {
        self.read_series(query).await
    }

    async fn targets(&self, now: DateTime<Utc>) -> Result<Vec<TargetSummary>, StorageError> {
        self.read_targets(now).await
    }

    async fn held_range(&self) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StorageError> {
        self.read_held_range().await
    }

    async fn usage(&self) -> Result<StorageUsage, StorageError> {
        self.read_usage().await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        WriteRepository::ping(self).await
    }
}
