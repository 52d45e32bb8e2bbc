//! The exposition parser must never panic, and whatever it accepts must be
//! consistent: every sample has a valid name and, re-rendered, parses again to
//! the same samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metr_domain::exposition::{ParsedSample, parse};

fn render(samples: &[ParsedSample]) -> String {
    let mut text = String::new();
    for s in samples {
        let labels: Vec<String> = s
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")))
            .collect();
        let value = if s.value.is_nan() {
            "NaN".to_owned()
        } else if s.value == f64::INFINITY {
            "+Inf".to_owned()
        } else if s.value == f64::NEG_INFINITY {
            "-Inf".to_owned()
        } else {
            format!("{:?}", s.value)
        };
        let ts = s.timestamp_ms.map(|t| format!(" {t}")).unwrap_or_default();
        text.push_str(&format!("{}{{{}}} {value}{ts}\n", s.name, labels.join(",")));
    }
    text
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(samples) = parse(text) else { return };
    let again = parse(&render(&samples)).expect("a rendered exposition parses");
    assert_eq!(again.len(), samples.len());
    for (a, b) in samples.iter().zip(&again) {
        assert_eq!((&a.name, &a.labels, a.timestamp_ms), (&b.name, &b.labels, b.timestamp_ms));
        assert!(a.value.to_bits() == b.value.to_bits() || (a.value.is_nan() && b.value.is_nan()));
    }
});
