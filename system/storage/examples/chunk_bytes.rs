//! Bytes per sample of the block rows a database holds, and of the same rows
//! encoded as compressed chunks (`metr_storage::chunk`) in a scratch table of
//! the same database, data and indexes included: the measurement behind the
//! chunk format.
//!
//!     cargo run --release -p metr-storage --example chunk_bytes -- URL [SPAN_SECONDS...]
//!
//! Drops and recreates the table `measure_chunks`; reads every block row.

use std::error::Error;

use chrono::{DateTime, Utc};
use metr_storage::chunk;
use tokio_postgres::NoTls;

/// One chunk: (target, block, first and last µs, samples, bytes).
type Encoded = (i32, i64, i64, i64, i32, Vec<u8>);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: chunk_bytes URL [SPAN_SECONDS...]")?;
    let spans: Vec<i64> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(conn);
    let head = client
        .query_one(
            "SELECT sum(cardinality(vals) - cardinality(array_positions(vals, NULL)))::bigint, \
             (SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree('sample_blocks')) \
             FROM sample_blocks",
            &[],
        )
        .await?;
    let (samples, bytes): (i64, i64) = (head.get(0), head.get(1));
    println!(
        "block rows: {samples} samples, {bytes} bytes, {:.2} B/sample",
        bytes as f64 / samples as f64
    );
    let rows = client
        .query(
            "SELECT target_id, block, ts, vals FROM sample_blocks ORDER BY 1, 2, 3",
            &[],
        )
        .await?;
    let spans = if spans.is_empty() { vec![120] } else { spans };
    for (span, codecs) in spans
        .iter()
        .flat_map(|&s| [(s, chunk::Codecs::Xor), (s, chunk::Codecs::Best)])
    {
        let span_us = span * 1_000_000;
        let mut chunks: Vec<Encoded> = Vec::new();
        let mut group: Vec<chunk::Row> = Vec::new();
        let mut key = None;
        let mut flush = |key: Option<(i32, i64, i64)>, group: &mut Vec<chunk::Row>| {
            if let (Some((t, b, _)), false) = (key, group.is_empty()) {
                let n: usize = group.iter().map(|r| r.1.iter().flatten().count()).sum();
                let first = group[0].0;
                let last = group[group.len() - 1].0;
                chunks.push((
                    t,
                    b,
                    first,
                    last,
                    n as i32,
                    chunk::encode_with(group, codecs),
                ));
            }
            group.clear();
        };
        let started = std::time::Instant::now();
        for row in &rows {
            let ts: DateTime<Utc> = row.get(2);
            let ts = ts.timestamp_micros();
            let k = (
                row.get::<_, i32>(0),
                row.get::<_, i64>(1),
                ts.div_euclid(span_us),
            );
            if key != Some(k) {
                flush(key, &mut group);
                key = Some(k);
            }
            group.push((ts, row.get(3)));
        }
        flush(key, &mut group);
        let payload: usize = chunks.iter().map(|c| c.5.len()).sum();
        let encoding = started.elapsed();
        let started = std::time::Instant::now();
        let mut decoded = 0;
        for c in &chunks {
            decoded += chunk::decode(&c.5)?
                .iter()
                .map(|r| r.1.iter().flatten().count())
                .sum::<usize>();
        }
        assert_eq!(decoded as i64, samples, "every sample decodes back");
        println!(
            "chunks of {span} s, {codecs:?}: grouping and encoding {:.1} ns/sample, decoding {:.1} ns/sample",
            encoding.as_nanos() as f64 / samples as f64,
            started.elapsed().as_nanos() as f64 / samples as f64,
        );
        for storage in ["EXTENDED", "EXTERNAL"] {
            client
                .batch_execute(&format!(
                    "DROP TABLE IF EXISTS measure_chunks; \
                     CREATE TABLE measure_chunks (target_id int4, block int8, ts_from timestamptz, \
                       ts_to timestamptz, samples int4, data bytea, PRIMARY KEY (target_id, block, ts_from)); \
                     ALTER TABLE measure_chunks ALTER COLUMN data SET STORAGE {storage}"
                ))
                .await?;
            let insert = client
                .prepare(
                    "INSERT INTO measure_chunks VALUES ($1, $2, to_timestamp($3::int8 / 1e6), \
                     to_timestamp($4::int8 / 1e6), $5, $6)",
                )
                .await?;
            for c in &chunks {
                client
                    .execute(&insert, &[&c.0, &c.1, &c.2, &c.3, &c.4, &c.5])
                    .await?;
            }
            client
                .batch_execute("VACUUM ANALYZE measure_chunks")
                .await?;
            let size: i64 = client
                .query_one("SELECT pg_total_relation_size('measure_chunks')", &[])
                .await?
                .get(0);
            println!(
                "chunks of {span} s, {codecs:?}, storage {storage}: {} chunks, payload {payload} bytes ({:.3} B/sample), \
                 table with index and TOAST {size} bytes ({:.3} B/sample)",
                chunks.len(),
                payload as f64 / samples as f64,
                size as f64 / samples as f64,
            );
        }
    }
    client
        .batch_execute("DROP TABLE IF EXISTS measure_chunks")
        .await?;
    Ok(())
}
