//! Which parser an exposition needs: from its HTTP Content-Type, or from its text.

use std::fmt;
use std::str::FromStr;

use crate::exposition::{self, ParseError, ParsedSample, RawSample};
use crate::openmetrics;

/// An exposition format, each with its parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text`: the strict [`openmetrics`] parser.
    OpenMetrics,
    /// `text/plain` (Prometheus text 0.0.4) and anything else: the lenient
    /// [`exposition`] parser.
    Text,
}

/// What Prometheus sends in `Accept` when it scrapes: OpenMetrics first,
/// Prometheus text next, anything last.
pub const SCRAPE_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

impl Format {
    /// The format a response's Content-Type announces: any version of
    /// `application/openmetrics-text` is OpenMetrics; anything else, or no
    /// Content-Type, is Prometheus text, as in Prometheus.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let media_type = content_type
            .and_then(|ct| ct.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// The format a file looks like: OpenMetrics when its last line is
    /// `# EOF` (which OpenMetrics requires), Prometheus text otherwise.
    pub fn detect(text: &str) -> Format {
        let body = text.strip_suffix('\n').unwrap_or(text);
        if body == "# EOF" || body.ends_with("\n# EOF") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }

    /// Parses a whole exposition with this format's parser.
    pub fn parse(self, text: &str) -> Result<Vec<ParsedSample>, ParseError> {
        match self {
            Format::OpenMetrics => openmetrics::parse(text),
            Format::Text => exposition::parse(text),
        }
    }

    /// Scans an exposition with this format's parser (see [`exposition::scan`]
    /// and [`openmetrics::scan`]).
    pub fn scan<E: From<ParseError>>(
        self,
        text: &str,
        each: impl FnMut(RawSample<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Format::OpenMetrics => openmetrics::scan(text, each),
            Format::Text => exposition::scan(text, each),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::OpenMetrics => "OpenMetrics",
            Format::Text => "Prometheus text",
        })
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openmetrics" => Ok(Format::OpenMetrics),
            "text" => Ok(Format::Text),
            other => Err(format!(
                "unknown exposition format {other:?} (expected openmetrics or text)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_content_types_of_any_version_pick_the_strict_parser() {
        for ct in [
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            "application/openmetrics-text;version=0.0.1",
            "Application/OpenMetrics-Text",
        ] {
            assert_eq!(
                Format::from_content_type(Some(ct)),
                Format::OpenMetrics,
                "{ct}"
            );
        }
        for ct in [
            Some("text/plain; version=0.0.4"),
            Some("application/json"),
            None,
        ] {
            assert_eq!(Format::from_content_type(ct), Format::Text, "{ct:?}");
        }
    }

    #[test]
    fn a_file_ending_with_eof_looks_like_openmetrics() {
        assert_eq!(Format::detect("a 1\n# EOF\n"), Format::OpenMetrics);
        assert_eq!(Format::detect("# EOF"), Format::OpenMetrics);
        assert_eq!(Format::detect("a 1\n"), Format::Text);
        assert_eq!(Format::detect("a 1\n# EOF\nb 2\n"), Format::Text);
    }

    #[test]
    fn each_format_uses_its_own_parser() {
        let text = "a 1\n";
        assert!(Format::Text.parse(text).is_ok());
        assert!(Format::OpenMetrics.parse(text).is_err(), "no # EOF");
    }
}
