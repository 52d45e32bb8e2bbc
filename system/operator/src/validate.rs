//! Checks a `Metr` spec before anything is rendered or applied.

use std::collections::HashSet;
use std::time::Duration;

use crate::crd::{EmbeddedPostgres, MetrSpec, PostgresSpec};

/// A spec the operator refuses, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {problem}")]
pub struct SpecError {
    /// Path of the field under `spec`, e.g. `targets[1].name`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl SpecError {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        SpecError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The shortest retention the checker accepts (samples live in day partitions).
const MIN_RETENTION: Duration = Duration::from_secs(3600);

/// Returns the first problem of `spec`, if any.
pub fn validate(spec: &MetrSpec) -> Result<(), SpecError> {
    validate_targets(spec)?;
    if spec.checker.replicas < 1 {
        return Err(SpecError::new(
            "checker.replicas",
            format!("must be at least 1, got {}", spec.checker.replicas),
        ));
    }
    sample_limit("checker.sampleLimit", spec.checker.sample_limit)?;
    if let Some(limit) = &spec.checker.memory_limit
        && crate::memory::bytes_of(limit).is_none()
    {
        return Err(SpecError::new(
            "checker.memoryLimit",
            format!("{limit:?} is not a size (a number with a suffix such as Mi or Gi)"),
        ));
    }
    let interval = duration("checker.interval", &spec.checker.interval)?;
    if interval.is_zero() {
        return Err(SpecError::new(
            "checker.interval",
            "must be greater than zero",
        ));
    }
    if spec.api.replicas < 0 {
        return Err(SpecError::new(
            "api.replicas",
            format!("must not be negative, got {}", spec.api.replicas),
        ));
    }
    if duration("retention", &spec.retention)? < MIN_RETENTION {
        return Err(SpecError::new("retention", "must be at least 1h"));
    }
    validate_postgres(spec)?;
    for (field, image) in [
        ("images.checker", &spec.images.checker),
        ("images.api", &spec.images.api),
        ("images.gometr", &spec.images.gometr),
    ] {
        if image.trim().is_empty() {
            return Err(SpecError::new(field, "must not be empty"));
        }
    }
    Ok(())
}

/// Parses the interval after validation; `None` if it does not parse.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

fn duration(field: &str, text: &str) -> Result<Duration, SpecError> {
    parse_duration(text).ok_or_else(|| {
        SpecError::new(
            field,
            format!("{text:?} is not a duration (e.g. 15s, 1m, 30d)"),
        )
    })
}

fn validate_targets(spec: &MetrSpec) -> Result<(), SpecError> {
    if spec.targets.is_empty() {
        return Err(SpecError::new("targets", "at least one target is required"));
    }
    let mut names = HashSet::new();
    for (i, target) in spec.targets.iter().enumerate() {
        if target.name.trim().is_empty() {
            return Err(SpecError::new(
                format!("targets[{i}].name"),
                "must not be empty",
            ));
        }
        if !names.insert(target.name.as_str()) {
            return Err(SpecError::new(
                format!("targets[{i}].name"),
                format!("duplicate target name {:?}", target.name),
            ));
        }
        if !target.url.starts_with("http://") && !target.url.starts_with("https://") {
            return Err(SpecError::new(
                format!("targets[{i}].url"),
                format!("{:?} is not an http(s) URL", target.url),
            ));
        }
        sample_limit(&format!("targets[{i}].sampleLimit"), target.sample_limit)?;
    }
    Ok(())
}

fn sample_limit(field: &str, limit: Option<i64>) -> Result<(), SpecError> {
    match limit {
        Some(limit) if limit < 1 => Err(SpecError::new(
            field,
            format!("must be at least 1, got {limit}"),
        )),
        _ => Ok(()),
    }
}

fn validate_postgres(spec: &MetrSpec) -> Result<(), SpecError> {
    let postgres = &spec.postgres;
    match (&postgres.secret_ref, &postgres.embedded) {
        (None, None) => Err(SpecError::new(
            "postgres.secretRef",
            "is required unless postgres.embedded is set: the Secret with username, \
             password and database",
        )),
        (Some(_), Some(_)) => Err(SpecError::new(
            "postgres.embedded",
            "cannot be set together with postgres.secretRef: choose one",
        )),
        (Some(secret), None) => validate_external(postgres, &secret.name),
        (None, Some(embedded)) => validate_embedded(postgres, embedded),
    }
}

fn validate_external(postgres: &PostgresSpec, secret: &str) -> Result<(), SpecError> {
    if secret.trim().is_empty() {
        return Err(SpecError::new(
            "postgres.secretRef.name",
            "must not be empty",
        ));
    }
    if postgres
        .host
        .as_deref()
        .is_some_and(|h| h.trim().is_empty())
    {
        return Err(SpecError::new("postgres.host", "must not be empty"));
    }
    if let Some(port) = postgres.port
        && !(1..=65535).contains(&port)
    {
        return Err(SpecError::new(
            "postgres.port",
            format!("must be between 1 and 65535, got {port}"),
        ));
    }
    Ok(())
}

fn validate_embedded(
    postgres: &PostgresSpec,
    embedded: &EmbeddedPostgres,
) -> Result<(), SpecError> {
    // The embedded server's address is the operator's choice.
    for (field, set) in [
        ("postgres.host", postgres.host.is_some()),
        ("postgres.port", postgres.port.is_some()),
    ] {
        if set {
            return Err(SpecError::new(
                field,
                "cannot be set with postgres.embedded: the operator names the server",
            ));
        }
    }
    if embedded.image.trim().is_empty() {
        return Err(SpecError::new(
            "postgres.embedded.image",
            "must not be empty",
        ));
    }
    if !is_quantity(&embedded.storage) {
        return Err(SpecError::new(
            "postgres.embedded.storage",
            format!(
                "{:?} is not a size (a number with a suffix such as Mi or Gi)",
                embedded.storage
            ),
        ));
    }
    Ok(())
}

/// A positive storage quantity: digits, an optional fraction, a binary or
/// decimal suffix (the forms a volume size is written in).
fn is_quantity(text: &str) -> bool {
    const SUFFIXES: [&str; 13] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "",
    ];
    SUFFIXES.iter().any(|suffix| {
        text.strip_suffix(suffix).is_some_and(|number| {
            let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
            !whole.is_empty()
                && whole.bytes().all(|b| b.is_ascii_digit())
                && !fraction.is_empty()
                && fraction.bytes().all(|b| b.is_ascii_digit())
                && number.bytes().any(|b| (b'1'..=b'9').contains(&b))
        })
    })
}
