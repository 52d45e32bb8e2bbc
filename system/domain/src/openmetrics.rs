//! A strict parser for the OpenMetrics 1.0 text format
//! (`application/openmetrics-text`), producing the same samples as the
//! lenient Prometheus text parser in [`crate::exposition`], which stays the
//! parser for `text/plain`.
//!
//! Strict means the exposition is checked against the ABNF and the rules the
//! specification states for each type, and any violation rejects all of it:
//! single spaces between fields, no blank or free comment lines, `# EOF` last;
//! metadata before a family's samples and given at most once; family names
//! that cannot clash; a family's samples together and each metric's samples
//! together with timestamps that never go back; counters and histogram
//! buckets neither negative nor NaN; histogram points with a `+Inf` bucket,
//! increasing `le`, cumulative counts, `_count` equal to the `+Inf` bucket,
//! `_sum` and `_count` together (and no `_sum` with negative buckets);
//! summaries' `quantile` within 0..=1; info samples 1, stateset samples 0 or 1.
//! The OpenMetrics project's conformance cases (`tests/openmetrics/`) all pass.
//!
//! What becomes of the parts the sample model has no place for:
//! - **Exemplars** are checked (syntax, at most 128 characters of labels, only
//!   on a counter's `_total` or a histogram's `_bucket`) and then **dropped**:
//!   the sample keeps its own labels and value, the exemplar's never leak in.
//! - **`_created` series** are **stored** as ordinary samples named
//!   `<family>_created` whose value is the creation time in seconds, as the
//!   lenient parser and Prometheus without created-timestamp ingestion do.
//! - **HELP, TYPE and UNIT** are checked and dropped, as in the lenient parser.
//! - **Timestamps** are seconds in OpenMetrics; they become milliseconds,
//!   rounded, saturating at the `i64` range.
//!
//! Not checked: that an exemplar's value lies within its bucket, that counts
//! are integers, and the reserved `__` label-name prefix.

mod family;
mod group;
mod line;
mod number;
mod rules;
mod scan;

use crate::exposition::{ParseError, ParsedSample, RawSample};
use crate::model::Labels;

/// Parses a whole OpenMetrics exposition; any violation rejects all of it.
pub fn parse(text: &str) -> Result<Vec<ParsedSample>, ParseError> {
    let mut samples = Vec::new();
    scan::run(text, |found| {
        if let Some(label) = found.labels.iter().find(|l| l.value.contains('\0')) {
            return Err(ParseError {
                line: found.line,
                column: label.at + 1,
                message: format!(
                    "label {:?} holds a NUL byte, which cannot be stored",
                    label.name
                ),
            });
        }
        let mut labels = Labels::new();
        for label in found.labels {
            labels.insert(label.name.to_owned(), label.value.as_ref().to_owned());
        }
        samples.push(ParsedSample {
            name: found.sample.name.to_owned(),
            labels,
            value: found.sample.value,
            timestamp_ms: found.sample.timestamp.map(number::seconds_to_ms),
        });
        Ok(())
    })?;
    Ok(samples)
}

/// Checks an exposition and hands each sample to `each` as a [`RawSample`],
/// like [`crate::exposition::scan`], so that a caller serves both formats
/// with one closure. Rules that span lines (a histogram's `_count` against
/// its `+Inf` bucket) fail after earlier samples were handed on: on an error,
/// discard what `each` received.
pub fn scan<E: From<ParseError>>(
    text: &str,
    mut each: impl FnMut(RawSample<'_>) -> Result<(), E>,
) -> Result<(), E> {
    scan::run(text, |found| {
        each(RawSample::new(
            found.sample.series,
            found.sample.value,
            found.sample.timestamp.map(number::seconds_to_ms),
            found.line_text,
            found.line,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE req_seconds counter\n# UNIT req_seconds seconds\nreq_seconds_total{path=\"/a,b\",msg=\"say \\\"hi\\\"\"} 7 1700000000.5 # {trace_id=\"abc\"} 1\nreq_seconds_created{path=\"/a,b\",msg=\"say \\\"hi\\\"\"} 1600000000 1700000000.5\n# EOF\n";

    #[test]
    fn scanned_samples_parse_to_what_parse_returns() {
        let parsed = parse(TEXT).unwrap();
        let mut scanned = Vec::new();
        scan(TEXT, |raw: RawSample<'_>| {
            let (name, labels) = raw.parse_series()?;
            scanned.push(ParsedSample {
                name,
                labels,
                value: raw.value,
                timestamp_ms: raw.timestamp_ms,
            });
            Ok::<(), ParseError>(())
        })
        .unwrap();
        assert_eq!(scanned, parsed);
        assert_eq!(parsed[0].labels["msg"], "say \"hi\"");
        assert_eq!(parsed[0].timestamp_ms, Some(1_700_000_000_500));
        assert_eq!(parsed[1].name, "req_seconds_created");
    }

    #[test]
    fn an_exemplar_never_reaches_the_sample() {
        let parsed = parse(TEXT).unwrap();
        assert!(!parsed[0].labels.contains_key("trace_id"), "{parsed:?}");
        assert_eq!(parsed[0].value, 7.0);
    }

    #[test]
    fn what_the_text_format_allows_is_rejected_with_its_position() {
        let cases: &[(&str, usize, usize)] = &[
            ("a 1\r\n# EOF\n", 1, 4),
            ("a 1\n", 2, 1),
            ("# a free comment\n# EOF\n", 1, 3),
            ("a{b=\"1\",} 1\n# EOF\n", 1, 9),
            ("a 1\n# EOF\n\n", 3, 1),
            ("a{v=\"x\0\"} 1\n# EOF\n", 1, 3),
        ];
        for (text, line, column) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!((err.line, err.column), (*line, *column), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_histogram_may_show_several_points_each_checked_whole() {
        let two_points = "# TYPE h histogram\n\
h_bucket{le=\"1\"} 1 10\nh_bucket{le=\"+Inf\"} 2 10\nh_count 2 10\nh_sum 1 10\n\
h_bucket{le=\"1\"} 3 20\nh_bucket{le=\"+Inf\"} 5 20\nh_count 5 20\nh_sum 4 20\n# EOF\n";
        assert_eq!(parse(two_points).unwrap().len(), 8);
        let second_broken = two_points.replace("h_count 5 20", "h_count 6 20");
        let err = parse(&second_broken).unwrap_err();
        assert_eq!(err.line, 8, "{err}");
    }

    #[test]
    fn labels_in_another_order_are_the_same_metric() {
        let text = "# TYPE h histogram\n\
h_bucket{a=\"1\",b=\"2\",le=\"+Inf\"} 2\nh_count{b=\"2\",a=\"1\"} 2\nh_sum{a=\"1\",b=\"2\"} 1\n# EOF\n";
        assert_eq!(parse(text).unwrap().len(), 3);
        let interleaved = "a{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 2\n# EOF\n";
        assert_eq!(parse(interleaved).unwrap_err().line, 3);
    }
}
