//! prometheus-parse as a differential oracle, on the inputs it handles correctly
//! (no escapes, no `,` or `=` inside label values, no histograms or summaries,
//! which it folds into one sample), plus a no-panic property over arbitrary text.

use std::collections::BTreeMap;

use metr_domain::exposition::parse;
use proptest::prelude::*;

type Key = (String, BTreeMap<String, String>);

fn ours(text: &str) -> Vec<(Key, f64)> {
    let mut out: Vec<_> = parse(text)
        .expect("our parser accepts what the oracle accepts")
        .into_iter()
        .map(|s| ((s.name, s.labels), s.value))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn oracle(text: &str) -> Vec<(Key, f64)> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("oracle parses");
    let mut out: Vec<_> = scrape
        .samples
        .into_iter()
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("generator made a non-scalar sample: {other:?}"),
            };
            let labels = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            ((s.metric, labels), value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn family() -> impl Strategy<Value = String> {
    let kind = prop_oneof![Just("counter"), Just("gauge"), Just("untyped")];
    let name = "[a-z][a-z0-9_]{0,12}";
    let label = ("[a-z][a-z0-9_]{0,6}", "[a-zA-Z0-9_.:/ -]{0,12}");
    let series = (
        proptest::collection::btree_map(label.0, label.1, 0..4),
        -1e9f64..1e9,
    );
    (kind, name, proptest::collection::vec(series, 1..4)).prop_map(|(kind, name, series)| {
        let mut text = format!("# HELP {name} generated\n# TYPE {name} {kind}\n");
        let mut seen = std::collections::BTreeSet::new();
        for (labels, value) in series {
            if !seen.insert(labels.clone()) {
                continue;
            }
            let body: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            if body.is_empty() {
                // The oracle does not accept empty braces (`m{} 1`), so spell it plainly.
                text.push_str(&format!("{name} {value}\n"));
            } else {
                text.push_str(&format!("{name}{{{}}} {value}\n", body.join(",")));
            }
        }
        text
    })
}

proptest! {
    #[test]
    fn agrees_with_prometheus_parse_on_plain_inputs(
        families in proptest::collection::btree_map("[a-z]{1,3}", family(), 1..5)
    ) {
        // Distinct family names: re-key each family by its generated prefix.
        let text: String = families
            .iter()
            .map(|(prefix, f)| f.replace("# HELP ", &format!("# HELP {prefix}_"))
                .replace("# TYPE ", &format!("# TYPE {prefix}_"))
                .lines()
                .map(|l| if l.starts_with('#') { l.to_owned() } else { format!("{prefix}_{l}") })
                .collect::<Vec<_>>()
                .join("\n") + "\n")
            .collect();
        prop_assert_eq!(ours(&text), oracle(&text));
    }

    #[test]
    fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn the_strict_parser_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = metr_domain::openmetrics::parse(&text);
    }

    #[test]
    fn the_strict_parser_never_panics_on_near_valid_expositions(
        body in r#"(# (TYPE|HELP|UNIT) [a-z_]{1,3} [a-z ]{0,6}\n)?([a-z_]{1,6}(\{([a-z]{1,3}="[^"\n]{0,5}",?){0,3}\})? [0-9eE.+\-NaInf]{1,6}( [0-9.]{1,4})?( # \{[a-z]{0,2}="[a-z]{0,2}"\} [0-9]{1,2})?\n){0,4}"#
    ) {
        let _ = metr_domain::openmetrics::parse(&format!("{body}# EOF\n"));
    }

    #[test]
    fn never_panics_on_near_valid_lines(
        text in r#"[a-z_:]{1,5}(\{([a-z]{1,3}=("[^"\n]{0,5}"|[^\n]{0,3}),?){0,3}\}?)? ?[0-9eE.+\-NaInf]{0,6} ?[0-9]{0,4}"#
    ) {
        let _ = parse(&text);
    }
}

#[test]
fn oracle_disagrees_where_it_is_known_to_be_wrong() {
    // Documents why we do not use prometheus-parse: it splits on ',' inside quotes.
    let text = "m{path=\"/a,b\"} 1\n";
    let ours = ours(text);
    assert_eq!(ours[0].0.1["path"], "/a,b");
    let oracle = oracle(text);
    assert_ne!(oracle[0].0.1.get("path").map(String::as_str), Some("/a,b"));
}
