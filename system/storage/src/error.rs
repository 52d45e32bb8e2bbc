//! The one error type of the storage boundary.

/// Why a storage operation failed. Messages read after "failed to …" and never
/// contain SQL, connection strings or passwords; causes are kept as sources.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be reached or the connection broke.
    #[error("reach the database: {0}")]
    Unavailable(String),
    /// The database answered with an error.
    #[error("{operation}")]
    Database {
        operation: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    /// The data was refused (retrying the same data will not help).
    #[error("store the data: {0}")]
    Rejected(String),
    /// The schema is older than this build expects.
    #[error(
        "use the database: its schema is {} but this build needs version {latest}; \
         run the `migrate` subcommand or start with --migrate",
        current.map_or("not migrated yet".to_owned(), |v| format!("at version {v}"))
    )]
    NotMigrated { current: Option<i32>, latest: i32 },
    /// Applying migrations failed.
    #[error("migrate the database: {0}")]
    Migration(String),
    /// A stored compressed chunk cannot be decoded.
    #[error(transparent)]
    Corrupt(#[from] crate::chunk::ChunkError),
}

impl StorageError {
    /// Wraps a driver error with the operation that failed, classifying lost
    /// connections as `Unavailable` so callers can retry them.
    pub fn database(operation: &'static str, source: tokio_postgres::Error) -> Self {
        if source.is_closed() || source.code().is_none_or(is_transient) {
            StorageError::Unavailable(format!("{operation}: connection lost"))
        } else {
            StorageError::Database { operation, source }
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }

    fn sqlstate(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            StorageError::Database { source, .. } => source.code(),
            _ => None,
        }
    }

    /// A row with the same key exists already (a retried batch, say).
    pub fn is_conflict(&self) -> bool {
        self.sqlstate() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    }

    /// A sample fell outside every partition of the samples table.
    pub fn is_missing_partition(&self) -> bool {
        self.sqlstate() == Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        let reason = match &err {
            PoolError::Timeout(_) => "timed out waiting for a connection".to_owned(),
            PoolError::Backend(e) if e.code().is_none() => "cannot connect".to_owned(),
            PoolError::Backend(e) => e
                .as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| "cannot connect".to_owned()),
            PoolError::Closed => "connection pool closed".to_owned(),
            _ => "cannot get a connection".to_owned(),
        };
        StorageError::Unavailable(reason)
    }
}

/// SQLSTATEs that say "not now" rather than "never": connection exceptions (08),
/// insufficient resources (53), operator intervention such as a shutdown (57),
/// system errors (58), serialization failures and deadlocks.
fn is_transient(code: &tokio_postgres::error::SqlState) -> bool {
    let code = code.code();
    ["08", "53", "57", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "40001"
        || code == "40P01"
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::error::SqlState;

    #[test]
    fn shutdowns_and_lost_connections_are_transient_bad_data_is_not() {
        assert!(is_transient(&SqlState::ADMIN_SHUTDOWN));
        assert!(is_transient(&SqlState::CANNOT_CONNECT_NOW));
        assert!(is_transient(&SqlState::CONNECTION_FAILURE));
        assert!(is_transient(&SqlState::T_R_SERIALIZATION_FAILURE));
        assert!(!is_transient(&SqlState::UNTRANSLATABLE_CHARACTER));
        assert!(!is_transient(&SqlState::CHECK_VIOLATION));
    }
}
