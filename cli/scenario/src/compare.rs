//! How an actual value is compared with an expected one: loose equality
//! (1, 1.0 and "1" are equal), numbers, lengths, containment, and the text
//! failures show.

use serde_json::Value;

use crate::matcher::{JsonType, Measure, Order};

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
    JsonType::of(value).name()
}

/// Why a check could not hold whatever the operand: the actual value cannot
/// be measured the way the check asks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmeasurable {
    #[error("a {0} has no length")]
    NoLength(&'static str),
    #[error("a {0} is not a number")]
    NotANumber(&'static str),
    #[error("{0} is not a number")]
    OperandNotANumber(String),
    #[error("contains needs a string, array or object, not a {0}")]
    NotAContainer(&'static str),
    #[error("invalid regex: {0}")]
    Regex(String),
}

fn length(value: &Value) -> Result<f64, Unmeasurable> {
    match value {
        Value::String(s) => Ok(s.chars().count() as f64),
        Value::Array(a) => Ok(a.len() as f64),
        Value::Object(o) => Ok(o.len() as f64),
        other => Err(Unmeasurable::NoLength(type_name(other))),
    }
}

pub(crate) fn compare(
    measure: Measure,
    order: Order,
    actual: &Value,
    expected: &Value,
) -> Result<bool, Unmeasurable> {
    let a = match measure {
        Measure::Value => {
            number(actual).ok_or_else(|| Unmeasurable::NotANumber(type_name(actual)))?
        }
        Measure::Length => length(actual)?,
    };
    let e = number(expected).ok_or_else(|| Unmeasurable::OperandNotANumber(short(expected)))?;
    Ok(match order {
        Order::Gt => a > e,
        Order::Gte => a >= e,
        Order::Lt => a < e,
        Order::Lte => a <= e,
        Order::Eq => a == e,
    })
}

pub(crate) fn contains(actual: &Value, expected: &Value) -> Result<bool, Unmeasurable> {
    match actual {
        Value::String(s) => Ok(s.contains(&scalar_text(expected))),
        Value::Array(items) => Ok(items.iter().any(|i| loosely_equal(i, expected))),
        Value::Object(map) => Ok(expected.as_str().is_some_and(|k| map.contains_key(k))),
        other => Err(Unmeasurable::NotAContainer(type_name(other))),
    }
}

/// Text of a scalar for substring and regex checks (strings without quotes).
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
