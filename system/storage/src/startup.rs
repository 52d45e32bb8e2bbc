//! The database part of a service's start-up, shared by the checker and the API.

use std::time::Duration;

use crate::error::StorageError;
use crate::migrate;
use crate::postgres::{PgRepository, PoolOptions};
use crate::secret::DatabaseUrl;

/// Subcommands every service binary has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum DbCommand {
    /// Apply pending database migrations and exit.
    Migrate,
}

/// Applies migrations when asked (`--migrate`, or the `migrate` subcommand),
/// then connects and refuses an outdated schema. `None`: only migrating was asked.
pub async fn open(
    url: &DatabaseUrl,
    migrate_first: bool,
    command: Option<DbCommand>,
) -> Result<Option<PgRepository>, StorageError> {
    if migrate_first || command == Some(DbCommand::Migrate) {
        let report = migrate::run(url).await?;
        tracing::info!(applied = ?report.applied, version = report.version, "database migrated");
        if command == Some(DbCommand::Migrate) {
            return Ok(None);
        }
    }
    let repo = PgRepository::connect(url, &PoolOptions::default())?;
    repo.ensure_migrated().await?;
    Ok(Some(repo))
}

/// Longest wait between two attempts to reach the database at start-up.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Migrates (when asked) and checks the schema, waiting with back-off for as
/// long as the database is unreachable: a service started before its database
/// comes up waits for it instead of exiting. A database that answers but is
/// not migrated, or a migration that fails, is an error at once.
pub async fn wait_until_ready(
    url: &DatabaseUrl,
    repo: &PgRepository,
    migrate_first: bool,
) -> Result<(), StorageError> {
    let mut wait = Duration::from_millis(200);
    loop {
        let attempt = async {
            if migrate_first {
                let report = migrate::run(url).await?;
                tracing::info!(applied = ?report.applied, version = report.version, "database migrated");
            }
            repo.ensure_migrated().await
        };
        match attempt.await {
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, retry_in = ?wait, "database not reachable yet; waiting for it");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
            other => return other,
        }
    }
}
