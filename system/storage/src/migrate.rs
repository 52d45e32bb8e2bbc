//! Schema migrations from `migrations/`, embedded at compile time and applied by
//! refinery under a PostgreSQL advisory lock, so replicas starting together
//! cannot race.

use tokio_postgres::{Client, NoTls};

use crate::error::StorageError;
use crate::secret::DatabaseUrl;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Arbitrary but fixed: every binary of this project takes the same lock.
const LOCK_KEY: i64 = 0x6d65_7472_6d69_6772; // "metrmigr"

/// Versions applied by one call of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub applied: Vec<String>,
    pub version: i32,
}

/// Newest schema version this build knows.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version() as i32)
        .max()
        .unwrap_or(0)
}

/// Connects and applies every pending migration.
pub async fn run(url: &DatabaseUrl) -> Result<Report, StorageError> {
    let (mut client, connection) = tokio_postgres::connect(url.expose(), NoTls)
        .await
        .map_err(|e| StorageError::database("connect to migrate", e))?;
    let connection = tokio::spawn(connection);
    let result = run_on(&mut client).await;
    drop(client);
    let _ = connection.await;
    result
}

/// Applies pending migrations on an open connection, holding the advisory lock.
pub async fn run_on(client: &mut Client) -> Result<Report, StorageError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| StorageError::database("take the migration lock", e))?;
    let outcome = embedded::migrations::runner()
        .set_abort_divergent(true)
        .run_async(client)
        .await;
    // Unlock even when migrating failed; the session ending would release it too.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let report = outcome.map_err(|e| StorageError::Migration(e.to_string()))?;
    unlock.map_err(|e| StorageError::database("release the migration lock", e))?;
    Ok(Report {
        applied: report
            .applied_migrations()
            .iter()
            .map(|m| m.to_string())
            .collect(),
        version: latest_version(),
    })
}

/// Schema version the database is at, `None` when it was never migrated.
pub async fn current_version(client: &Client) -> Result<Option<i32>, StorageError> {
    match client
        .query_one(
            "SELECT max(version)::int4 FROM refinery_schema_history",
            &[],
        )
        .await
    {
        Ok(row) => Ok(row.get(0)),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(StorageError::database("read the schema version", e)),
    }
}

/// Fails with [`StorageError::NotMigrated`] unless the database is at the latest version.
pub async fn ensure_current(client: &mut Client) -> Result<(), StorageError> {
    let current = current_version(client).await?;
    let latest = latest_version();
    if current.is_some_and(|v| v >= latest) {
        Ok(())
    } else {
        Err(StorageError::NotMigrated { current, latest })
    }
}
