//! The write and read interfaces the checker and the API depend on.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use metr_domain::{Check, Sample, Series, TargetSummary};

use crate::batch::Batch;
use crate::error::StorageError;
use crate::query::{CheckQuery, MetricQuery, Page, SeriesQuery};
use crate::usage::StorageUsage;

/// Where the checker stores what it sees.
#[async_trait]
pub trait WriteRepository: Send + Sync {
    /// Stores a whole batch atomically. Writing the same batch twice stores it once.
    async fn write(&self, batch: &Batch) -> Result<(), StorageError>;

    /// Creates up to `max_series` of the batch's series that the store does
    /// not hold yet, and keeps them whatever becomes of the batch; true once
    /// none is left. Lets a caller split a batch of many new series into
    /// pieces that each finish within a timeout, and resume after a failure
    /// where it stopped. Stores with nothing to create in advance return true.
    async fn create_series(
        &self,
        _batch: &Batch,
        _max_series: usize,
    ) -> Result<bool, StorageError> {
        Ok(true)
    }

    /// Removes samples older than `cutoff` (at the store's granularity: whole
    /// days for PostgreSQL); returns how many units (partitions, samples) went.
    async fn drop_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StorageError>;

    /// Rewrites the samples of every window of `span` that ends at or before
    /// `cutoff` into compressed chunks; returns how many samples moved. Stores
    /// that do not compress keep everything as written and return 0.
    async fn compact(
        &self,
        _cutoff: DateTime<Utc>,
        _span: chrono::Duration,
    ) -> Result<u64, StorageError> {
        Ok(0)
    }

    /// Proves the store is reachable now.
    async fn ping(&self) -> Result<(), StorageError>;
}

/// What the API reads.
#[async_trait]
pub trait ReadRepository: Send + Sync {
    /// Checks matching the query, newest first.
    async fn checks(&self, query: &CheckQuery) -> Result<Page<Check>, StorageError>;

    /// Samples matching the query, newest first.
    async fn metrics(&self, query: &MetricQuery) -> Result<Page<Sample>, StorageError>;

    /// Distinct series matching the query, in the order they were first seen.
    async fn series(&self, query: &SeriesQuery) -> Result<Page<Series>, StorageError>;

    /// Every target seen, by name, with its state as of `now`.
    async fn targets(&self, now: DateTime<Utc>) -> Result<Vec<TargetSummary>, StorageError>;

    /// Timestamps of the oldest and newest stored samples, `None` when there are none.
    async fn held_range(&self) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>, StorageError>;

    /// Samples held by each part of the sample storage, and their bytes.
    async fn usage(&self) -> Result<StorageUsage, StorageError>;

    /// Proves the store is reachable now.
    async fn ping(&self) -> Result<(), StorageError>;
}
