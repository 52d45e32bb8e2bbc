//! Finding scenario files and turning them into scenarios or positioned
//! errors: the file is read, parsed once ([`crate::yaml`]), decoded
//! ([`crate::decode`]) with every problem kept, and each problem rendered
//! at its own position.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::decode::Decoder;
pub use crate::diagnostic::Diagnostic;
use crate::error::{LoadError, Problem, SchemaError};
use crate::expect::{Expect, HttpExpect};
use crate::files::{self, ReadError};
use crate::model::Scenario;
use crate::references::{self, Context};
use crate::span::{NodePath, Span};
use crate::{template, yaml};

/// A scenario with where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: PathBuf,
    /// The file's text: failures at run time show their line of it.
    pub source: Arc<str>,
    pub scenario: Scenario,
}

impl Loaded {
    /// The scenario's folder: JSON Schemas are read relative to it.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// A diagnostic pointing at `span` of this scenario's file.
    pub fn diagnostic(&self, span: Span, message: String) -> Diagnostic {
        Diagnostic::spanned(&self.file, &self.source, span, message)
    }
}

pub use crate::files::discover;

/// How many problems of one file are shown; the rest are counted.
pub const MAX_SHOWN_PROBLEMS: usize = 20;

/// Reads and parses one scenario file; every problem found is returned.
pub fn load(file: &Path, context: &Context) -> Result<Loaded, Vec<Diagnostic>> {
    let text = files::read(file).map_err(|e| {
        vec![match e {
            ReadError::Refused(why) => {
                Diagnostic::at(file, "", None, None, LoadError::Unreadable(why).to_string())
            }
            ReadError::NotUtf8 { line, column } => Diagnostic::at(
                file,
                "",
                Some(line),
                Some(column),
                LoadError::NotUtf8.to_string(),
            ),
        }]
    })?;
    parse(file, &text, context)
}

/// Parses scenario text; every problem found is returned, in the order of
/// their positions.
pub fn parse(file: &Path, text: &str, context: &Context) -> Result<Loaded, Vec<Diagnostic>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let dir = file.parent().unwrap_or(Path::new("."));
    match scenario(text, dir, context) {
        Ok(scenario) => Ok(Loaded {
            file: file.to_path_buf(),
            source: Arc::from(text),
            scenario,
        }),
        Err(mut problems) => {
            problems.sort_by_key(|p| (p.span.line, p.span.column));
            Err(problems
                .into_iter()
                .map(|p| {
                    let message = p.to_string();
                    let mut d = Diagnostic::spanned(file, text, p.span, message);
                    d.help = p.help;
                    d
                })
                .collect())
        }
    }
}

/// The scenario of `text`, or every problem found in it.
pub fn scenario(text: &str, dir: &Path, context: &Context) -> Result<Scenario, Vec<Problem>> {
    let forbidden = control_characters(text);
    if !forbidden.is_empty() {
        return Err(forbidden);
    }
    let mut problems = template_problems(text);
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(p) => {
            problems.push(p);
            return Err(problems);
        }
    };
    yaml::duplicates(&root, &NodePath::root(), &mut problems);
    let mut decoder = Decoder::new(context);
    let scenario = decoder.scenario(&root);
    problems.append(&mut decoder.problems);
    let Some(mut scenario) = scenario else {
        return Err(problems);
    };
    problems.extend(compile_schemas(&mut scenario, dir));
    problems.extend(references::templates(text, &scenario, context));
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(problems)
    }
}

/// Compiles every `json_schema` once, at load; a file that cannot be used
/// is a problem where it is named.
fn compile_schemas(scenario: &mut Scenario, dir: &Path) -> Vec<Problem> {
    let mut problems = Vec::new();
    for step in &mut scenario.steps {
        let fail_if = step.retry.as_mut().and_then(|r| r.fail_if.as_mut());
        for expect in std::iter::once(&mut step.expect).chain(fail_if) {
            let Expect::Http(HttpExpect {
                json_schema: Some(schema),
                ..
            }) = expect
            else {
                continue;
            };
            match load_schema(&dir.join(&schema.file)) {
                Ok(validator) => schema.compiled(validator),
                Err(error) => {
                    let file = schema.file.clone();
                    problems.push(Problem::new(
                        schema.span,
                        LoadError::JsonSchema { file, error },
                    ));
                }
            }
        }
    }
    problems
}

/// Every character YAML does not allow (a NUL byte, an escape, …), at its
/// own position: the parse would stop at the first.
fn control_characters(text: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        for (column, c) in line.chars().enumerate() {
            if forbidden(c) {
                let at = Span::new(i + 1, column + 1);
                out.push(Problem::new(at, LoadError::ControlCharacter(c)));
            }
        }
    }
    out
}

/// What YAML 1.1's reader refuses (libyaml's printable set, inverted).
fn forbidden(c: char) -> bool {
    !matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Unclosed or empty `{{ }}` anywhere in the file.
fn template_problems(text: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find("{{")
            && let Err(e) = template::check_syntax(&line[col..])
        {
            let column = line[..col].chars().count() + 1;
            out.push(Problem::new(Span::new(i + 1, column), e));
        }
    }
    out
}

/// Reads and compiles a JSON Schema file.
pub fn load_schema(path: &Path) -> Result<jsonschema::Validator, SchemaError> {
    let text = std::fs::read_to_string(path).map_err(|e| SchemaError::Read {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    let schema: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| SchemaError::NotJson(e.to_string()))?;
    jsonschema::validator_for(&schema).map_err(|e| SchemaError::Invalid(e.to_string()))
}
