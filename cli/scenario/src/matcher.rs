//! Matchers: a plain value means equals; a map holds one or more named checks,
//! all of which must hold.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

use crate::template::{self, Vars};

/// The matcher keywords, in the order the documentation lists them.
pub const KEYWORDS: &[&str] = &[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "matches",
    "gt",
    "gte",
    "lt",
    "lte",
    "length",
    "length_gte",
    "length_lte",
    "exists",
    "type",
    "one_of",
];

const TYPES: &[&str] = &["string", "number", "bool", "null", "array", "object"];

/// One named check with its expected value (templates not yet rendered).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub op: String,
    pub expected: Value,
}

/// All the checks on one value.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub checks: Vec<Check>,
}

/// A check that did not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub op: String,
    pub expected: Value,
    pub actual: Option<Value>,
    pub note: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actual = match &self.actual {
            None => "nothing (the path selected no value)".to_owned(),
            Some(v) => short(v),
        };
        write!(
            f,
            "expected {} {}, actual {actual}",
            self.op,
            short(&self.expected)
        )?;
        if let Some(note) = &self.note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

/// A value shown in a failure message, cut to a readable length.
pub fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 300 {
        format!(
            "{}… ({} chars)",
            text.chars().take(300).collect::<String>(),
            text.len()
        )
    } else {
        text
    }
}

impl Matcher {
    pub fn equals(value: Value) -> Matcher {
        Matcher {
            checks: vec![Check {
                op: "equals".into(),
                expected: value,
            }],
        }
    }

    /// Builds a matcher from its YAML form, validating keywords and operand types.
    pub fn from_value(value: Value) -> Result<Matcher, String> {
        let Value::Object(map) = value else {
            return Ok(Matcher::equals(value));
        };
        if map.is_empty() {
            return Err(format!(
                "empty matcher: expected a value or one of {}",
                KEYWORDS.join(", ")
            ));
        }
        let mut checks = Vec::new();
        for (op, expected) in map {
            if !KEYWORDS.contains(&op.as_str()) {
                return Err(format!(
                    "unknown matcher {op:?}: expected one of {}",
                    KEYWORDS.join(", ")
                ));
            }
            validate_operand(&op, &expected)?;
            checks.push(Check { op, expected });
        }
        Ok(Matcher { checks })
    }

    /// Renders templates in the expected values, then checks `actual` (`None`
    /// when a JSONPath selected nothing). Returns every check that failed.
    pub fn evaluate(&self, actual: Option<&Value>, vars: &Vars) -> Result<Vec<Mismatch>, String> {
        let mut failed = Vec::new();
        for check in &self.checks {
            let expected = template::render_value(&check.expected, vars)?;
            let outcome = apply(&check.op, &expected, actual);
            let (ok, note) = match outcome {
                Ok(ok) => (ok, None),
                Err(note) => (false, Some(note)),
            };
            if !ok {
                failed.push(Mismatch {
                    op: check.op.clone(),
                    expected,
                    actual: actual.cloned(),
                    note,
                });
            }
        }
        Ok(failed)
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Matcher::from_value(value).map_err(de::Error::custom)
    }
}

fn validate_operand(op: &str, expected: &Value) -> Result<(), String> {
    let templated = expected.as_str().is_some_and(template::has_template);
    match op {
        "exists" if !expected.is_boolean() => Err("exists takes true or false".into()),
        "type" => match expected.as_str() {
            Some(t) if TYPES.contains(&t) => Ok(()),
            _ => Err(format!("type takes one of {}", TYPES.join(", "))),
        },
        "one_of" if !expected.is_array() => Err("one_of takes a list of values".into()),
        "matches" => match expected.as_str() {
            Some(re) if templated => {
                let _ = re;
                Ok(())
            }
            Some(re) => regex::Regex::new(re)
                .map(|_| ())
                .map_err(|e| format!("matches: invalid regex: {e}")),
            None => Err("matches takes a regular expression string".into()),
        },
        "gt" | "gte" | "lt" | "lte" | "length" | "length_gte" | "length_lte"
            if !(expected.is_number()
                || templated
                || expected.as_str().is_some_and(|s| s.parse::<f64>().is_ok())) =>
        {
            Err(format!("{op} takes a number"))
        }
        _ => Ok(()),
    }
}

/// A number from a JSON number or a numeric string (captures are often strings).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "+Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            s => s.trim().parse().ok(),
        },
        _ => None,
    }
}

/// Equality that treats 1 and 1.0 (and "1" against a number) as equal.
pub fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::String(_))
        | (Value::String(_), Value::Number(_))
        | (Value::Number(_), Value::Number(_)) => match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| loosely_equal(a, b))
        }
        _ => a == b,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn length(value: &Value) -> Result<f64, String> {
    match value {
        Value::String(s) => Ok(s.chars().count() as f64),
        Value::Array(a) => Ok(a.len() as f64),
        Value::Object(o) => Ok(o.len() as f64),
        other => Err(format!("a {} has no length", type_name(other))),
    }
}

fn compare(
    op: &str,
    actual: &Value,
    expected: &Value,
    of: impl Fn(&Value) -> Result<f64, String>,
) -> Result<bool, String> {
    let a = of(actual)?;
    let e = number(expected).ok_or_else(|| format!("{} is not a number", short(expected)))?;
    Ok(match op {
        "gt" | "length_gt" => a > e,
        "gte" | "length_gte" => a >= e,
        "lt" => a < e,
        "lte" | "length_lte" => a <= e,
        _ => a == e,
    })
}

/// One check; `Err` carries a note on why it could not hold.
fn apply(op: &str, expected: &Value, actual: Option<&Value>) -> Result<bool, String> {
    if op == "exists" {
        return Ok(actual.is_some() == expected.as_bool().unwrap_or(true));
    }
    let Some(actual) = actual else {
        return Ok(false);
    };
    let as_number =
        |v: &Value| number(v).ok_or_else(|| format!("a {} is not a number", type_name(v)));
    match op {
        "equals" => Ok(loosely_equal(actual, expected)),
        "not_equals" => Ok(!loosely_equal(actual, expected)),
        "contains" | "not_contains" => {
            let found = match actual {
                Value::String(s) => s.contains(&scalar_text(expected)),
                Value::Array(items) => items.iter().any(|i| loosely_equal(i, expected)),
                Value::Object(map) => expected.as_str().is_some_and(|k| map.contains_key(k)),
                other => {
                    return Err(format!(
                        "contains needs a string, array or object, not a {}",
                        type_name(other)
                    ));
                }
            };
            Ok(found == (op == "contains"))
        }
        "matches" => {
            let re = regex::Regex::new(expected.as_str().unwrap_or_default())
                .map_err(|e| format!("invalid regex: {e}"))?;
            Ok(re.is_match(&scalar_text(actual)))
        }
        "gt" | "gte" | "lt" | "lte" => compare(op, actual, expected, as_number),
        "length" => compare("length", actual, expected, length),
        "length_gte" | "length_lte" => compare(op, actual, expected, length),
        "type" => Ok(expected.as_str() == Some(type_name(actual))),
        "one_of" => Ok(expected
            .as_array()
            .is_some_and(|opts| opts.iter().any(|o| loosely_equal(actual, o)))),
        other => Err(format!("unknown matcher {other}")),
    }
}

/// Text of a scalar for substring and regex checks (strings without quotes).
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(matcher: Value, actual: Option<Value>) -> Vec<Mismatch> {
        let m = Matcher::from_value(matcher).unwrap();
        m.evaluate(actual.as_ref(), &Vars::default()).unwrap()
    }

    fn holds(matcher: Value, actual: Value) -> bool {
        check(matcher, Some(actual)).is_empty()
    }

    #[test]
    fn a_plain_value_means_equals_with_numeric_tolerance() {
        assert!(holds(json!("up"), json!("up")));
        assert!(!holds(json!("up"), json!("down")));
        assert!(holds(json!(1), json!(1.0)));
        assert!(holds(json!(200), json!("200")));
    }

    #[test]
    fn comparisons_and_lengths() {
        assert!(holds(json!({"lt": 1000}), json!(3.5)));
        assert!(!holds(json!({"gt": 5}), json!(5)));
        assert!(holds(json!({"gte": 5, "lte": 5}), json!(5)));
        assert!(holds(json!({"length_gte": 1}), json!([1])));
        assert!(!holds(json!({"length": 2}), json!("abc")));
        assert!(
            holds(json!({"gt": "10"}), json!(11)),
            "numeric strings from captures compare as numbers"
        );
    }

    #[test]
    fn contains_is_substring_on_strings_and_membership_on_arrays() {
        assert!(holds(
            json!({"contains": "json"}),
            json!("application/json")
        ));
        assert!(holds(json!({"contains": "up"}), json!(["down", "up"])));
        assert!(!holds(json!({"contains": "u"}), json!(["down", "up"])));
        assert!(holds(json!({"not_contains": "x"}), json!("abc")));
    }

    #[test]
    fn types_regexes_and_one_of() {
        assert!(holds(json!({"type": "array"}), json!([])));
        assert!(!holds(json!({"type": "number"}), json!("1")));
        assert!(holds(json!({"matches": "^2\\d\\d$"}), json!(204)));
        assert!(holds(json!({"one_of": ["up", "down"]}), json!("down")));
    }

    #[test]
    fn nothing_selected_satisfies_only_exists_false() {
        assert!(check(json!({"exists": false}), None).is_empty());
        assert_eq!(check(json!({"exists": true}), None).len(), 1);
        assert_eq!(check(json!("x"), None).len(), 1);
        assert!(check(json!({"exists": true}), Some(json!(null))).is_empty());
    }

    #[test]
    fn every_failed_check_is_reported_with_expected_and_actual() {
        let failed = check(json!({"gt": 10, "lt": 5, "type": "number"}), Some(json!(7)));
        let ops: Vec<_> = failed.iter().map(|m| m.op.as_str()).collect();
        assert_eq!(ops, ["gt", "lt"]);
        assert_eq!(failed[0].to_string(), "expected gt 10, actual 7");
    }

    #[test]
    fn bad_matchers_are_rejected_when_parsed() {
        for (bad, word) in [
            (json!({"greater": 1}), "unknown matcher"),
            (json!({}), "empty matcher"),
            (json!({"exists": "yes"}), "exists"),
            (json!({"type": "int"}), "type"),
            (json!({"matches": "("}), "regex"),
            (json!({"gt": "many"}), "gt"),
            (json!({"one_of": 1}), "one_of"),
        ] {
            let err = Matcher::from_value(bad.clone()).expect_err(&bad.to_string());
            assert!(err.contains(word), "{bad}: {err}");
        }
    }

    #[test]
    fn templates_in_expected_values_are_rendered() {
        let mut vars = Vars::default();
        vars.set("before", json!(41));
        let m = Matcher::from_value(json!({"gt": "{{ before }}"})).unwrap();
        assert!(m.evaluate(Some(&json!(42)), &vars).unwrap().is_empty());
        assert_eq!(m.evaluate(Some(&json!(41)), &vars).unwrap().len(), 1);
    }
}
