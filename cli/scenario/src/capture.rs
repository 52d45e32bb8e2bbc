//! Captures: values a step saves for later steps' templates, typed by source.

use crate::model::{Action, JsonPathError, Path};
use crate::selector::{Selector, SelectorError};
use crate::span::Span;

/// Why a capture cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("a capture name is a plain word")]
    NotAWord,
    #[error("{0}")]
    JsonPath(#[from] JsonPathError),
    #[error("{0}")]
    Selector(#[from] SelectorError),
    #[error("a {0} step has nothing to capture")]
    NothingToCapture(&'static str),
}

impl CaptureError {
    /// Whether the capture's name, not its source, is at fault.
    pub fn is_about_the_name(&self) -> bool {
        matches!(
            self,
            CaptureError::NotAWord | CaptureError::NothingToCapture(_)
        )
    }
}

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
    pub(crate) fn parse(
        action: &Action,
        name: &str,
        source: &str,
        span: Span,
    ) -> Result<Capture, CaptureError> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains("{{") {
            return Err(CaptureError::NotAWord);
        }
        let source = match action {
            Action::Http(_) if source.starts_with("header:") => {
                CaptureSource::Header(source["header:".len()..].trim().to_owned())
            }
            Action::Http(_) | Action::Sql(_) => CaptureSource::Json(Path::parse(source)?),
            Action::Metrics(_) => CaptureSource::Series(Selector::parse(source)?),
            other => return Err(CaptureError::NothingToCapture(other.kind())),
        };
        Ok(Capture {
            name: name.to_owned(),
            source,
            span,
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
