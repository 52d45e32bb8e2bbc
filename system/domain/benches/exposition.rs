//! Samples per second: our exposition parser against prometheus-parse on the same
//! input (one prometheus-parse handles correctly: no escapes, no `,` in values).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn exposition(series: usize) -> String {
    let mut text = String::new();
    text.push_str("# HELP http_requests_total Requests by handler and code.\n");
    text.push_str("# TYPE http_requests_total counter\n");
    for i in 0..series {
        text.push_str(&format!(
            "http_requests_total{{handler=\"/api/v1/item/{i}\",code=\"200\",method=\"get\"}} {}\n",
            i * 17
        ));
    }
    text.push_str("# TYPE temperature_celsius gauge\n");
    for i in 0..series / 4 {
        text.push_str(&format!(
            "temperature_celsius{{sensor=\"s{i}\"}} {}.25\n",
            i % 40
        ));
    }
    text
}

fn parsers(c: &mut Criterion) {
    let text = exposition(4000);
    let samples = metr_domain::exposition::parse(&text).unwrap().len() as u64;
    let mut group = c.benchmark_group("exposition");
    group.throughput(Throughput::Elements(samples));
    group.bench_function("metr_domain", |b| {
        b.iter(|| metr_domain::exposition::parse(black_box(&text)).unwrap())
    });
    group.bench_function("prometheus_parse", |b| {
        b.iter(|| {
            let lines = black_box(&text).lines().map(|l| Ok(l.to_owned()));
            prometheus_parse::Scrape::parse(lines).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);
