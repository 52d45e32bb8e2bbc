//! Batches bigger than one timed step: the writer against a real PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::checkable::Outcome;
use checker::config::WriterSettings;
use checker::telemetry::Telemetry;
use checker::writer::Writer;
use chrono::Utc;
use metr_domain::{Check, CheckStatus, Labels, TargetKind};
use metr_storage::postgres::PoolOptions;
use metr_storage::{DatabaseUrl, PgRepository, ScrapeSamples, SeriesTable, TargetRef, migrate};

const SERIES: usize = 60_000;

fn scrape_of_new_series(table: &Arc<SeriesTable>) -> Outcome {
    let checked_at = Utc::now();
    let ts = checked_at.timestamp_micros();
    let mut rec = table.record();
    for i in 0..SERIES {
        let labels: Labels = [("series".to_owned(), i.to_string())].into_iter().collect();
        rec.push("big_metric", labels, i as f64, ts).unwrap();
    }
    Outcome {
        check: Check {
            target: "big".into(),
            kind: TargetKind::Prometheus,
            status: CheckStatus::Up,
            http_status: Some(200),
            latency_ms: 1.0,
            error: None,
            checked_at,
        },
        scrape: ScrapeSamples {
            target: "big".into(),
            table: table.clone(),
            samples: rec.finish(),
        },
        collected: true,
        duration_seconds: 0.1,
        trace: None,
    }
}

#[tokio::test]
async fn a_batch_of_new_series_longer_to_store_than_the_write_timeout_is_stored_in_pieces() {
    let db = metr_testkit::fresh_database().await;
    let url = DatabaseUrl::new(db.url.clone());
    migrate::run(&url).await.expect("migrate");
    let repo = Arc::new(PgRepository::connect(&url, &PoolOptions::default()).unwrap());
    let timeout = Duration::from_millis(400);

    // The same batch in one statement: what the timeout would have refused.
    let whole = {
        let other = metr_testkit::fresh_database().await;
        let other_url = DatabaseUrl::new(other.url.clone());
        migrate::run(&other_url).await.expect("migrate");
        let other_repo = PgRepository::connect(&other_url, &PoolOptions::default()).unwrap();
        let table = Arc::new(SeriesTable::new());
        let outcome = scrape_of_new_series(&table);
        let batch = metr_storage::Batch {
            targets: vec![big()],
            checks: vec![outcome.check],
            scrapes: vec![outcome.scrape],
            samples: vec![],
        };
        let started = Instant::now();
        metr_storage::WriteRepository::write(&other_repo, &batch)
            .await
            .unwrap();
        started.elapsed()
    };
    assert!(
        whole > timeout,
        "the batch must take longer than the timeout in one go to prove anything: {whole:?}"
    );

    // The shutdown timeout bounds the whole drain: generous, since what is
    // tested is that the pieces add up to the batch, not how fast a machine
    // creates 60,000 series (on a slow day here it took over the default 10 s).
    let settings = WriterSettings {
        write_timeout: timeout,
        shutdown_timeout: Duration::from_secs(120),
        ..WriterSettings::default()
    };
    let drain_started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let writer = tokio::spawn(
        Writer::new(
            repo.clone(),
            settings,
            vec![big()],
            Telemetry::new().unwrap(),
        )
        .run(rx),
    );
    tx.send(scrape_of_new_series(&Arc::new(SeriesTable::new())))
        .await
        .unwrap();
    drop(tx);
    let report = writer.await.unwrap();
    eprintln!(
        "the writer stored {SERIES} new series in pieces in {:?} (one statement: {whole:?})",
        drain_started.elapsed()
    );
    assert_eq!(report.samples_written, SERIES as u64, "{report:?}");
    assert_eq!(report.samples_dropped + report.samples_abandoned, 0);

    let client = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (client, conn) = client;
    tokio::spawn(conn);
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM sample_values WHERE name = 'big_metric'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, SERIES as i64);
}

fn big() -> TargetRef {
    TargetRef {
        name: "big".into(),
        kind: TargetKind::Prometheus,
        url: "http://big/".into(),
    }
}
