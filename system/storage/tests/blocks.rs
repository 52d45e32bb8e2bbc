//! The block layout on a real PostgreSQL: scrapes in compact form, retried and
//! overlapping batches, the `sample_values` view, and retention by partition.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use metr_domain::{Labels, TargetKind};
use metr_storage::{
    Batch, MetricQuery, ReadRepository, ScrapeSamples, SeriesTable, TargetRef, WriteRepository,
};
use support::migrated;

fn target(name: &str) -> TargetRef {
    TargetRef {
        name: name.into(),
        kind: TargetKind::Prometheus,
        url: format!("http://{name}:8080"),
    }
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

/// A scrape of `series` series named `m` with label `i`, all valued `value`.
fn scrape(
    table: &Arc<SeriesTable>,
    target: &str,
    series: usize,
    seconds: i64,
    value: f64,
) -> ScrapeSamples {
    let mut rec = table.record();
    for i in 0..series {
        let labels: Labels = [("i".to_string(), i.to_string())].into();
        rec.push("m", labels, value, at(seconds).timestamp_micros())
            .unwrap();
    }
    ScrapeSamples {
        target: target.into(),
        table: table.clone(),
        samples: rec.finish(),
    }
}

fn batch(scrapes: Vec<ScrapeSamples>) -> Batch {
    let mut targets: Vec<TargetRef> = scrapes.iter().map(|s| target(&s.target)).collect();
    targets.dedup();
    Batch {
        targets,
        scrapes,
        ..Default::default()
    }
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn scrapes_are_stored_in_blocks_and_read_back_sample_by_sample() {
    let (repo, client) = migrated().await;
    let table = Arc::new(SeriesTable::new());
    for second in 0..3 {
        repo.write(&batch(vec![scrape(
            &table,
            "a",
            300,
            second,
            second as f64,
        )]))
        .await
        .unwrap();
    }
    assert_eq!(
        count(&client, "SELECT count(*) FROM sample_values").await,
        900
    );
    // 300 series span 3 blocks of 128 ids, per timestamp.
    assert_eq!(
        count(&client, "SELECT count(*) FROM sample_blocks").await,
        9
    );
    assert_eq!(count(&client, "SELECT count(*) FROM series").await, 300);
    let page = repo
        .metrics(&MetricQuery {
            target: Some("a".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 900);
    assert!(page.next_cursor.is_none());
    assert_eq!(page.items[0].timestamp, at(2));
    assert_eq!(page.items[899].timestamp, at(0));
}

#[tokio::test]
async fn a_retried_batch_is_stored_once_and_an_overlapping_one_merges() {
    let (repo, client) = migrated().await;
    let table = Arc::new(SeriesTable::new());
    let first = batch(vec![scrape(&table, "a", 10, 0, 1.0)]);
    repo.write(&first).await.unwrap();
    // The acknowledgement was lost: the writer sends the same batch again.
    repo.write(&first).await.unwrap();
    assert_eq!(
        count(&client, "SELECT count(*) FROM sample_values").await,
        10
    );
    // Same target and timestamp, more series (an explicit timestamp exposed
    // again): the new series join the stored rows, the stored values win.
    let wider = batch(vec![scrape(&table, "a", 20, 0, 2.0)]);
    repo.write(&wider).await.unwrap();
    assert_eq!(
        count(&client, "SELECT count(*) FROM sample_values").await,
        20
    );
    assert_eq!(
        count(
            &client,
            "SELECT count(*) FROM sample_values WHERE value = 1"
        )
        .await,
        10
    );
}

#[tokio::test]
async fn series_ids_are_resolved_once_per_table() {
    let (repo, client) = migrated().await;
    let table = Arc::new(SeriesTable::new());
    repo.write(&batch(vec![scrape(&table, "a", 5, 0, 1.0)]))
        .await
        .unwrap();
    assert!(table.ids(0..5).iter().all(Option::is_some));
    // A second process (a new table) finds the same series, not new ones.
    let other = Arc::new(SeriesTable::new());
    repo.write(&batch(vec![scrape(&other, "a", 5, 1, 1.0)]))
        .await
        .unwrap();
    assert_eq!(table.ids(0..5), other.ids(0..5));
    assert_eq!(count(&client, "SELECT count(*) FROM series").await, 5);
}

#[tokio::test]
async fn retention_drops_whole_days_and_the_held_range_follows() {
    let (repo, client) = migrated().await;
    let table = Arc::new(SeriesTable::new());
    let day = 86_400;
    for days_ago in [3, 2, 0] {
        repo.write(&batch(vec![scrape(&table, "a", 3, -days_ago * day, 1.0)]))
            .await
            .unwrap();
    }
    let (oldest, newest) = repo.held_range().await.unwrap().unwrap();
    assert_eq!((oldest, newest), (at(-3 * day), at(0)));
    let dropped = repo.drop_before(at(-day)).await.unwrap();
    assert_eq!(dropped, 2, "the two old days went as partitions");
    assert_eq!(
        count(&client, "SELECT count(*) FROM sample_values").await,
        3
    );
    assert_eq!(repo.held_range().await.unwrap().unwrap().0, at(0));
    // Writing into a dropped day again recreates its partition.
    repo.write(&batch(vec![scrape(&table, "a", 3, -3 * day + 1, 1.0)]))
        .await
        .unwrap();
    assert_eq!(
        count(&client, "SELECT count(*) FROM sample_values").await,
        6
    );
    let _ = Duration::zero();
}

#[tokio::test]
async fn a_page_of_one_series_walks_only_its_block() {
    let (repo, _) = migrated().await;
    let table = Arc::new(SeriesTable::new());
    for second in 0..150 {
        repo.write(&batch(vec![scrape(
            &table,
            "a",
            200,
            second,
            second as f64,
        )]))
        .await
        .unwrap();
    }
    let mut query = MetricQuery {
        target: Some("a".into()),
        name: Some("m".into()),
        labels: vec![("i".into(), "150".into())],
        limit: 100,
        ..Default::default()
    };
    let first = repo.metrics(&query).await.unwrap();
    assert_eq!(first.items.len(), 100);
    assert_eq!(first.items[0].value.0, 149.0);
    assert!(first.items.iter().all(|s| s.labels["i"] == "150"));
    query.cursor = first.next_cursor;
    let second = repo.metrics(&query).await.unwrap();
    assert_eq!(second.items.len(), 50);
    assert_eq!(second.items[49].value.0, 0.0);
    assert!(second.next_cursor.is_none());
}

/// Every read path (whole target, narrow filters read per block, wide ones
/// checked chunk by chunk, filters spread over many blocks) returns what the
/// in-memory repository returns, page after page, newest first, once each.
#[tokio::test]
async fn every_read_path_agrees_with_the_in_memory_repository() {
    use metr_domain::{Sample, SampleValue};
    use metr_storage::MemoryRepository;

    let (repo, _) = migrated().await;
    let memory = MemoryRepository::new();
    for second in 0..3 {
        let mut samples = Vec::new();
        for (target, n) in [("a", 9000), ("b", 60)] {
            for i in 0..n {
                let labels: Labels = [
                    ("i".to_string(), i.to_string()),
                    ("mod".to_string(), (i % 100).to_string()),
                    ("half".to_string(), (i % 2).to_string()),
                ]
                .into();
                samples.push(Sample {
                    target: target.into(),
                    name: "m".into(),
                    labels,
                    value: SampleValue((i * 10 + second) as f64),
                    timestamp: at(second),
                });
            }
            samples.push(Sample {
                target: target.into(),
                name: "up".into(),
                labels: Labels::new(),
                value: SampleValue(1.0),
                timestamp: at(second),
            });
        }
        let batch = Batch {
            targets: vec![target("a"), target("b")],
            samples,
            ..Default::default()
        };
        repo.write(&batch).await.unwrap();
        memory.write(&batch).await.unwrap();
    }
    let label = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let queries = [
        MetricQuery::default(),
        MetricQuery {
            target: Some("a".into()),
            ..Default::default()
        },
        MetricQuery {
            name: Some("m".into()),
            ..Default::default()
        },
        MetricQuery {
            name: Some("m".into()),
            labels: label("mod", "7"),
            ..Default::default()
        },
        MetricQuery {
            target: Some("a".into()),
            labels: label("i", "7"),
            ..Default::default()
        },
        MetricQuery {
            name: Some("up".into()),
            ..Default::default()
        },
        MetricQuery {
            labels: label("half", "1"),
            from: Some(at(1)),
            to: Some(at(1)),
            ..Default::default()
        },
        MetricQuery {
            target: Some("b".into()),
            name: Some("m".into()),
            to: Some(at(1)),
            ..Default::default()
        },
        MetricQuery {
            name: Some("nothing".into()),
            ..Default::default()
        },
    ];
    for mut query in queries {
        query.limit = 1000;
        let mut walks = Vec::new();
        for store in [&repo as &dyn ReadRepository, &memory] {
            let mut q = query.clone();
            let mut items = Vec::new();
            loop {
                let page = store.metrics(&q).await.unwrap();
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
            walks.push(items);
        }
        let (pg, mem) = (&walks[0], &walks[1]);
        assert!(
            pg.windows(2).all(|w| w[0].timestamp >= w[1].timestamp),
            "{query:?}: newest first"
        );
        let key = |s: &metr_domain::Sample| {
            (
                s.timestamp,
                s.target.clone(),
                s.name.clone(),
                format!("{:?}", s.labels),
                s.value.0.to_bits(),
            )
        };
        let mut pg_keys: Vec<_> = pg.iter().map(key).collect();
        let mut mem_keys: Vec<_> = mem.iter().map(key).collect();
        pg_keys.sort();
        mem_keys.sort();
        let before = pg_keys.len();
        pg_keys.dedup();
        assert_eq!(before, pg_keys.len(), "{query:?}: no sample twice");
        let first_difference = pg_keys.iter().zip(&mem_keys).position(|(a, b)| a != b);
        assert!(
            pg_keys == mem_keys,
            "{query:?}: {} stored samples found, {} expected; first difference at {first_difference:?}",
            pg_keys.len(),
            mem_keys.len()
        );
    }
}

#[tokio::test]
async fn series_created_in_pieces_by_one_table_are_found_by_another_and_stored_once() {
    let (repo, client) = migrated().await;
    let batch = |table: &Arc<SeriesTable>, series: usize, seconds: i64| Batch {
        targets: vec![target("t")],
        scrapes: vec![scrape(table, "t", series, seconds, seconds as f64)],
        ..Default::default()
    };
    // A first table creates 3 of 7 pieces' worth of series, then is lost (a
    // checker restarted, or a table replaced).
    let first = Arc::new(SeriesTable::new());
    let big = batch(&first, 700, 0);
    for _ in 0..3 {
        assert!(!repo.create_series(&big, 100).await.unwrap(), "more remain");
    }
    // A fresh table with those 300 and 400 more: the 300 are found, not
    // created twice, and the pieces carry on until none is left.
    let second = Arc::new(SeriesTable::new());
    let again = batch(&second, 700, 10);
    let mut pieces = 0;
    while !repo.create_series(&again, 250).await.unwrap() {
        pieces += 1;
        assert!(pieces < 10, "creation never finished");
    }
    assert_eq!(pieces, 2, "700 series in pieces of 250: two with more left");
    repo.write(&again).await.unwrap();
    let series: i64 = client
        .query_one("SELECT count(*) FROM series", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(series, 700, "no series created twice");
    let stored: i64 = client
        .query_one(
            "SELECT count(DISTINCT series_id) FROM sample_values WHERE value = 10",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 700);
}

#[tokio::test]
async fn a_label_value_too_big_for_an_index_row_is_stored_and_found_again() {
    let (repo, client) = migrated().await;
    // 4 KiB that do not compress: over a btree row's 2704 bytes as they are.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: String = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    let batch = |table: &Arc<SeriesTable>, seconds: i64| {
        let mut rec = table.record();
        let labels: Labels = [("token".to_string(), noise.clone())].into();
        rec.push("big_label", labels, 1.0, at(seconds).timestamp_micros())
            .unwrap();
        Batch {
            targets: vec![target("t")],
            scrapes: vec![ScrapeSamples {
                target: "t".into(),
                table: table.clone(),
                samples: rec.finish(),
            }],
            ..Default::default()
        }
    };
    repo.write(&batch(&Arc::new(SeriesTable::new()), 0))
        .await
        .unwrap();
    // A fresh table (a restarted checker) finds the same series again.
    repo.write(&batch(&Arc::new(SeriesTable::new()), 10))
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT count(DISTINCT series_id), count(*), max(length(labels->>'token')) \
             FROM sample_values WHERE name = 'big_label'",
            &[],
        )
        .await
        .unwrap();
    let (series, samples, length): (i64, i64, Option<i32>) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((series, samples, length), (1, 2, Some(4096)));
}

#[tokio::test]
async fn usage_counts_the_head_exactly_or_estimates_old_partitions_closely() {
    let (repo, client) = migrated().await;
    let table = Arc::new(SeriesTable::new());
    let day = 86_400;
    for (days_ago, second) in [(2, 0), (2, 1), (0, 0)] {
        repo.write(&batch(vec![scrape(
            &table,
            "a",
            300,
            -days_ago * day + second,
            1.0,
        )]))
        .await
        .unwrap();
    }
    let usage = repo.usage().await.unwrap();
    assert_eq!(usage.head.samples, 900);
    assert_eq!(usage.compressed, metr_storage::StoragePart::default());
    let partitions = count(
        &client,
        "SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree('sample_blocks')",
    )
    .await;
    assert_eq!(usage.head.bytes, partitions as u64);
    client.batch_execute("ANALYZE sample_blocks").await.unwrap();
    // No exact budget: every analysed partition is estimated, and rows of
    // equal width make the estimate exact.
    let estimated = repo.read_usage_counting_up_to(0.0).await.unwrap();
    assert_eq!(estimated.head.samples, 900);
}
