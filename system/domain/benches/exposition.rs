//! Samples per second: our exposition parsers against prometheus-parse on the
//! same input (one prometheus-parse handles correctly: no escapes, no `,` in
//! values). `exposition`: the lenient parser on Prometheus text; `openmetrics`:
//! the strict parser on OpenMetrics shaped like a Go service's /metrics, both
//! into owned samples (`metr_domain`) and as the checker scans (`_scan`).

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

/// What a Go service instrumented with client_golang exposes as OpenMetrics:
/// runtime summaries and gauges, per-handler request counters with their
/// `_created` series, and per-handler latency histograms.
fn openmetrics_exposition(handlers: usize) -> String {
    let mut text = String::new();
    text.push_str("# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.\n");
    text.push_str("# TYPE go_gc_duration_seconds summary\n");
    for q in ["0.0", "0.25", "0.5", "0.75", "1.0"] {
        text.push_str(&format!(
            "go_gc_duration_seconds{{quantile=\"{q}\"}} 4.5963e-05\n"
        ));
    }
    text.push_str("go_gc_duration_seconds_sum 0.194125847\ngo_gc_duration_seconds_count 2263\n");
    for (name, value) in [
        ("go_goroutines", "87"),
        ("process_resident_memory_bytes", "4.9451008e+07"),
    ] {
        text.push_str(&format!(
            "# HELP {name} A gauge.\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    text.push_str("# HELP http_requests Requests served, by handler and code.\n# TYPE http_requests counter\n");
    for h in 0..handlers {
        for code in ["200", "404", "500"] {
            let labels = format!("handler=\"/api/v1/item/{h}\",code=\"{code}\",method=\"get\"");
            text.push_str(&format!("http_requests_total{{{labels}}} {}\n", h * 17 + 3));
            text.push_str(&format!(
                "http_requests_created{{{labels}}} 1.7000000001e+09\n"
            ));
        }
    }
    text.push_str("# HELP http_request_duration_seconds Latency by handler.\n");
    text.push_str("# TYPE http_request_duration_seconds histogram\n# UNIT http_request_duration_seconds seconds\n");
    let bounds = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf",
    ];
    for h in 0..handlers {
        let labels = format!("handler=\"/api/v1/item/{h}\"");
        for (i, le) in bounds.iter().enumerate() {
            text.push_str(&format!(
                "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}\n",
                h + i * 3
            ));
        }
        let count = h + (bounds.len() - 1) * 3;
        text.push_str(&format!(
            "http_request_duration_seconds_sum{{{labels}}} {}.125\n",
            h * 2
        ));
        text.push_str(&format!(
            "http_request_duration_seconds_count{{{labels}}} {count}\n"
        ));
        text.push_str(&format!(
            "http_request_duration_seconds_created{{{labels}}} 1.7000000001e+09\n"
        ));
    }
    text.push_str("# EOF\n");
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

    let text = openmetrics_exposition(200);
    let samples = metr_domain::openmetrics::parse(&text).unwrap().len() as u64;
    let mut group = c.benchmark_group("openmetrics");
    group.throughput(Throughput::Elements(samples));
    group.bench_function("metr_domain", |b| {
        b.iter(|| metr_domain::openmetrics::parse(black_box(&text)).unwrap())
    });
    // What the checker runs: every rule checked, each sample handed on with
    // its series text, labels built only for series its cache has not seen.
    group.bench_function("metr_domain_scan", |b| {
        b.iter(|| {
            let mut n = 0usize;
            metr_domain::openmetrics::scan(black_box(&text), |raw| {
                n += black_box(raw.series.len());
                Ok::<(), metr_domain::exposition::ParseError>(())
            })
            .unwrap();
            n
        })
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
