//! The database part of a service's start-up, shared by the checker and the API.

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
