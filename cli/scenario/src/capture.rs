//! Captures: values a step saves for later steps' templates, typed by source.

use crate::model::{Action, Path};
use crate::selector::Selector;
use crate::span::Span;

/// Where a captured value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureSource {
    /// `header:NAME` of an HTTP response.
    Header(String),
    /// A JSONPath into an HTTP response body or an SQL result's rows.
    Json(Path),
    /// The sum of the series a selector picks from a metrics page.
    Series(Selector),
}

/// `name: source` under a step's `capture`.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub name: String,
    pub source: CaptureSource,
    pub span: Span,
}

impl Capture {
    /// Parses a capture of a step of `action`'s kind: a JSONPath (http, sql),
    /// `header:NAME` (http), a selector (metrics).
    pub(crate) fn parse(action: &Action, name: &str, source: &str) -> Result<Capture, String> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains("{{") {
            return Err("a capture name is a plain word".into());
        }
        let source = match action {
            Action::Http(_) if source.starts_with("header:") => {
                CaptureSource::Header(source["header:".len()..].trim().to_owned())
            }
            Action::Http(_) | Action::Sql(_) => CaptureSource::Json(Path::parse(source)?),
            Action::Metrics(_) => CaptureSource::Series(Selector::parse(source)?),
            other => return Err(format!("a {} step has nothing to capture", other.kind())),
        };
        Ok(Capture {
            name: name.to_owned(),
            source,
            span: Span::default(),
        })
    }

    /// The source as written in the scenario.
    pub fn source_text(&self) -> String {
        match &self.source {
            CaptureSource::Header(h) => format!("header:{h}"),
            CaptureSource::Json(p) => p.text.clone(),
            CaptureSource::Series(s) => s.to_string(),
        }
    }
}
