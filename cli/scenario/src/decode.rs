//! Turns the parsed tree ([`crate::yaml`]) into the model, collecting every
//! problem at its own node instead of stopping at the first. A node that
//! cannot be read is left out of the model, and the problems found in it do
//! not cascade to its parent.
//!
//! The path shown before a message follows what serde_yaml showed: a problem
//! found while reading a node is shown under that node's path; a value read
//! whole and then refused (a duration, a JSONPath, a matcher) under the path
//! of the mapping that holds it.

use serde_json::{Map, Number, Value};

use crate::error::{LoadError, Problem};
use crate::model::{Interval, Slots};
use crate::references::Context;
use crate::span::{NodePath, Span};
use crate::suggest::{self, backticks};
use crate::yaml::{Kind, Node};

/// Reads nodes into the model and keeps every problem met.
pub(crate) struct Decoder<'c> {
    pub problems: Vec<Problem>,
    pub context: &'c Context,
}

/// A mapping's entries, its unknown keys already reported.
pub(crate) struct Fields<'n> {
    /// The mapping's path.
    pub path: NodePath,
    /// Where the mapping is named: its key in its parent, or itself.
    pub at: Span,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
    /// Whether a key was refused (a step without a known action then says
    /// nothing more: the unknown key is the mistake).
    pub unknown: bool,
}

impl<'n> Fields<'n> {
    /// The value of `key`; the first when repeated (repetition is reported apart).
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value of `key`.
    pub fn entry(&self, key: &str) -> Option<(&'n Node, &'n Node)> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, k, v)| (*k, *v))
    }

    /// Where `key` is written, or where the mapping is named.
    pub fn key_span(&self, key: &str) -> Span {
        self.entry(key).map_or(self.at, |(k, _)| k.span)
    }

    /// The value of `key` unless it is absent or null.
    pub fn given(&self, key: &str) -> Option<&'n Node> {
        self.get(key).filter(|v| !v.is_null())
    }

    /// The path of `key`'s value.
    pub fn path_of(&self, key: &str) -> NodePath {
        self.path.key(key)
    }
}

impl<'c> Decoder<'c> {
    pub fn new(context: &'c Context) -> Decoder<'c> {
        Decoder {
            problems: Vec::new(),
            context,
        }
    }

    /// Keeps a problem.
    pub fn report(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Keeps `error` at `span`, under `path`.
    pub fn error(&mut self, span: Span, path: &NodePath, error: impl Into<LoadError>) {
        self.report(Problem::new(span, error).under(path));
    }

    /// The entries of a mapping that may hold `allowed` keys; every other key
    /// is reported at itself, with the nearest allowed one as a hint.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &NodePath,
        at: Span,
        allowed: &'static [&'static str],
        expected: &'static str,
    ) -> Option<Fields<'n>> {
        let Kind::Map(entries) = &node.kind else {
            self.invalid_type(node, path, expected);
            return None;
        };
        let mut fields = Fields {
            path: path.clone(),
            at,
            entries: Vec::new(),
            unknown: false,
        };
        for (i, (key, value)) in entries.iter().enumerate() {
            let name = key.text().unwrap_or_default();
            let repeated = entries[..i].iter().any(|(k, _)| k.kind == key.kind);
            if repeated {
                // Told as a duplicate key (see `yaml::duplicates`).
                continue;
            }
            if !allowed.contains(&name) {
                let help = suggest::did_you_mean(name, allowed.iter().copied(), backticks);
                let error = LoadError::UnknownField {
                    field: name.to_owned(),
                    expected: allowed,
                };
                self.report(Problem::new(key.span, error).under(path).with_help(help));
                fields.unknown = true;
                continue;
            }
            fields.entries.push((name, key, value));
        }
        Some(fields)
    }

    /// The value of a required key, or a problem where the mapping is named.
    pub fn required<'n>(&mut self, fields: &Fields<'n>, key: &'static str) -> Option<&'n Node> {
        let value = fields.get(key);
        if value.is_none() {
            let error = LoadError::MissingField(key);
            self.report(Problem::new(fields.at, error).under(&fields.path));
        }
        value
    }

    /// "invalid type: found, expected …" at the node.
    pub fn invalid_type(&mut self, node: &Node, path: &NodePath, expected: &'static str) {
        let error = LoadError::InvalidType {
            found: unexpected(node),
            expected,
        };
        self.error(node.span, path, error);
    }

    /// A scalar's text (a number or boolean read as written).
    pub fn string(&mut self, node: &Node, path: &NodePath) -> Option<String> {
        match node.text() {
            Some(text) => Some(text.to_owned()),
            None => {
                self.invalid_type(node, path, "a string");
                None
            }
        }
    }

    /// `true` or `false`.
    pub fn bool(&mut self, node: &Node, path: &NodePath) -> Option<bool> {
        match to_json(node) {
            Value::Bool(b) => Some(b),
            _ => {
                self.invalid_type(node, path, "a boolean");
                None
            }
        }
    }

    /// A whole number from 0 up.
    pub fn u64(&mut self, node: &Node, path: &NodePath) -> Option<u64> {
        match to_json(node) {
            Value::Number(n) if n.is_u64() => n.as_u64(),
            Value::Number(n) if n.is_i64() => {
                let error = LoadError::InvalidValue {
                    found: unexpected(node),
                    expected: "u64",
                };
                self.error(node.span, path, error);
                None
            }
            _ => {
                self.invalid_type(node, path, "u64");
                None
            }
        }
    }

    /// `slots:` a whole number from 1, or `all`.
    pub fn slots(&mut self, node: &Node, path: &NodePath) -> Option<Slots> {
        if let Kind::Scalar { text, .. } = &node.kind
            && text.as_str() == "all"
        {
            return Some(Slots::All);
        }
        match self.u64(node, path)? {
            0 => {
                let error = LoadError::InvalidValue {
                    found: "0".into(),
                    expected: "a whole number from 1, or all",
                };
                self.error(node.span, path, error);
                None
            }
            n => Some(Slots::Count(n.min(u64::from(u32::MAX)) as u32)),
        }
    }

    /// A duration such as `30s` at `path`; refused under the path of the
    /// mapping that holds it, as serde_yaml showed a value read whole.
    pub fn interval(&mut self, node: &Node, path: &NodePath) -> Option<Interval> {
        let text = self.string(node, path)?;
        match humantime::parse_duration(&text) {
            Ok(d) => Some(Interval(d)),
            Err(e) => {
                let why = e.to_string();
                self.error(node.span, &path.parent(), LoadError::Duration { text, why });
                None
            }
        }
    }

    /// A list of strings.
    pub fn strings(&mut self, node: &Node, path: &NodePath) -> Option<Vec<String>> {
        let Kind::Seq(items) = &node.kind else {
            self.invalid_type(node, path, "a sequence");
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(self.string(item, &path.index(i))?);
        }
        Some(out)
    }

    /// The entries of a free-form mapping (`query`, `capture`), in order.
    pub fn entries<'n>(&mut self, node: &'n Node, path: &NodePath) -> Vec<(&'n Node, &'n Node)> {
        match &node.kind {
            Kind::Map(entries) => entries.iter().map(|(k, v)| (k, v)).collect(),
            _ if node.is_null() => Vec::new(),
            _ => {
                self.invalid_type(node, path, "a map");
                Vec::new()
            }
        }
    }
}

/// How serde names what was found instead of what was expected.
pub(crate) fn unexpected(node: &Node) -> String {
    match &node.kind {
        Kind::Seq(_) => "sequence".into(),
        Kind::Map(_) => "map".into(),
        Kind::Scalar { text, .. } => match to_json(node) {
            Value::Null => "unit value".into(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
            Value::Number(n) => format!("integer `{n}`"),
            _ => format!("string {text:?}"),
        },
    }
}

/// A node as JSON, scalars resolved as YAML 1.2's core schema reads them
/// (quoted scalars are strings).
pub(crate) fn to_json(node: &Node) -> Value {
    match &node.kind {
        Kind::Scalar { text, plain: false } => Value::String(text.clone()),
        Kind::Scalar { text, plain: true } => plain_scalar(text),
        Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Kind::Map(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                map.entry(key).or_insert_with(|| to_json(v));
            }
            Value::Object(map)
        }
    }
}

/// An unquoted scalar: null, a boolean, a number, or else a string.
fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = integer(text) {
        return n;
    }
    let unsigned = text.trim_start_matches(['+', '-']);
    let numeric = unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.');
    // `.inf` and `.nan` stay text: JSON has neither (a matcher reads "+Inf").
    let special = matches!(
        unsigned,
        ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN"
    );
    if numeric
        && !special
        && let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

/// Decimal, `0x`, `0o` and `0b` integers.
fn integer(text: &str) -> Option<Value> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = match digits.get(..2) {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        Some("0b") => (2, &digits[2..]),
        _ => (10, digits),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative {
        let n = i64::try_from(magnitude).ok()?;
        Some(Value::from(-n))
    } else {
        Some(Value::from(magnitude))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json(text: &str) -> Value {
        to_json(&crate::yaml::parse(text).unwrap())
    }

    #[test]
    fn plain_scalars_resolve_and_quoted_ones_stay_text() {
        assert_eq!(
            json("{ a: 1, b: '1', c: true, d: ~, e: 1.5, f: -3, g: 0x1f, h: x }"),
            json!({"a": 1, "b": "1", "c": true, "d": null, "e": 1.5, "f": -3, "g": 31, "h": "x"})
        );
        assert_eq!(json("[yes, 1e3, .inf]"), json!(["yes", 1000.0, ".inf"]));
    }

    #[test]
    fn what_was_found_is_named_as_serde_names_it() {
        let node = crate::yaml::parse("[sometimes, 5, -1.5, true, ~, [], {}]").unwrap();
        let Kind::Seq(items) = &node.kind else {
            panic!("a sequence")
        };
        let names: Vec<String> = items.iter().map(unexpected).collect();
        assert_eq!(
            names,
            [
                "string \"sometimes\"",
                "integer `5`",
                "floating point `-1.5`",
                "boolean `true`",
                "unit value",
                "sequence",
                "map"
            ]
        );
    }
}
