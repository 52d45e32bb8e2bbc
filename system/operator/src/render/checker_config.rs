//! The checker's configuration file, and the memory its container needs to
//! run it: derived from the bound the checker computes from that very file.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{CHECKER_PORT, Ctx};
use crate::crd::TargetKind;
use crate::memory::{CheckerMemory, bytes_of, quantity};
use crate::validate::SpecError;

/// The checker's configuration file, as the checker's `Settings` reads it.
pub(super) fn file(ctx: &Ctx) -> String {
    #[derive(Serialize)]
    struct File<'a> {
        listen: String,
        interval: &'a str,
        retention: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        sample_limit: Option<i64>,
        targets: Vec<Target<'a>>,
    }
    /// A target in the checker's spelling (snake case).
    #[derive(Serialize)]
    struct Target<'a> {
        name: &'a str,
        kind: TargetKind,
        url: &'a str,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: &'a BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sample_limit: Option<i64>,
    }
    let file = File {
        listen: format!("0.0.0.0:{CHECKER_PORT}"),
        interval: ctx.spec.checker.interval.trim(),
        retention: ctx.spec.retention.trim(),
        sample_limit: ctx.spec.checker.sample_limit,
        targets: ctx
            .spec
            .targets
            .iter()
            .map(|t| Target {
                name: &t.name,
                kind: t.kind,
                url: &t.url,
                labels: &t.labels,
                sample_limit: t.sample_limit,
            })
            .collect(),
    };
    // Strings, numbers, a socket address and the targets always serialize to YAML.
    serde_yaml::to_string(&file).unwrap_or_default()
}

/// The checker's memory request and limit for the configuration it will load
/// (`config`): derived from its bound, or the user's `checker.memoryLimit`,
/// which is refused when below the bound, since the checker would exit 2.
pub(super) fn memory(ctx: &Ctx, config: &str) -> Result<CheckerMemory, SpecError> {
    let settings = settings(config)?;
    // Validated: at least 1.
    let replicas = u32::try_from(ctx.spec.checker.replicas).unwrap_or(1);
    let derived = CheckerMemory::of(&settings, replicas);
    let Some(text) = &ctx.spec.checker.memory_limit else {
        return Ok(derived);
    };
    // Validated: a positive quantity.
    let limit = bytes_of(text).unwrap_or_default();
    if limit < derived.bound() {
        return Err(SpecError::new(
            "checker.memoryLimit",
            format!(
                "{} is below the checker's memory bound for this configuration (its \
                 busiest shard): {}; the checker would refuse to start. Raise it, lower \
                 checker.sampleLimit, or remove it for the derived {}",
                text.trim(),
                derived.budget.describe(),
                quantity(derived.limit)
            ),
        ));
    }
    Ok(derived.with_limit(limit))
}

/// `config` read as the checker reads it. The bound does not depend on the
/// database, which the pod names through its environment: a placeholder
/// stands in for it.
fn settings(config: &str) -> Result<checker::Settings, SpecError> {
    let refused = |e: serde_yaml::Error| {
        SpecError::new(
            "checker",
            format!("the rendered checker configuration does not load: {e}"),
        )
    };
    let mut tree: serde_yaml::Mapping = serde_yaml::from_str(config).map_err(refused)?;
    tree.insert(
        "database_url".into(),
        "postgres://placeholder@localhost/metr".into(),
    );
    serde_yaml::from_value(serde_yaml::Value::Mapping(tree)).map_err(refused)
}
