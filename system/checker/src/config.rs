//! The checker's settings: one YAML file, then `CHECKER_*` environment variables.
//!
//! Environment naming: `CHECKER_` + the field path in upper case, with `__`
//! between levels and list indexes as numbers: `CHECKER_INTERVAL=5s`,
//! `CHECKER_DATABASE_URL=postgres://…`, `CHECKER_TARGETS__0__URL=http://…`.
//! Values are read as YAML, so a whole list works too:
//! `CHECKER_TARGETS='[{name: a, kind: http, url: "http://a/"}]'`.
//! Written here rather than with a layering crate because none of them indexes
//! into lists, and target lists are what CI most often overrides.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use metr_domain::TargetKind;
use metr_storage::DatabaseUrl;
use serde::Deserialize;
use serde_yaml::Value;

use crate::shard::Shard;

/// Environment variable prefix of every override.
pub const ENV_PREFIX: &str = "CHECKER_";
/// `CHECKER_*` variables the command line reads (`--config`, `--shard`): not overrides.
pub const ENV_OF_FLAGS: [&str; 2] = ["CHECKER_CONFIG", "CHECKER_SHARD"];

/// Everything the checker needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    /// Where the checker's own `/health` and `/metrics` listen.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Default interval between two checks of a target.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Default per-request timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Checks running at once, across all targets.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Largest response body read from a target; bigger is a failed check.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Samples one scrape may hold; more rejects the scrape, as Prometheus's `sample_limit`.
    #[serde(default = "default_sample_limit")]
    pub sample_limit: usize,
    /// How long samples are kept: older days are dropped whole, and explicit
    /// sample timestamps older than this are rejected.
    #[serde(default = "default_retention", with = "humantime_serde")]
    pub retention: Duration,
    #[serde(default)]
    pub writer: WriterSettings,
    #[serde(default)]
    pub storage: StorageSettings,
    /// Memory the checker may use, in bytes; default: its cgroup's limit. The
    /// lower of the two counts. A configuration whose bound (README: the
    /// checker's memory) exceeds it is refused at start.
    #[serde(default)]
    pub memory_limit_bytes: Option<u64>,
    pub targets: Vec<TargetSettings>,
    /// This replica's share of the targets; set from `--shard`, not the file.
    #[serde(skip)]
    pub shard: Shard,
}

/// How checks and samples reach the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterSettings {
    /// Outcomes waiting between the schedulers and the writer.
    pub queue_capacity: usize,
    /// Samples per database batch.
    pub batch_samples: usize,
    /// Longest time a sample waits before its batch is written.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Samples kept while the database is unreachable; beyond, the oldest are dropped.
    pub buffer_samples: usize,
    /// First retry delay after a failed write; doubles up to `max_backoff`.
    #[serde(with = "humantime_serde")]
    pub min_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Time allowed on SIGTERM to flush what is buffered.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Longest one batch write may take; then it counts as failed and the
    /// batch stays buffered (a paused database otherwise hangs writes silently).
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
}

impl Default for WriterSettings {
    fn default() -> Self {
        WriterSettings {
            queue_capacity: 1024,
            batch_samples: 10_000,
            flush_interval: Duration::from_millis(500),
            buffer_samples: 1_000_000,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// How samples are kept: recent ones as written, older ones compressed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Samples younger than this stay as written (the head); the windows
    /// before it are rewritten into compressed chunks.
    #[serde(with = "humantime_serde")]
    pub head_window: Duration,
    /// Time one compressed chunk covers (chunks never cross midnight UTC).
    #[serde(with = "humantime_serde")]
    pub chunk_span: Duration,
    /// Whether this checker compacts; sharded checkers may all do it, an
    /// advisory lock per target keeps them from racing.
    pub compact: bool,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            head_window: Duration::from_secs(3600),
            chunk_span: Duration::from_secs(600),
            compact: true,
        }
    }
}

/// One target as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSettings {
    pub name: String,
    pub kind: TargetKind,
    pub url: String,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Labels added to every sample of this target (the exposition's own win).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `http` only: statuses that count as up (default: any 2xx or 3xx).
    #[serde(default)]
    pub expected_status: Vec<u16>,
    /// This target's own sample limit, instead of the checker's `sample_limit`.
    #[serde(default)]
    pub sample_limit: Option<usize>,
}

impl Settings {
    /// The memory limit in force: the lower of `memory_limit_bytes` and the cgroup's.
    pub fn memory_limit(&self) -> Option<u64> {
        match (self.memory_limit_bytes, crate::memory::cgroup_limit()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl TargetSettings {
    pub fn interval(&self, settings: &Settings) -> Duration {
        self.interval.unwrap_or(settings.interval)
    }
    pub fn timeout(&self, settings: &Settings) -> Duration {
        self.timeout.unwrap_or(settings.timeout)
    }
    pub fn sample_limit(&self, settings: &Settings) -> usize {
        self.sample_limit.unwrap_or(settings.sample_limit)
    }
}

fn default_listen() -> SocketAddr {
    ([0, 0, 0, 0], 9090).into()
}
fn default_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrency() -> usize {
    16
}
fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_sample_limit() -> usize {
    200_000
}
fn default_retention() -> Duration {
    Duration::from_secs(15 * 24 * 3600)
}

/// A configuration problem, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: invalid YAML: {source}")]
    Yaml {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("{variable}: cannot apply override: {reason}")]
    Env { variable: String, reason: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl Settings {
    /// Loads the file (if any), applies `CHECKER_*` overrides, then validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut tree = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                serde_yaml::from_str(&text).map_err(|source| ConfigError::Yaml {
                    path: path.display().to_string(),
                    source,
                })?
            }
            None => Value::Mapping(Default::default()),
        };
        if tree.is_null() {
            tree = Value::Mapping(Default::default());
        }
        let mut overrides: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !ENV_OF_FLAGS.contains(&k.as_str()))
            .collect();
        // Whole values first (CHECKER_TARGETS), then fields inside them (CHECKER_TARGETS__0__URL).
        overrides.sort_by_key(|(k, _)| k.matches("__").count());
        for (variable, value) in overrides {
            apply_override(&mut tree, &variable, &value)?;
        }
        let settings: Settings =
            serde_path_to_error::deserialize(tree).map_err(|e| ConfigError::Invalid {
                field: e.path().to_string(),
                reason: e.inner().to_string(),
            })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.interval.is_zero() {
            return invalid("interval".into(), "must be greater than zero".into());
        }
        if self.timeout.is_zero() {
            return invalid("timeout".into(), "must be greater than zero".into());
        }
        if self.concurrency == 0 {
            return invalid("concurrency".into(), "must be at least 1".into());
        }
        if self.writer.batch_samples == 0 || self.writer.queue_capacity == 0 {
            return invalid(
                "writer".into(),
                "batch_samples and queue_capacity must be at least 1".into(),
            );
        }
        if self.writer.write_timeout.is_zero() {
            return invalid(
                "writer.write_timeout".into(),
                "must be greater than zero".into(),
            );
        }
        if self.sample_limit == 0 {
            return invalid("sample_limit".into(), "must be at least 1".into());
        }
        if self.retention < Duration::from_secs(3600) {
            return invalid(
                "retention".into(),
                "must be at least 1h (samples are kept in day partitions)".into(),
            );
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400))
            .contains(&self.storage.chunk_span)
        {
            return invalid(
                "storage.chunk_span".into(),
                "must be from 1s to 24h (a chunk never crosses midnight)".into(),
            );
        }
        if self.targets.is_empty() {
            return invalid("targets".into(), "at least one target is required".into());
        }
        let mut names = HashSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let field = |name: &str| format!("targets[{i}].{name}");
            if t.name.trim().is_empty() {
                return invalid(field("name"), "must not be empty".into());
            }
            let has_nul = |s: &str| s.contains('\0');
            if has_nul(&t.name)
                || has_nul(&t.url)
                || t.labels.iter().any(|(k, v)| has_nul(k) || has_nul(v))
            {
                return invalid(
                    field("name"),
                    "names, URLs and labels must not hold NUL bytes".into(),
                );
            }
            if !names.insert(t.name.as_str()) {
                return invalid(field("name"), format!("duplicate target name {:?}", t.name));
            }
            match url::Url::parse(&t.url) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                Ok(u) => {
                    return invalid(
                        field("url"),
                        format!("scheme must be http or https, got {:?}", u.scheme()),
                    );
                }
                Err(e) => return invalid(field("url"), format!("not a URL ({e}): {:?}", t.url)),
            }
            if t.interval.is_some_and(|d| d.is_zero()) {
                return invalid(field("interval"), "must be greater than zero".into());
            }
            if t.timeout.is_some_and(|d| d.is_zero()) {
                return invalid(field("timeout"), "must be greater than zero".into());
            }
            if t.timeout(self) > t.interval(self) {
                return invalid(
                    field("timeout"),
                    format!(
                        "{} is longer than the interval {}: checks of one target would overlap",
                        humantime::format_duration(t.timeout(self)),
                        humantime::format_duration(t.interval(self))
                    ),
                );
            }
            if let Some(bad) = t.expected_status.iter().find(|s| !(100..=599).contains(*s)) {
                return invalid(
                    field("expected_status"),
                    format!("{bad} is not an HTTP status"),
                );
            }
            if let Some(key) = t.labels.keys().find(|k| !is_label_name(k)) {
                return invalid(
                    field("labels"),
                    format!("{key:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                );
            }
            if t.sample_limit == Some(0) {
                return invalid(field("sample_limit"), "must be at least 1".into());
            }
            if t.sample_limit(self) > self.writer.buffer_samples {
                return invalid(
                    field("sample_limit"),
                    format!(
                        "{} samples would not fit in writer.buffer_samples ({}): every full scrape would be dropped; raise writer.buffer_samples or lower sample_limit",
                        t.sample_limit(self),
                        self.writer.buffer_samples
                    ),
                );
            }
            if t.kind == TargetKind::Prometheus && !t.expected_status.is_empty() {
                return invalid(
                    field("expected_status"),
                    "only http targets take expected_status".into(),
                );
            }
        }
        Ok(())
    }
}

/// A Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Sets one `CHECKER_A__B__0__C` variable in the YAML tree.
fn apply_override(tree: &mut Value, variable: &str, raw: &str) -> Result<(), ConfigError> {
    let env_error = |reason: String| ConfigError::Env {
        variable: variable.to_owned(),
        reason,
    };
    let path: Vec<String> = variable[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(env_error("empty path segment".into()));
    }
    let value: Value = serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    let mut node = tree;
    for (depth, segment) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        node = match node {
            Value::Sequence(items) => {
                let index: usize = segment
                    .parse()
                    .map_err(|_| env_error(format!("{segment:?} is not a list index")))?;
                if index > items.len() {
                    return Err(env_error(format!(
                        "index {index} skips past the end of a list of {}",
                        items.len()
                    )));
                }
                if index == items.len() {
                    items.push(Value::Mapping(Default::default()));
                }
                &mut items[index]
            }
            Value::Mapping(map) => {
                let key = Value::String(segment.clone());
                if !map.contains_key(&key) {
                    let next_is_index = path
                        .get(depth + 1)
                        .is_some_and(|s| s.parse::<usize>().is_ok());
                    let empty = if next_is_index {
                        Value::Sequence(vec![])
                    } else {
                        Value::Mapping(Default::default())
                    };
                    map.insert(key.clone(), empty);
                }
                map.get_mut(&key).expect("just inserted")
            }
            _ => {
                return Err(env_error(format!(
                    "{segment:?} is inside a value that is not a map or list"
                )));
            }
        };
        if last {
            *node = value;
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checker.yaml");
        std::fs::write(&path, yaml).unwrap();
        Settings::load(
            Some(&path),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    const BASE: &str = "
database_url: postgres://u:p@db/metr
interval: 1s
timeout: 500ms
targets:
  - { name: gometr, kind: prometheus, url: 'http://gometr:8080' }
  - { name: gometr-http, kind: http, url: 'http://gometr:8080/health', interval: 2s }
";

    #[test]
    fn a_file_loads_with_defaults_filled_in() {
        let s = load(BASE, &[]).unwrap();
        assert_eq!(s.targets.len(), 2);
        assert_eq!(s.targets[1].interval(&s), Duration::from_secs(2));
        assert_eq!(s.targets[0].interval(&s), Duration::from_secs(1));
        assert_eq!(s.concurrency, 16);
        assert_eq!(s.max_body_bytes, 10 * 1024 * 1024);
    }

    #[test]
    fn storage_compacts_after_an_hour_unless_told_otherwise() {
        let s = load(BASE, &[]).unwrap();
        assert_eq!(
            (
                s.storage.head_window,
                s.storage.chunk_span,
                s.storage.compact
            ),
            (Duration::from_secs(3600), Duration::from_secs(600), true)
        );
        let s = load(
            BASE,
            &[
                ("CHECKER_STORAGE__HEAD_WINDOW", "2m"),
                ("CHECKER_STORAGE__CHUNK_SPAN", "1m"),
            ],
        )
        .unwrap();
        assert_eq!(
            (s.storage.head_window, s.storage.chunk_span),
            (Duration::from_secs(120), Duration::from_secs(60))
        );
        let err = load(BASE, &[("CHECKER_STORAGE__CHUNK_SPAN", "2d")]).unwrap_err();
        assert!(err.to_string().contains("storage.chunk_span"), "{err}");
    }

    #[test]
    fn environment_variables_override_nested_fields_and_list_items() {
        let s = load(
            BASE,
            &[
                ("CHECKER_CONCURRENCY", "3"),
                ("CHECKER_WRITER__BUFFER_SAMPLES", "500000"),
                ("CHECKER_TARGETS__1__URL", "http://other:9/health"),
                ("CHECKER_DATABASE_URL", "postgres://x@y/z"),
                ("UNRELATED", "1"),
            ],
        )
        .unwrap();
        assert_eq!(s.concurrency, 3);
        assert_eq!(s.writer.buffer_samples, 500_000);
        assert_eq!(s.targets[1].url, "http://other:9/health");
        assert_eq!(s.database_url.expose(), "postgres://x@y/z");
    }

    #[test]
    fn a_whole_target_list_can_come_from_the_environment() {
        let s = Settings::load(
            None,
            [
                (
                    "CHECKER_DATABASE_URL".to_owned(),
                    "postgres://x@y/z".to_owned(),
                ),
                (
                    "CHECKER_TARGETS".to_owned(),
                    "[{name: a, kind: http, url: 'http://a/'}]".to_owned(),
                ),
                ("CHECKER_TARGETS__0__TIMEOUT".to_owned(), "1s".to_owned()),
            ],
        )
        .unwrap();
        assert_eq!(s.targets[0].name, "a");
        assert_eq!(s.targets[0].timeout, Some(Duration::from_secs(1)));
    }

    #[test]
    fn the_variables_of_command_line_flags_are_not_overrides() {
        let s = load(
            BASE,
            &[
                ("CHECKER_CONFIG", "/etc/checker/checker.yaml"),
                ("CHECKER_SHARD", "1/2"),
            ],
        )
        .unwrap();
        assert_eq!(s.shard, Shard::ALL);
    }

    #[test]
    fn errors_name_the_field() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("database_url: x\ntargets: []", &[], "targets"),
            (
                BASE,
                &[("CHECKER_TARGETS__1__NAME", "gometr")],
                "targets[1].name",
            ),
            (
                BASE,
                &[("CHECKER_TARGETS__0__KIND", "ftp")],
                "targets[0].kind",
            ),
            (
                BASE,
                &[("CHECKER_TARGETS__0__URL", "not a url")],
                "targets[0].url",
            ),
            (
                BASE,
                &[("CHECKER_TARGETS__0__INTERVAL", "soon")],
                "targets[0].interval",
            ),
            (
                BASE,
                &[("CHECKER_TARGETS__0__TIMEOUT", "5s")],
                "targets[0].timeout",
            ),
            (BASE, &[("CHECKER_CONCURRENCY", "0")], "concurrency"),
            (
                BASE,
                &[("CHECKER_TARGETS__0__LABELS", "{my-label: x}")],
                "targets[0].labels",
            ),
            (
                BASE,
                &[("CHECKER_WRITER__BUFFER_SAMPLES", "1000")],
                "writer.buffer_samples",
            ),
            (
                BASE,
                &[("CHECKER_TARGETS__1__SAMPLE_LIMIT", "0")],
                "targets[1].sample_limit",
            ),
            (BASE, &[("CHECKER_TYPO", "1")], "typo"),
            ("interval: 1s\ntargets: []", &[], "database_url"),
        ];
        for (yaml, env, field) in cases {
            let err = load(yaml, env).expect_err(field).to_string();
            assert!(err.contains(field), "expected {field:?} in {err:?}");
        }
    }
}
