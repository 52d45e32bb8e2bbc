//! The checker's write path per scrape, steady state (every series seen before):
//! from exposition text to encoded block rows, against the path it replaced
//! (parse every label map, clone it into a key, hash the key, one row per
//! sample), measured in the same run. Throughput is in samples, so criterion
//! prints samples/s; per million samples is 1e6 / that.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use metr_domain::Labels;
use metr_domain::exposition::{self, ParseError, RawSample};
use metr_storage::SeriesTable;
use metr_storage::blocks::BlockEncoder;

/// A gometr-like scrape: `n` labelled series of one name.
fn exposition_text(n: usize) -> String {
    let mut text = String::from("# TYPE gometr_synthetic_series gauge\n");
    for i in 0..n {
        text.push_str(&format!(
            "gometr_synthetic_series{{index=\"{i}\",job=\"gometr\"}} {i}\n"
        ));
    }
    text
}

fn write_path(c: &mut Criterion) {
    let n = 10_000;
    let text = exposition_text(n);
    let mut group = c.benchmark_group("write_path");
    group.throughput(Throughput::Elements(n as u64));

    // Today's path: intern by raw text, ids cached in the table, block rows.
    let table = SeriesTable::new();
    let record = |table: &SeriesTable| {
        let mut rec = table.record();
        exposition::scan(&text, |raw: RawSample<'_>| {
            rec.push_raw(raw.series, raw.value, 0, || {
                raw.parse_series().map_err(ParseErrorOrDup::from)
            })
        })
        .unwrap();
        rec.finish()
    };
    let first = record(&table);
    table.set_ids(first.iter().map(|s| (s.series, i64::from(s.series) + 1)));
    group.bench_function("interned_blocks", |b| {
        b.iter(|| {
            let samples = record(black_box(&table));
            let ids = table.ids(samples.iter().map(|s| s.series));
            let mut enc = BlockEncoder::new();
            for (s, id) in samples.iter().zip(ids) {
                enc.push(1, id.unwrap(), s.ts_micros, s.value);
            }
            enc.finish()
        })
    });

    // The replaced path: full parse, then (target, name, labels) cloned and
    // hashed per sample to find the id; one (id, ts, value) row per sample.
    let mut cache: HashMap<(i32, String, Labels), i64> = HashMap::new();
    for (i, s) in exposition::parse(&text).unwrap().into_iter().enumerate() {
        cache.insert((1, s.name, s.labels), i as i64 + 1);
    }
    group.bench_function("baseline_label_maps_row_per_sample", |b| {
        b.iter(|| {
            let parsed = exposition::parse(black_box(&text)).unwrap();
            let mut rows = Vec::with_capacity(parsed.len());
            for s in &parsed {
                let key = (1, s.name.clone(), s.labels.clone());
                rows.push((cache[&key], 0_i64, s.value));
            }
            rows
        })
    });
    group.finish();
}

/// Either way a scrape can be rejected; the bench input has neither.
#[derive(Debug)]
enum ParseErrorOrDup {
    Parse,
    Dup,
}

impl From<ParseError> for ParseErrorOrDup {
    fn from(_: ParseError) -> Self {
        ParseErrorOrDup::Parse
    }
}

impl From<metr_storage::DuplicateSample> for ParseErrorOrDup {
    fn from(_: metr_storage::DuplicateSample) -> Self {
        ParseErrorOrDup::Dup
    }
}

criterion_group!(benches, write_path);
criterion_main!(benches);
