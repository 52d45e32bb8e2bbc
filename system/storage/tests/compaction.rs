//! Compaction on a real PostgreSQL: every read path returns what the
//! in-memory repository returns, before and after windows are compacted,
//! after retried and late batches, and while a retry races a compaction.

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use metr_domain::{Labels, Sample, TargetKind};
use metr_storage::{
    Batch, MemoryRepository, MetricQuery, PgRepository, ReadRepository, ScrapeSamples, SeriesTable,
    TargetRef, WriteRepository, chunk,
};
use support::migrated;

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_040 + seconds, 0).unwrap()
}

const SERIES: usize = 130;
const SPAN: i64 = 60;

/// The value of series `i` at second `s`: counters, decimals, specials, and
/// odd series only every other second.
fn value(i: usize, s: i64) -> Option<f64> {
    if i % 2 == 1 && s % 2 == 1 {
        return None;
    }
    Some(match i % 7 {
        0 => (s * i as i64) as f64,
        1 => 0.25 * s as f64 + i as f64 / 100.0,
        2 => (s as f64).sqrt(),
        3 => [f64::NAN, f64::INFINITY, -0.0, f64::MIN_POSITIVE / 8.0][s as usize % 4],
        _ => 42.0,
    })
}

fn scrape(
    table: &Arc<SeriesTable>,
    target: &str,
    s: i64,
    series: std::ops::Range<usize>,
) -> ScrapeSamples {
    let mut rec = table.record();
    for i in series {
        if let Some(v) = value(i, s) {
            let labels: Labels = [("i".to_string(), i.to_string())].into();
            rec.push("m", labels, v, at(s).timestamp_micros()).unwrap();
        }
    }
    ScrapeSamples {
        target: target.into(),
        table: table.clone(),
        samples: rec.finish(),
    }
}

fn batch(scrapes: Vec<ScrapeSamples>) -> Batch {
    let mut targets: Vec<TargetRef> = scrapes
        .iter()
        .map(|s| TargetRef {
            name: s.target.clone(),
            kind: TargetKind::Prometheus,
            url: format!("http://{}:8080", s.target),
        })
        .collect();
    targets.dedup();
    Batch {
        targets,
        scrapes,
        ..Default::default()
    }
}

/// Both stores, written the same batches.
struct Stores {
    pg: PgRepository,
    memory: MemoryRepository,
    client: tokio_postgres::Client,
}

impl Stores {
    async fn write(&self, batch: &Batch) {
        self.pg.write(batch).await.unwrap();
        self.memory.write(batch).await.unwrap();
    }
}

/// Scrapes of targets a and b every second from 0 to `seconds`.
async fn filled(seconds: i64) -> (Stores, Arc<SeriesTable>) {
    let (pg, client) = migrated().await;
    let stores = Stores {
        pg,
        memory: MemoryRepository::new(),
        client,
    };
    // One series table per target, as the checker keeps.
    let table = Arc::new(SeriesTable::new());
    let table_b = Arc::new(SeriesTable::new());
    for s in 0..seconds {
        let scrapes = vec![
            scrape(&table, "a", s, 0..SERIES),
            scrape(&table_b, "b", s, 0..SERIES / 2),
        ];
        stores.write(&batch(scrapes)).await;
    }
    (stores, table)
}

fn key(s: &Sample) -> String {
    // The timestamp first (23 characters), so that sorting groups by time.
    format!(
        "{} {} {} {:?} {:x}",
        s.timestamp,
        s.target,
        s.name,
        s.labels,
        s.value.0.to_bits()
    )
}

/// Every page of a query, concatenated.
async fn all_pages(repo: &dyn ReadRepository, query: &MetricQuery) -> Vec<String> {
    let mut q = query.clone();
    let mut out = Vec::new();
    loop {
        let page = repo.metrics(&q).await.unwrap();
        out.extend(page.items.iter().map(key));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

fn queries() -> Vec<MetricQuery> {
    let q = MetricQuery {
        limit: 397,
        ..Default::default()
    };
    vec![
        q.clone(),
        MetricQuery {
            target: Some("a".into()),
            limit: 733,
            ..q.clone()
        },
        MetricQuery {
            name: Some("m".into()),
            labels: vec![("i".into(), "5".into())],
            limit: 7,
            ..q.clone()
        },
        MetricQuery {
            target: Some("b".into()),
            labels: vec![("i".into(), "130".into())],
            limit: 11,
            ..q.clone()
        },
        MetricQuery {
            name: Some("m".into()),
            limit: 500,
            ..q.clone()
        },
        MetricQuery {
            target: Some("a".into()),
            from: Some(at(50)),
            to: Some(at(130)),
            limit: 211,
            ..q.clone()
        },
        MetricQuery {
            labels: vec![("i".into(), "3".into())],
            from: Some(at(100)),
            to: Some(at(170)),
            limit: 5,
            ..q
        },
    ]
}

async fn assert_reads_agree(stores: &Stores, when: &str) {
    for q in queries() {
        let pg = all_pages(&stores.pg, &q).await;
        if let Some(w) = pg.windows(2).position(|w| w[0][..23] < w[1][..23]) {
            panic!(
                "{when}: {q:?} not newest first at {w}: {:?}",
                &pg[w.saturating_sub(2)..w + 3]
            );
        }
        let memory = all_pages(&stores.memory, &q).await;
        // Series ids, which order samples of one timestamp, differ between
        // the stores: compare each timestamp's samples as a set.
        let (mut pg, mut memory) = (pg, memory);
        pg.sort();
        memory.sort();
        if pg != memory {
            let missing: Vec<_> = memory
                .iter()
                .filter(|m| pg.binary_search(m).is_err())
                .take(3)
                .collect();
            let extra: Vec<_> = pg
                .iter()
                .filter(|p| memory.binary_search(p).is_err())
                .take(3)
                .collect();
            panic!(
                "{when}: {q:?}: {} against {} samples; missing {missing:?}, extra {extra:?}",
                pg.len(),
                memory.len()
            );
        }
    }
    assert_eq!(
        stores.pg.held_range().await.unwrap(),
        stores.memory.held_range().await.unwrap(),
        "{when}"
    );
    for view in ["sample_values", "samples"] {
        let count: i64 = stores
            .client
            .query_one(&format!("SELECT count(*) FROM {view}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            count as usize,
            stores.memory.all_samples().len(),
            "{when}: {view}"
        );
    }
}

#[tokio::test]
async fn every_read_path_agrees_with_memory_across_head_and_chunks() {
    let (stores, _) = filled(150).await;
    assert_reads_agree(&stores, "before compaction").await;
    let total = stores.pg.usage().await.unwrap().head.samples;

    let moved = stores
        .pg
        .compact(at(130), Duration::seconds(SPAN))
        .await
        .unwrap();
    assert!(moved > 0);
    let usage = stores.pg.usage().await.unwrap();
    assert_eq!(usage.compressed.samples, moved);
    assert_eq!(usage.head.samples + usage.compressed.samples, total);
    assert!(usage.compressed.bytes > 0);
    assert_reads_agree(&stores, "after compaction").await;

    let again = stores
        .pg
        .compact(at(130), Duration::seconds(SPAN))
        .await
        .unwrap();
    assert_eq!(again, 0, "compaction is idempotent");
    assert_eq!(stores.pg.usage().await.unwrap().compressed.samples, moved);
}

#[tokio::test]
async fn retried_and_late_batches_merge_into_chunks() {
    let (stores, table) = filled(140).await;
    stores
        .pg
        .compact(at(120), Duration::seconds(SPAN))
        .await
        .unwrap();
    // A retry of compacted scrapes, and series of a compacted second seen late.
    for s in [3, 64, 65] {
        stores
            .write(&batch(vec![scrape(&table, "a", s, 0..SERIES)]))
            .await;
    }
    stores
        .write(&batch(vec![scrape(&table, "a", 70, SERIES..SERIES + 20)]))
        .await;
    assert_reads_agree(&stores, "retries in the head").await;
    stores
        .pg
        .compact(at(120), Duration::seconds(SPAN))
        .await
        .unwrap();
    assert_reads_agree(&stores, "retries compacted").await;
    let old_head: i64 = stores
        .client
        .query_one(
            "SELECT count(*) FROM sample_blocks WHERE ts < $1",
            &[&at(120)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(old_head, 0);
}

#[tokio::test]
async fn a_retried_batch_racing_a_compaction_is_neither_lost_nor_doubled() {
    let (stores, table) = filled(130).await;
    for round in 0..3 {
        let retry = batch(vec![scrape(&table, "a", 10 + round, 0..SERIES + 5)]);
        let (written, compacted) = tokio::join!(
            stores.pg.write(&retry),
            stores.pg.compact(at(125), Duration::seconds(SPAN)),
        );
        written.unwrap();
        compacted.unwrap();
        stores.memory.write(&retry).await.unwrap();
        assert_reads_agree(&stores, &format!("race {round}")).await;
    }
}

#[tokio::test]
async fn retention_drops_chunk_partitions_whole() {
    let (pg, client) = migrated().await;
    let table = Arc::new(SeriesTable::new());
    let day = 86_400;
    for s in [-3 * day, -3 * day + 1, 0] {
        pg.write(&batch(vec![scrape(&table, "a", s, 0..10)]))
            .await
            .unwrap();
    }
    pg.compact(at(-day), Duration::seconds(SPAN)).await.unwrap();
    let chunks: i64 = client
        .query_one("SELECT count(*) FROM sample_chunks", &[])
        .await
        .unwrap()
        .get(0);
    assert!(chunks > 0);
    pg.drop_before(at(-2 * day)).await.unwrap();
    let left: i64 = client
        .query_one("SELECT count(*) FROM sample_values", &[])
        .await
        .unwrap()
        .get(0);
    let chunks: i64 = client
        .query_one("SELECT count(*) FROM sample_chunks", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!((chunks, left), (0, 10), "only the newest scrape is left");
}

#[tokio::test]
async fn sql_decodes_chunks_as_rust_does() {
    let (_, client) = migrated().await;
    let specials = [
        0.0,
        -0.0,
        1.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE,
        f64::MIN_POSITIVE / 3.0,
        f64::from_bits(1),
        f64::MAX,
        -123.456,
        1e-300,
    ];
    let rows: Vec<chunk::Row> = (0..40)
        .map(|i| {
            let t = 1_700_000_000_000_000 + i * 1_000_123 + (i * i) % 977;
            let vals = vec![
                Some(specials[i as usize % specials.len()]),
                (i % 3 != 0).then_some(i as f64 * 0.01),
                None,
                Some(f64::NAN),
                Some((i as f64).sqrt()),
            ];
            (t, vals)
        })
        .collect();
    let data = chunk::encode(&rows);
    let got = client
        .query(
            "SELECT series_id, (extract(epoch FROM ts) * 1000000)::int8, value \
             FROM metr_chunk_samples(3, $1) ORDER BY series_id, ts",
            &[&data],
        )
        .await
        .unwrap();
    let mut want = Vec::new();
    for slot in 0..5 {
        for (ts, vals) in &rows {
            if let Some(Some(v)) = vals.get(slot) {
                want.push((3 * 128 + slot as i64, *ts, *v));
            }
        }
    }
    assert_eq!(got.len(), want.len());
    for (row, (id, ts, v)) in got.iter().zip(want) {
        let value: f64 = row.get(2);
        assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (id, ts));
        assert!(
            value.to_bits() == v.to_bits() || (value.is_nan() && v.is_nan()),
            "series {id} at {ts}: {value:e} against {v:e}"
        );
    }
}
