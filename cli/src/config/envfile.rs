//! The environment file (`metrtest.yaml` or `--env FILE`): what a run's
//! stacks override of the default one. Configuration, not Docker: the stack
//! layer reads it to build a [`crate::stack::spec::StackSpec`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::stack::images::ImageChoice;

/// The environment file: every key optional, unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    #[serde(default)]
    pub images: ImageChoice,
    /// Extra environment variables per service name (postgres, gometr, checker, api).
    #[serde(default)]
    pub env: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub gometr: GometrOptions,
    #[serde(default)]
    pub checker: CheckerOptions,
    #[serde(default)]
    pub postgres: PostgresOptions,
    /// How long each service may take to become ready.
    #[serde(default, with = "humantime_serde_opt")]
    pub readiness_timeout: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GometrOptions {
    #[serde(default = "one")]
    pub replicas: u32,
}

impl Default for GometrOptions {
    fn default() -> Self {
        GometrOptions { replicas: 1 }
    }
}

fn one() -> u32 {
    1
}

/// Where PostgreSQL keeps its data during a run (`postgres: { data: ... }`).
/// When the environment file says nothing, `metrtest run` chooses for each
/// stack (`runner::needs::Needs`) and everything else takes a volume.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataStore {
    /// A volume of the run: survives `docker: { restart: postgres }`.
    #[default]
    Volume,
    /// Memory only: lost when the container stops.
    Tmpfs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresOptions {
    #[serde(default)]
    pub data: Option<DataStore>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerOptions {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    /// Replaces the default targets; the checker validates each entry.
    pub targets: Option<Vec<serde_json::Value>>,
}

mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            humantime::parse_duration(&t)
                .map_err(|e| serde::de::Error::custom(format!("{t:?}: {e}")))
        })
        .transpose()
    }
}

/// A problem in the environment file, with its position.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct EnvFileError {
    pub location: String,
    pub message: String,
}

impl EnvFile {
    pub fn load(path: &Path) -> Result<EnvFile, EnvFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| EnvFileError {
            location: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, name: &str) -> Result<EnvFile, EnvFileError> {
        if text.trim().is_empty() {
            return Ok(EnvFile::default());
        }
        let de = serde_yaml::Deserializer::from_str(text);
        let file: EnvFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let location = match e.inner().location() {
                Some(l) => format!("{name}:{}:{}", l.line(), l.column()),
                None => name.to_owned(),
            };
            let path = e.path().to_string();
            let message = if path == "." {
                e.inner().to_string()
            } else {
                format!("{path}: {}", e.inner())
            };
            EnvFileError { location, message }
        })?;
        file.validate(name)?;
        Ok(file)
    }

    /// An environment from YAML already read (layered files, see
    /// [`crate::config::layers`]); `name` says where it came from.
    pub fn from_value(value: serde_yaml::Value, name: &str) -> Result<EnvFile, EnvFileError> {
        let file: EnvFile = serde_path_to_error::deserialize(value).map_err(|e| EnvFileError {
            location: name.to_owned(),
            message: format!("{}: {}", e.path(), e.inner()),
        })?;
        file.validate(name)?;
        Ok(file)
    }

    fn validate(&self, name: &str) -> Result<(), EnvFileError> {
        let bad = |message: String| {
            Err(EnvFileError {
                location: name.to_owned(),
                message,
            })
        };
        if self.gometr.replicas == 0 || self.gometr.replicas > 20 {
            return bad(format!(
                "gometr.replicas: must be from 1 to 20, got {}",
                self.gometr.replicas
            ));
        }
        for (key, value) in [
            ("checker.interval", &self.checker.interval),
            ("checker.timeout", &self.checker.timeout),
        ] {
            if let Some(v) = value
                && humantime::parse_duration(v).is_err()
            {
                return bad(format!(
                    "{key}: {v:?} is not a duration such as 1s or 500ms"
                ));
            }
        }
        for service in self.env.keys() {
            let known = ["postgres", "gometr", "migrate", "checker", "api"];
            if !known.contains(&service.as_str()) && !service.starts_with("gometr-") {
                return bad(format!(
                    "env.{service}: unknown service (expected one of {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_errors_name_the_key_and_position() {
        let cases = [
            ("imagez: {}\n", "imagez", "metrtest.yaml:1:1"),
            ("gometr:\n  replica: 2\n", "replica", "metrtest.yaml:2:3"),
            (
                "gometr: { replicas: 0 }\n",
                "gometr.replicas",
                "metrtest.yaml",
            ),
            (
                "checker: { interval: soon }\n",
                "checker.interval",
                "metrtest.yaml",
            ),
            ("env: { gomtr: { A: b } }\n", "env.gomtr", "metrtest.yaml"),
            (
                "readiness_timeout: forever\n",
                "readiness_timeout",
                "metrtest.yaml",
            ),
        ];
        for (text, key, location) in cases {
            let err = EnvFile::parse(text, "metrtest.yaml")
                .expect_err(text)
                .to_string();
            assert!(
                err.contains(key) && err.starts_with(location),
                "{text:?} gave {err:?}"
            );
        }
    }
}
