//! What the PostgreSQL tests of the storage crate share.

use metr_storage::postgres::PoolOptions;
use metr_storage::{DatabaseUrl, PgRepository, migrate};

/// A repository on a fresh, migrated database, and a plain client on it for
/// looking at the tables underneath.
pub async fn migrated() -> (PgRepository, tokio_postgres::Client) {
    let db = metr_testkit::fresh_database().await;
    let url = DatabaseUrl::new(db.url);
    migrate::run(&url).await.expect("migrate");
    let (client, conn) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    (
        PgRepository::connect(&url, &PoolOptions::default()).unwrap(),
        client,
    )
}
