//! One line of an OpenMetrics exposition, read by the ABNF: single spaces
//! between fields, no blanks anywhere else, no free comments.

use std::borrow::Cow;

use super::number;
use crate::exposition::ParseError;

/// Most label name and value characters an exemplar may carry.
const EXEMPLAR_MAX_CHARS: usize = 128;

const LABEL_FIRST: u8 = 1;
const LABEL_REST: u8 = 2;
const METRIC_FIRST: u8 = 4;
const METRIC_REST: u8 = 8;

/// Which bytes may start or continue a label or metric name: a table, as
/// names are most of what a line holds.
static NAME_CHARS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let letter = c.is_ascii_alphabetic() || c == b'_';
        let mut bits = 0;
        if letter {
            bits |= LABEL_FIRST | LABEL_REST | METRIC_FIRST | METRIC_REST;
        }
        if c.is_ascii_digit() {
            bits |= LABEL_REST | METRIC_REST;
        }
        if c == b':' {
            bits |= METRIC_FIRST | METRIC_REST;
        }
        table[b] = bits;
        b += 1;
    }
    table
};

/// A label as written, its value unescaped (borrowed when it had no escapes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Label<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
    /// Byte offset of the name in its line.
    pub at: usize,
}

/// What a line holds.
#[derive(Debug)]
pub(super) enum Line<'a> {
    Eof,
    Meta(Meta<'a>),
    Sample(Sample<'a>),
}

/// Which metadata a `# HELP`, `# TYPE` or `# UNIT` line gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MetaKind {
    Help,
    Type,
    Unit,
}

/// A metadata line: its kind, the family it names and the rest of the line.
#[derive(Debug)]
pub(super) struct Meta<'a> {
    pub kind: MetaKind,
    pub name: &'a str,
    pub rest: &'a str,
}

/// A sample line; its labels are in the buffer given to [`read`].
#[derive(Debug)]
pub(super) struct Sample<'a> {
    pub name: &'a str,
    /// The name and its label block exactly as written.
    pub series: &'a str,
    pub value: f64,
    /// Seconds since the epoch.
    pub timestamp: Option<f64>,
    /// Byte offset of the exemplar's `#`, when the line has one (it is
    /// checked, then dropped: the model has no place for it).
    pub exemplar_at: Option<usize>,
}

/// Reads line `number` (1-based); a sample's labels go to `labels`.
pub(super) fn read<'a>(
    text: &'a str,
    number: usize,
    labels: &mut Vec<Label<'a>>,
) -> Result<Line<'a>, ParseError> {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        line: number,
    };
    if text.is_empty() {
        return Err(lexer.error("blank line (OpenMetrics has none before \"# EOF\")"));
    }
    if text.ends_with('\r') {
        lexer.pos = text.len() - 1;
        return Err(lexer.error(
            "carriage return at the end of the line (OpenMetrics lines end with \\n only)",
        ));
    }
    if lexer.peek() == Some(b'#') {
        return lexer.meta().map(|meta| meta.map_or(Line::Eof, Line::Meta));
    }
    labels.clear();
    lexer.sample(labels).map(Line::Sample)
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            column: self.text[..self.pos].chars().count() + 1,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn found(&self) -> String {
        match self.text[self.pos..].chars().next() {
            None => "the end of the line".to_owned(),
            Some(c) => format!("{c:?}"),
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.found())))
        }
    }

    /// Reads a metric name (`allow_colon`) or a label name.
    fn name(&mut self, allow_colon: bool, what: &str) -> Result<&'a str, ParseError> {
        let start = self.pos;
        let (first, rest) = if allow_colon {
            (METRIC_FIRST, METRIC_REST)
        } else {
            (LABEL_FIRST, LABEL_REST)
        };
        if self
            .peek()
            .is_none_or(|b| NAME_CHARS[usize::from(b)] & first == 0)
        {
            return Err(self.error(format!("expected {what}, found {}", self.found())));
        }
        let tail = &self.bytes[start + 1..];
        let len = tail
            .iter()
            .position(|&b| NAME_CHARS[usize::from(b)] & rest == 0)
            .unwrap_or(tail.len());
        self.pos = start + 1 + len;
        Ok(&self.text[start..self.pos])
    }

    /// Reads up to the next space or the end of the line.
    fn token(&mut self) -> (usize, &'a str) {
        let start = self.pos;
        while self.peek().is_some_and(|b| b != b' ') {
            self.pos += 1;
        }
        (start, &self.text[start..self.pos])
    }

    /// A `#` line: `None` for `# EOF`.
    fn meta(&mut self) -> Result<Option<Meta<'a>>, ParseError> {
        if self.text == "# EOF" {
            return Ok(None);
        }
        self.pos = 1;
        self.expect(b' ', "a space after '#' (OpenMetrics has no free comments)")?;
        let (start, keyword) = self.token();
        let kind = match keyword {
            "HELP" => MetaKind::Help,
            "TYPE" => MetaKind::Type,
            "UNIT" => MetaKind::Unit,
            "EOF" => {
                return Err(self.error("unexpected text after \"# EOF\" on its line"));
            }
            _ => {
                self.pos = start;
                return Err(self.error(format!(
                    "unknown comment {keyword:?}: OpenMetrics has only # HELP, # TYPE, # UNIT and # EOF"
                )));
            }
        };
        self.expect(b' ', &format!("a space after {keyword}"))?;
        let name = self.name(true, "a metric name")?;
        self.expect(b' ', "a space after the metric name")?;
        let rest = &self.text[self.pos..];
        let valid = match kind {
            MetaKind::Help => true,
            MetaKind::Type => super::family::Kind::parse(rest).is_some(),
            MetaKind::Unit => rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
        };
        if !valid {
            return Err(self.error(match kind {
                MetaKind::Type => format!(
                    "unknown metric type {rest:?} (expected counter, gauge, histogram, gaugehistogram, stateset, info, summary or unknown)"
                ),
                _ => format!("invalid unit {rest:?} (letters, digits, '_' and ':' only)"),
            }));
        }
        Ok(Some(Meta { kind, name, rest }))
    }

    fn sample(&mut self, labels: &mut Vec<Label<'a>>) -> Result<Sample<'a>, ParseError> {
        let name = self.name(true, "a metric name")?;
        if self.peek() == Some(b'{') {
            self.label_set(labels)?;
        }
        let series = &self.text[..self.pos];
        self.expect(b' ', "a single space before the value")?;
        let (start, token) = self.token();
        let value = number::value(token).ok_or_else(|| self.invalid(start, "a value", token))?;
        let mut sample = Sample {
            name,
            series,
            value,
            timestamp: None,
            exemplar_at: None,
        };
        if !self.space_before_more()? {
            return Ok(sample);
        }
        if self.peek() != Some(b'#') {
            let (start, token) = self.token();
            sample.timestamp =
                Some(number::real(token).ok_or_else(|| self.invalid(start, "a timestamp", token))?);
            if !self.space_before_more()? {
                return Ok(sample);
            }
        }
        sample.exemplar_at = Some(self.pos);
        self.exemplar()?;
        Ok(sample)
    }

    /// After a field: `false` at the end of the line, `true` past a single
    /// space that more follows.
    fn space_before_more(&mut self) -> Result<bool, ParseError> {
        if self.at_end() {
            return Ok(false);
        }
        self.expect(b' ', "a single space")?;
        if self.at_end() || self.peek() == Some(b' ') {
            return Err(self.error("trailing or repeated space"));
        }
        Ok(true)
    }

    fn invalid(&self, start: usize, what: &str, token: &str) -> ParseError {
        let at = Lexer {
            pos: start,
            ..*self
        };
        if token.is_empty() {
            return at.error(format!("expected {what}, found {}", at.found()));
        }
        at.error(format!("{token:?} is not {what}"))
    }

    /// `# {labels} value [timestamp]`, the `#` under the cursor.
    fn exemplar(&mut self) -> Result<(), ParseError> {
        self.expect(b'#', "'#' to start an exemplar")?;
        self.expect(b' ', "a space after the exemplar's '#'")?;
        if self.peek() != Some(b'{') {
            return Err(self.error(format!(
                "expected '{{' to open the exemplar's labels, found {}",
                self.found()
            )));
        }
        let start = self.pos;
        let mut labels = Vec::new();
        self.label_set(&mut labels)?;
        let chars: usize = labels
            .iter()
            .map(|l| l.name.len() + l.value.chars().count())
            .sum();
        if chars > EXEMPLAR_MAX_CHARS {
            let at = Lexer {
                pos: start,
                ..*self
            };
            return Err(at.error(format!(
                "the exemplar's labels hold {chars} characters, more than {EXEMPLAR_MAX_CHARS}"
            )));
        }
        self.expect(b' ', "a space before the exemplar's value")?;
        let (start, token) = self.token();
        number::value(token).ok_or_else(|| self.invalid(start, "an exemplar value", token))?;
        if self.space_before_more()? {
            let (start, token) = self.token();
            number::real(token)
                .ok_or_else(|| self.invalid(start, "an exemplar timestamp", token))?;
            if !self.at_end() {
                return Err(self.error("trailing text after the exemplar"));
            }
        }
        Ok(())
    }

    /// `{name="value",...}` with no spaces and no trailing comma.
    fn label_set(&mut self, labels: &mut Vec<Label<'a>>) -> Result<(), ParseError> {
        self.pos += 1;
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let at = self.pos;
            let name = self.name(false, "a label name")?;
            self.expect(b'=', "'=' after the label name")?;
            self.expect(b'"', "'\"' to open the label value")?;
            let value = self.quoted()?;
            labels.push(Label { name, value, at });
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return self.no_duplicates(labels);
                }
                _ => {
                    return Err(self.error(format!(
                        "expected ',' or '}}' after a label, found {}",
                        self.found()
                    )));
                }
            }
        }
    }

    fn no_duplicates(&self, labels: &[Label<'a>]) -> Result<(), ParseError> {
        // Quadratic on the few labels a series has; sorted beyond that, so a
        // hostile line cannot make it slow.
        let duplicate = if labels.len() <= 16 {
            labels
                .iter()
                .enumerate()
                .find(|(i, l)| labels[..*i].iter().any(|m| m.name == l.name))
                .map(|(_, l)| l)
        } else {
            let mut sorted: Vec<&Label<'a>> = labels.iter().collect();
            sorted.sort_by_key(|l| (l.name, l.at));
            sorted
                .windows(2)
                .find(|w| w[0].name == w[1].name)
                .map(|w| w[1])
        };
        match duplicate {
            None => Ok(()),
            Some(label) => {
                let at = Lexer {
                    pos: label.at,
                    ..*self
                };
                Err(at.error(format!("duplicate label {:?}", label.name)))
            }
        }
    }

    /// A label value after its opening quote: `\\`, `\"` and `\n` are
    /// escapes; any other escaped character keeps its backslash.
    fn quoted(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Borrowed(&self.text[start..self.pos - 1]));
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
                '"' => return Ok(Cow::Owned(value)),
                '\\' => {
                    let Some(escaped) = self.text[self.pos..].chars().next() else {
                        return Err(self.error("unterminated escape at the end of the line"));
                    };
                    self.pos += escaped.len_utf8();
                    match escaped {
                        'n' => value.push('\n'),
                        '"' | '\\' => value.push(escaped),
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
}
