//! Reads an exposition line by line, keeping the family and metric being read.

use super::family::{Claims, Family, Role};
use super::group::Groups;
use super::line::{self, Label, Line, Meta, Sample};
use super::rules;
use crate::exposition::ParseError;

/// One sample as the scan hands it on.
pub(super) struct Found<'s, 'a> {
    pub sample: &'s Sample<'a>,
    pub labels: &'s [Label<'a>],
    /// The whole line and its 1-based number.
    pub line_text: &'a str,
    pub line: usize,
}

/// Checks the whole exposition, handing each sample to `each` once its line
/// is read; an error, from the text or from `each`, stops the scan.
pub(super) fn run<'a, E: From<ParseError>>(
    text: &'a str,
    mut each: impl FnMut(Found<'_, 'a>) -> Result<(), E>,
) -> Result<(), E> {
    if text.is_empty() {
        return Err(at(1, "empty exposition: OpenMetrics ends with \"# EOF\"").into());
    }
    let mut state = State::default();
    let mut labels = Vec::new();
    let mut lines = text.split('\n').enumerate().peekable();
    let mut last = 0;
    while let Some((index, line_text)) = lines.next() {
        let number = index + 1;
        last = number;
        if line_text.is_empty() && lines.peek().is_none() {
            break;
        }
        match line::read(line_text, number, &mut labels)? {
            Line::Eof => {
                state.close()?;
                return after_eof(lines).map_err(E::from);
            }
            Line::Meta(meta) => state.meta(&meta, number)?,
            Line::Sample(sample) => {
                state.sample(&sample, &labels, number)?;
                each(Found {
                    sample: &sample,
                    labels: &labels,
                    line_text,
                    line: number,
                })?;
            }
        }
    }
    Err(at(last, "missing \"# EOF\" at the end").into())
}

/// Only the line feed ending `# EOF` may follow it.
fn after_eof<'a>(mut rest: impl Iterator<Item = (usize, &'a str)>) -> Result<(), ParseError> {
    match (rest.next(), rest.next()) {
        (None, _) | (Some((_, "")), None) => Ok(()),
        (Some((index, "")), Some(_)) | (Some((index, _)), _) => {
            Err(at(index + 1, "content after \"# EOF\""))
        }
    }
}

#[derive(Default)]
struct State<'a> {
    family: Option<Family<'a>>,
    claims: Claims,
    groups: Groups<'a>,
}

impl<'a> State<'a> {
    fn meta(&mut self, meta: &Meta<'a>, line: usize) -> Result<(), ParseError> {
        if self.family.as_ref().is_none_or(|f| f.name != meta.name) {
            self.close()?;
            self.family = Some(Family::new(meta.name, line));
        }
        match self.family.as_mut() {
            Some(family) => family.apply(meta).map_err(|m| at(line, m)),
            None => Ok(()),
        }
    }

    fn sample(
        &mut self,
        sample: &Sample<'a>,
        labels: &[Label<'a>],
        line: usize,
    ) -> Result<(), ParseError> {
        let role = match self.family.as_ref().and_then(|f| f.role_of(sample.name)) {
            Some(role) => role,
            None => {
                // A sample no family announced starts a family of unknown type.
                self.close()?;
                self.family = Some(Family::new(sample.name, line));
                Role::Plain
            }
        };
        let Some(family) = self.family.as_mut() else {
            return Ok(());
        };
        if !family.has_samples {
            family.has_samples = true;
            complete(&mut self.claims, family, line)?;
        }
        rules::check(family, role, sample, labels).map_err(|(offset, message)| ParseError {
            line,
            column: offset + 1,
            message,
        })?;
        self.groups.add(family, role, sample, labels, line)
    }

    /// Ends the current family, if any.
    fn close(&mut self) -> Result<(), ParseError> {
        let Some(family) = self.family.take() else {
            return Ok(());
        };
        if !family.has_samples {
            complete(&mut self.claims, &family, family.line)?;
        }
        self.groups.finish(&family)
    }
}

/// Checks a family whose metadata is final and claims its sample names.
fn complete(claims: &mut Claims, family: &Family<'_>, line: usize) -> Result<(), ParseError> {
    family
        .check_complete()
        .and_then(|()| claims.claim(family))
        .map_err(|m| at(line, m))
}

fn at(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        column: 1,
        message: message.into(),
    }
}
