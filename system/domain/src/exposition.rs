//! Parser for the Prometheus text exposition format 0.0.4, tolerant of OpenMetrics.
//!
//! Written here rather than taken from `prometheus-parse` because that crate splits
//! label values on `,` and `=` and ignores escapes, which corrupts real data
//! (histogram `le` values are fine, but any free-text label is not). This parser
//! works on bytes in one pass, borrows until it must allocate, and rejects a
//! malformed exposition as a whole: a scrape is stored entirely or not at all.

use std::fmt;

use crate::model::Labels;

/// One sample line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
    /// Explicit timestamp in milliseconds since the Unix epoch, when the line has one.
    pub timestamp_ms: Option<i64>,
}

/// Why an exposition was rejected, with the 1-based position of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses a whole exposition; any malformed line rejects all of it.
pub fn parse(text: &str) -> Result<Vec<ParsedSample>, ParseError> {
    let mut samples = Vec::new();
    scan(text, |raw: RawSample<'_>| {
        let (name, labels) = raw.parse_series()?;
        samples.push(ParsedSample {
            name,
            labels,
            value: raw.value,
            timestamp_ms: raw.timestamp_ms,
        });
        Ok::<(), ParseError>(())
    })?;
    Ok(samples)
}

/// A sample line whose series (`name{labels}`) is found but not parsed yet.
///
/// The checker looks the raw series text up in a cache and parses it only the
/// first time it sees it: a scrape repeats the same text every time.
#[derive(Debug, Clone, Copy)]
pub struct RawSample<'a> {
    /// The series exactly as written: the name and its label block, if any.
    pub series: &'a str,
    pub value: f64,
    /// Explicit timestamp in milliseconds since the Unix epoch, if any.
    pub timestamp_ms: Option<i64>,
    line_text: &'a str,
    line: usize,
    start: usize,
}

impl<'a> RawSample<'a> {
    /// A sample whose series text starts its line.
    pub(crate) fn new(
        series: &'a str,
        value: f64,
        timestamp_ms: Option<i64>,
        line_text: &'a str,
        line: usize,
    ) -> Self {
        RawSample {
            series,
            value,
            timestamp_ms,
            line_text,
            line,
            start: 0,
        }
    }

    /// Parses the series into its name and labels, rejecting what cannot be
    /// stored (duplicate labels, NUL bytes) with the position of the problem.
    pub fn parse_series(&self) -> Result<(String, Labels), ParseError> {
        let mut cursor = Cursor::new(self.line_text, self.line);
        cursor.pos = self.start;
        let (name, labels) = cursor.series()?;
        if cursor.pos != self.start + self.series.len() {
            return Err(cursor.error("malformed series"));
        }
        if let Some((key, _)) = labels.iter().find(|(_, v)| v.contains('\0')) {
            cursor.pos = self.start;
            return Err(cursor.error(format!(
                "label {key:?} holds a NUL byte, which cannot be stored"
            )));
        }
        Ok((name.to_owned(), labels))
    }
}

/// Finds every sample of an exposition and hands it to `each`, validating the
/// syntax of everything but the label block, which [`RawSample::parse_series`]
/// checks; stops at the first error, from the text or from `each`.
pub fn scan<E: From<ParseError>>(
    text: &str,
    mut each: impl FnMut(RawSample<'_>) -> Result<(), E>,
) -> Result<(), E> {
    let mut after_eof = false;
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let mut cursor = Cursor::new(line, index + 1);
        cursor.skip_blanks();
        if cursor.at_end() {
            continue;
        }
        if after_eof {
            return Err(cursor.error("content after \"# EOF\"").into());
        }
        if cursor.peek() == Some(b'#') {
            after_eof = cursor.comment()? == Comment::Eof;
            continue;
        }
        let start = cursor.pos;
        let sample = match cursor.raw_sample() {
            Some(sample) => sample,
            // The fast scan only finds that something is wrong; the full
            // parser says what and where.
            None => {
                let mut full = Cursor::new(line, index + 1);
                full.pos = start;
                full.sample()?;
                return Err(full.error("malformed sample line").into());
            }
        };
        each(RawSample {
            series: &line[start..sample.series_end],
            value: sample.value,
            timestamp_ms: sample.timestamp_ms,
            line_text: line,
            line: index + 1,
            start,
        })?;
    }
    Ok(())
}

/// What the fast scan found on a sample line.
struct ScannedLine {
    series_end: usize,
    value: f64,
    timestamp_ms: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
enum Comment {
    Eof,
    Other,
}

const METRIC_TYPES: &[&str] = &[
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    // OpenMetrics types, accepted so that an OpenMetrics exposition parses.
    "unknown",
    "info",
    "stateset",
    "gaugehistogram",
];

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str, line: usize) -> Self {
        Cursor {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line,
        }
    }

    fn error(&self, message: impl fmt::Display) -> ParseError {
        ParseError {
            line: self.line,
            column: self.pos + 1,
            message: message.to_string(),
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.describe_here())))
        }
    }

    fn describe_here(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "end of line".to_owned(),
            Some(c) => format!("{c:?}"),
        }
    }

    /// Reads `[a-zA-Z_:][a-zA-Z0-9_:]*` (with `allow_colon`) or the label-name subset.
    fn name(&mut self, allow_colon: bool, what: &str) -> Result<&'a str, ParseError> {
        let start = self.pos;
        let valid_first =
            |b: u8| b.is_ascii_alphabetic() || b == b'_' || (allow_colon && b == b':');
        match self.peek() {
            Some(b) if valid_first(b) => self.pos += 1,
            _ => return Err(self.error(format!("expected {what}, found {}", self.describe_here()))),
        }
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b == b'_' || (allow_colon && b == b':') {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(&self.text[start..self.pos])
    }

    /// Reads a token up to the next blank or the end of the line.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' || b == b'\t' {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    fn comment(&mut self) -> Result<Comment, ParseError> {
        self.pos += 1; // '#'
        if self.skip_blanks() == 0 {
            return Ok(Comment::Other);
        }
        let keyword_start = self.pos;
        let keyword = self.token();
        match keyword {
            "EOF" => {
                self.skip_blanks();
                if self.at_end() {
                    Ok(Comment::Eof)
                } else {
                    Ok(Comment::Other)
                }
            }
            "HELP" | "TYPE" => {
                if self.skip_blanks() == 0 {
                    return Err(self.error(format!("expected a metric name after {keyword}")));
                }
                self.name(true, "a metric name")?;
                if keyword == "HELP" {
                    return Ok(Comment::Other);
                }
                if self.skip_blanks() == 0 {
                    return Err(self.error("expected a metric type after the name"));
                }
                let type_start = self.pos;
                let kind = self.token();
                self.skip_blanks();
                if !METRIC_TYPES.contains(&kind) || !self.at_end() {
                    self.pos = type_start;
                    return Err(self.error(format!(
                        "unknown metric type {:?} (expected one of {})",
                        &self.text[type_start..],
                        METRIC_TYPES.join(", ")
                    )));
                }
                Ok(Comment::Other)
            }
            _ => {
                self.pos = keyword_start;
                Ok(Comment::Other)
            }
        }
    }

    /// Scans a sample line without parsing its labels; `None` when the line
    /// is malformed (the full parser then reports why).
    fn raw_sample(&mut self) -> Option<ScannedLine> {
        self.name(true, "a metric name").ok()?;
        let blanks = self.skip_blanks();
        if self.peek() == Some(b'{') {
            self.skip_label_block()?;
        } else if blanks == 0 {
            return None;
        }
        let series_end = if self.bytes[self.pos - 1] == b'}' {
            self.pos
        } else {
            // `name 1`: the series ends with the name, before the blanks.
            self.text[..self.pos].trim_end_matches([' ', '\t']).len()
        };
        self.skip_blanks();
        let value = parse_float(self.token())?;
        let mut timestamp_ms = None;
        if self.skip_blanks() > 0 && !self.at_end() && self.peek() != Some(b'#') {
            timestamp_ms = Some(parse_timestamp(self.token())?);
            self.skip_blanks();
        }
        if self.peek() == Some(b'#') {
            self.exemplar().ok()?;
        }
        self.at_end().then_some(ScannedLine {
            series_end,
            value,
            timestamp_ms,
        })
    }

    /// Moves past a `{...}` label block, honouring quotes and escapes.
    fn skip_label_block(&mut self) -> Option<()> {
        self.pos += 1;
        let mut quoted = false;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match (quoted, b) {
                (true, b'\\') => self.pos += 1,
                (true, b'"') => quoted = false,
                (false, b'"') => quoted = true,
                (false, b'}') => return Some(()),
                _ => {}
            }
        }
        None
    }

    /// Parses `name` and an optional label block.
    fn series(&mut self) -> Result<(&'a str, Labels), ParseError> {
        let name = self.name(true, "a metric name")?;
        let mut labels = Labels::new();
        let after_name = self.pos;
        self.skip_blanks();
        if self.peek() == Some(b'{') {
            self.pos += 1;
            self.label_set(&mut labels)?;
        } else {
            self.pos = after_name;
        }
        Ok((name, labels))
    }

    fn sample(&mut self) -> Result<ParsedSample, ParseError> {
        let name = self.name(true, "a metric name")?;
        let mut labels = Labels::new();
        let blanks = self.skip_blanks();
        if self.peek() == Some(b'{') {
            self.pos += 1;
            self.label_set(&mut labels)?;
            self.skip_blanks();
        } else if blanks == 0 {
            return Err(self.error(format!(
                "expected '{{' or a blank after the metric name, found {}",
                self.describe_here()
            )));
        }
        let value_start = self.pos;
        let value = parse_float(self.token()).ok_or_else(|| {
            let mut at = Cursor::new(self.text, self.line);
            at.pos = value_start;
            at.error(format!(
                "expected a sample value, found {:?}",
                &self.text[value_start..self.pos]
            ))
        })?;
        let mut timestamp_ms = None;
        if self.skip_blanks() > 0 && !self.at_end() && self.peek() != Some(b'#') {
            let ts_start = self.pos;
            let token = self.token();
            timestamp_ms = Some(parse_timestamp(token).ok_or_else(|| {
                let mut at = Cursor::new(self.text, self.line);
                at.pos = ts_start;
                at.error(format!("expected a timestamp, found {token:?}"))
            })?);
            self.skip_blanks();
        }
        if self.peek() == Some(b'#') {
            self.exemplar()?;
        }
        if !self.at_end() {
            return Err(self.error(format!(
                "expected the end of the line, found {}",
                self.describe_here()
            )));
        }
        Ok(ParsedSample {
            name: name.to_owned(),
            labels,
            value,
            timestamp_ms,
        })
    }

    /// Parses `name="value", ...}` after the opening brace.
    fn label_set(&mut self, labels: &mut Labels) -> Result<(), ParseError> {
        loop {
            self.skip_blanks();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(());
            }
            let name_start = self.pos;
            let name = self.name(false, "a label name or '}'")?;
            self.skip_blanks();
            self.expect(b'=', "'=' after the label name")?;
            self.skip_blanks();
            self.expect(b'"', "'\"' to open the label value")?;
            let value = self.quoted()?;
            if labels.insert(name.to_owned(), value).is_some() {
                self.pos = name_start;
                return Err(self.error(format!("duplicate label {name:?}")));
            }
            self.skip_blanks();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {
                    return Err(self.error(format!(
                        "expected ',' or '}}' after a label, found {}",
                        self.describe_here()
                    )));
                }
            }
        }
    }

    /// Reads a label value after its opening quote, resolving `\\`, `\"` and `\n`.
    fn quoted(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        // Fast path: most values have no escapes and can be copied as one slice.
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(self.text[start..self.pos - 1].to_owned());
                }
                b'\\' => break,
                _ => self.pos += 1,
            }
        }
        let mut value = String::from(&self.text[start..self.pos]);
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return Err(self.error("unterminated label value (missing closing '\"')"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(value),
                '\\' => {
                    let Some(escaped) = self.text[self.pos..].chars().next() else {
                        return Err(self.error("unterminated escape at the end of the line"));
                    };
                    self.pos += escaped.len_utf8();
                    match escaped {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        // Prometheus keeps unknown escapes as written.
                        other => {
                            value.push('\\');
                            value.push(other);
                        }
                    }
                }
                other => value.push(other),
            }
        }
    }

    /// Skips an OpenMetrics exemplar (`# {labels} value [timestamp]`), checking its shape.
    fn exemplar(&mut self) -> Result<(), ParseError> {
        self.pos += 1;
        self.skip_blanks();
        self.expect(b'{', "'{' to open an exemplar")?;
        let mut labels = Labels::new();
        self.label_set(&mut labels)?;
        self.skip_blanks();
        let start = self.pos;
        if parse_float(self.token()).is_none() {
            self.pos = start;
            return Err(self.error("expected an exemplar value"));
        }
        self.skip_blanks();
        if !self.at_end() {
            let start = self.pos;
            if parse_float(self.token()).is_none() {
                self.pos = start;
                return Err(self.error("expected an exemplar timestamp"));
            }
            self.skip_blanks();
        }
        Ok(())
    }
}

/// Parses a sample value as Go's `ParseFloat` does for the forms Prometheus emits.
fn parse_float(token: &str) -> Option<f64> {
    match token {
        "" => None,
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        // Rust also accepts "infinity" and friends; Prometheus does not emit them.
        _ if token
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => token.parse().ok(),
    }
}

/// Timestamps are integer milliseconds (text 0.0.4) or float seconds (OpenMetrics).
fn parse_timestamp(token: &str) -> Option<i64> {
    if let Ok(ms) = token.parse::<i64>() {
        return Some(ms);
    }
    let seconds: f64 = parse_float(token)?;
    seconds
        .is_finite()
        .then(|| (seconds * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> ParsedSample {
        let mut samples = parse(line).unwrap();
        assert_eq!(samples.len(), 1, "{samples:?}");
        samples.remove(0)
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn escaped_label_values_are_unescaped() {
        let s = one(r#"msg{text="a \"quoted\" \\ back\nslash"} 1"#);
        assert_eq!(s.labels["text"], "a \"quoted\" \\ back\nslash");
    }

    #[test]
    fn separators_inside_quotes_belong_to_the_value() {
        let s = one(r#"m{a="x,y=z}",b="}{"} 2"#);
        assert_eq!(s.labels, labels(&[("a", "x,y=z}"), ("b", "}{")]));
    }

    #[test]
    fn special_values_are_recognised() {
        assert!(one("a NaN").value.is_nan());
        assert_eq!(one("a +Inf").value, f64::INFINITY);
        assert_eq!(one("a -Inf").value, f64::NEG_INFINITY);
        assert_eq!(one("a 1.5e3").value, 1500.0);
        assert_eq!(one("a -0.25").value, -0.25);
    }

    #[test]
    fn millisecond_timestamps_are_kept() {
        let s = one("a 1 1700000000123");
        assert_eq!(s.timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(one("a 1").timestamp_ms, None);
    }

    #[test]
    fn names_may_contain_colons() {
        assert_eq!(one("job:rate:5m 3").name, "job:rate:5m");
    }

    #[test]
    fn histograms_summaries_untyped_and_comments_parse() {
        let text = "\
# HELP h A histogram.
# TYPE h histogram
h_bucket{le=\"0.1\"} 1
h_bucket{le=\"+Inf\"} 3
h_sum 0.7
h_count 3
# TYPE s summary
s{quantile=\"0.5\"} 0.2
s_sum 1
s_count 4
# a free comment
untyped_thing 7

";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 8);
        assert_eq!(samples[1].labels["le"], "+Inf");
        assert_eq!(samples[7].name, "untyped_thing");
    }

    #[test]
    fn openmetrics_eof_and_exemplars_are_tolerated() {
        let text = "\
# TYPE c counter
c_total{a=\"b\"} 3 # {trace_id=\"abc\"} 1.0 1700000000.5
c_created 1700000000.123
# EOF
";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[1].timestamp_ms, None);
    }

    #[test]
    fn content_after_eof_is_rejected() {
        let err = parse("a 1\n# EOF\nb 2\n").unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn trailing_comma_and_empty_braces_are_accepted() {
        assert_eq!(one(r#"a{x="1",} 1"#).labels, labels(&[("x", "1")]));
        assert!(one("a{} 1").labels.is_empty());
    }

    #[test]
    fn crlf_line_endings_are_accepted() {
        assert_eq!(parse("a 1\r\nb 2\r\n").unwrap().len(), 2);
    }

    #[test]
    fn malformed_lines_name_their_position() {
        let cases: &[(&str, usize, usize)] = &[
            ("ok 1\nbad{a=\"1\" 2", 2, 11),
            ("a{b=1} 2", 1, 5),
            ("a{b=\"1\"} x", 1, 10),
            ("a 1 notatime", 1, 5),
            ("a{b=\"unterminated} 1", 1, 21),
            ("a{b=\"1\",b=\"2\"} 1", 1, 9),
            ("9a 1", 1, 1),
            ("a", 1, 2),
            ("# TYPE a bogus", 1, 10),
            ("a 1 2 3", 1, 7),
        ];
        for (text, line, column) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!((err.line, err.column), (*line, *column), "{text}: {err}");
        }
    }

    #[test]
    fn one_bad_line_rejects_the_whole_exposition() {
        assert!(parse("a 1\nb 2\nc{ 3\nd 4").is_err());
    }

    #[test]
    fn unicode_in_label_values_survives() {
        assert_eq!(one("a{v=\"héllo ✓\"} 1").labels["v"], "héllo ✓");
        assert_eq!(one("a{v=\"é\\\\\"} 1").labels["v"], "é\\");
    }

    #[test]
    fn a_scan_finds_the_raw_series_text_without_parsing_labels() {
        let mut seen = Vec::new();
        scan(
            "a{x=\"}\\\"\"} 1\nb 2 1700000000000\nc {} 3\n",
            |raw: RawSample<'_>| {
                seen.push((raw.series.to_owned(), raw.value, raw.timestamp_ms));
                Ok::<(), ParseError>(())
            },
        )
        .unwrap();
        assert_eq!(
            seen,
            vec![
                ("a{x=\"}\\\"\"}".to_owned(), 1.0, None),
                ("b".to_owned(), 2.0, Some(1_700_000_000_000)),
                ("c {}".to_owned(), 3.0, None),
            ]
        );
    }

    #[test]
    fn a_nul_byte_in_a_label_value_is_rejected_with_its_position() {
        let err = parse("ok 1\nbad{v=\"a\0b\"} 1").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1), "{err}");
        assert!(err.message.contains("NUL"), "{err}");
    }
}
