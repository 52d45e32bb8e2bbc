//! The strict OpenMetrics parser must never panic, and the two ways the
//! checker can use it must agree: whatever `parse` accepts, `scan` accepts,
//! handing on the same samples in the same order, whose series text parses
//! to the same name and labels.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metr_domain::exposition::{ParseError, ParsedSample};
use metr_domain::openmetrics::{parse, scan};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse(text);
    let mut scanned: Vec<ParsedSample> = Vec::new();
    let scan_result = scan(text, |raw| {
        let (name, labels) = raw.parse_series()?;
        scanned.push(ParsedSample {
            name,
            labels,
            value: raw.value,
            timestamp_ms: raw.timestamp_ms,
        });
        Ok::<(), ParseError>(())
    });
    let Ok(samples) = parsed else { return };
    scan_result.expect("what parse accepts, scan accepts");
    assert_eq!(samples.len(), scanned.len());
    for (a, b) in samples.iter().zip(&scanned) {
        assert_eq!(
            (&a.name, &a.labels, a.timestamp_ms),
            (&b.name, &b.labels, b.timestamp_ms)
        );
        assert!(a.value.to_bits() == b.value.to_bits() || (a.value.is_nan() && b.value.is_nan()));
    }
});
