//! One renderer for everything that points into a scenario file: load errors
//! and failed expectations alike show `file:line:col`, the source line, a
//! caret, and what was expected against what was found.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::span::Span;

/// A problem in a scenario file, at a position when one is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    /// The offending line of the file, shown under the message. Not written
    /// in reports: `report merge` reads it from the file again when it can.
    #[serde(skip)]
    pub source_line: Option<String>,
    /// Written after the caret: for a failed expectation, expected and actual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A hint shown last, rustc's way (`= help: did you mean …?`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        let label = self.label.as_deref().unwrap_or("");
        if let (Some(line), Some(text)) = (self.line, &self.source_line) {
            let gutter = line.to_string().len();
            let (shown, column) = excerpt(text, self.column);
            let shown = visible(&shown);
            write!(f, "\n{:gutter$} |\n{line} | {shown}", "")?;
            if let Some(column) = column {
                // Padding by repetition: a format width is limited to 65,535.
                let pad = " ".repeat(column.saturating_sub(1));
                write!(f, "\n{:gutter$} | {pad}^", "")?;
                if !label.is_empty() {
                    write!(f, " {}", indent(label, gutter + 3 + column + 1))?;
                }
            } else if !label.is_empty() {
                write!(f, "\n{:gutter$} = {label}", "")?;
            }
        } else if !label.is_empty() {
            write!(f, "\n  {label}")?;
        }
        if let Some(help) = &self.help {
            let gutter = match (self.line, &self.source_line) {
                (Some(line), Some(_)) => line.to_string().len(),
                _ => 1,
            };
            write!(f, "\n{:gutter$} = help: {help}", "")?;
        }
        Ok(())
    }
}

/// A line with its control characters shown as their pictures (NUL as `␀`),
/// one character for one, so the caret stays under its column.
fn visible(line: &str) -> String {
    line.chars()
        .map(|c| match u32::from(c) {
            n @ 0..=0x08 | n @ 0x0a..=0x1f => char::from_u32(0x2400 + n).unwrap_or(c),
            0x7f => '\u{2421}',
            _ => c,
        })
        .collect()
}

/// Continuation lines of a label, aligned under its first line.
fn indent(label: &str, width: usize) -> String {
    label.replace('\n', &format!("\n{}", " ".repeat(width)))
}

/// Longest part of a source line shown under a diagnostic.
const SHOWN_CHARS: usize = 120;

/// A long line cut to [`SHOWN_CHARS`] around the column, marked with `…` where
/// cut, and the column within what is shown.
fn excerpt(line: &str, column: Option<usize>) -> (String, Option<usize>) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= SHOWN_CHARS {
        return (line.to_owned(), column);
    }
    let at = column.unwrap_or(1).saturating_sub(1).min(chars.len());
    let end = (at.saturating_sub(SHOWN_CHARS / 2) + SHOWN_CHARS).min(chars.len());
    let start = end.saturating_sub(SHOWN_CHARS);
    let mut shown = String::new();
    if start > 0 {
        shown.push('…');
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    let column = column.map(|_| at - start + 1 + usize::from(start > 0));
    (shown, column)
}

impl Diagnostic {
    /// A diagnostic at a position of `text`, showing that line.
    pub fn at(
        file: &Path,
        text: &str,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    ) -> Diagnostic {
        // A parser error at the end of the file points past the last line:
        // show the end of the last line instead.
        let count = text.lines().count();
        let (line, column) = match line {
            Some(l) if l > count && count > 0 => {
                let last = text.lines().last().map_or(0, str::len);
                (Some(count), Some(last + 1))
            }
            other => (other, column),
        };
        let source_line = line
            .and_then(|l| text.lines().nth(l.saturating_sub(1)))
            .map(str::to_owned);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message,
            source_line,
            label: None,
            help: None,
        }
    }

    /// A diagnostic at `span` of `text` (no position when the span is unknown).
    pub fn spanned(file: &Path, text: &str, span: Span, message: String) -> Diagnostic {
        if span.is_known() {
            Diagnostic::at(file, text, Some(span.line), Some(span.column), message)
        } else {
            Diagnostic::at(file, text, None, None, message)
        }
    }

    /// The same diagnostic with `label` after the caret.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_expectation_prints_like_a_load_error_with_its_label() {
        let text = "name: x\nsteps:\n  - http: { path: /a }\n    expect: { status: 200 }\n";
        let d = Diagnostic::spanned(
            Path::new("s.yaml"),
            text,
            Span::new(4, 15),
            "expectation failed: status".into(),
        )
        .with_label("expected equals 200\nactual 503");
        assert_eq!(
            d.to_string(),
            "s.yaml:4:15: expectation failed: status\n  |\n4 |     expect: { status: 200 }\n  |               ^ expected equals 200\n                    actual 503"
        );
    }

    #[test]
    fn an_unknown_span_gives_the_file_alone() {
        let d = Diagnostic::spanned(Path::new("s.yaml"), "", Span::default(), "boom".into())
            .with_label("why");
        assert_eq!(d.to_string(), "s.yaml: boom\n  why");
    }

    #[test]
    fn a_control_character_is_shown_as_its_picture_above_the_caret() {
        let d = Diagnostic::at(
            Path::new("s.yaml"),
            "a: b\0c\n",
            Some(1),
            Some(5),
            "x".into(),
        );
        assert_eq!(
            d.to_string(),
            "s.yaml:1:5: x\n  |\n1 | a: b\u{2400}c\n  |     ^"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = format!("{}X{}", "a".repeat(300), "b".repeat(300));
        let d = Diagnostic::at(Path::new("s"), &line, Some(1), Some(301), "m".into());
        let shown = d.to_string();
        let caret_line = shown.lines().last().unwrap();
        let source = shown.lines().nth(2).unwrap();
        let caret = caret_line.chars().position(|c| c == '^').unwrap();
        assert_eq!(source.chars().nth(caret), Some('X'), "{shown}");
    }
}
