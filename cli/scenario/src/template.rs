//! `{{ name }}` templates in scenario strings.
//!
//! Names: captures, `--var` values, `run.id`, `services.<name>.url`, and
//! `env.NAME` (read from metrtest's environment). A string that is exactly one
//! template keeps the value's JSON type (a captured number stays a number).

use std::collections::BTreeMap;

use serde_json::Value;

/// Why a template cannot be read or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed template in {0:?}")]
    Unclosed(String),
    #[error("empty template in {0:?}")]
    Empty(String),
    #[error("environment variable {0} is not set")]
    UnsetEnv(String),
    #[error("unknown template variable {name:?} (known: {known})")]
    Unknown { name: String, known: String },
}

/// The runner keeps a failure's reason as text.
impl From<TemplateError> for String {
    fn from(e: TemplateError) -> String {
        e.to_string()
    }
}

/// Values templates can refer to.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, Value>,
}

impl Vars {
    pub fn set(&mut self, name: impl Into<String>, value: Value) {
        self.values.insert(name.into(), value);
    }

    pub fn get(&self, name: &str) -> Result<Value, TemplateError> {
        if let Some(var) = name.strip_prefix("env.") {
            return std::env::var(var)
                .map(Value::String)
                .map_err(|_| TemplateError::UnsetEnv(var.to_owned()));
        }
        self.values.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.values.keys().map(String::as_str).collect();
            TemplateError::Unknown {
                name: name.to_owned(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            }
        })
    }
}

/// Whether a string holds a template.
pub fn has_template(text: &str) -> bool {
    text.contains("{{")
}

/// Splits `text` into literal and `{{ name }}` parts.
fn parts(text: &str) -> Result<Vec<(bool, &str)>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push((false, &rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(text.to_owned()))?;
        let name = after[..end].trim();
        if name.is_empty() {
            return Err(TemplateError::Empty(text.to_owned()));
        }
        out.push((true, name));
        rest = &after[end + 2..];
    }
    out.push((false, rest));
    Ok(out
        .into_iter()
        .filter(|(is_name, s)| *is_name || !s.is_empty())
        .collect())
}

/// Checks template syntax without rendering (for `metrtest validate`).
pub fn check_syntax(text: &str) -> Result<(), TemplateError> {
    parts(text).map(|_| ())
}

/// Renders every template of `text` as text.
pub fn render_str(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    if !has_template(text) {
        return Ok(text.to_owned());
    }
    let mut out = String::new();
    for (is_name, part) in parts(text)? {
        if is_name {
            match vars.get(part)? {
                Value::String(s) => out.push_str(&s),
                other => out.push_str(&other.to_string()),
            }
        } else {
            out.push_str(part);
        }
    }
    Ok(out)
}

/// Renders templates in every string of a JSON value.
pub fn render_value(value: &Value, vars: &Vars) -> Result<Value, TemplateError> {
    Ok(match value {
        Value::String(s) if has_template(s) => {
            let parts = parts(s)?;
            match parts.as_slice() {
                [(true, name)] => vars.get(name)?,
                _ => Value::String(render_str(s, vars)?),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((render_str(k, vars)?, render_value(v, vars)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.set("n", json!(3));
        v.set("services.api.url", json!("http://127.0.0.1:1234"));
        v
    }

    #[test]
    fn strings_interpolate_and_whole_templates_keep_their_type() {
        let v = vars();
        assert_eq!(
            render_str("{{ services.api.url }}/x?n={{n}}", &v).unwrap(),
            "http://127.0.0.1:1234/x?n=3"
        );
        assert_eq!(render_value(&json!("{{ n }}"), &v).unwrap(), json!(3));
        assert_eq!(
            render_value(&json!({"a": ["n={{ n }}"]}), &v).unwrap(),
            json!({"a": ["n=3"]})
        );
    }

    #[test]
    fn unknown_names_and_bad_syntax_are_errors_that_say_why() {
        let v = vars();
        let err = render_str("{{ nope }}", &v).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("known: n"), "{err}");
        assert!(
            render_str("{{ open", &v)
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        assert!(check_syntax("{{ }}").is_err());
    }

    #[test]
    fn env_names_read_the_environment() {
        let v = Vars::default();
        assert!(render_str("{{ env.PATH }}", &v).unwrap().contains('/'));
        assert!(render_str("{{ env.METRTEST_SURELY_UNSET_VAR }}", &v).is_err());
    }
}
