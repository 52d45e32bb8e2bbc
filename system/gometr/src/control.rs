//! Fault-injection settings, changed at run time by `PUT /control`.

use metr_service::health::HealthStatus;
use serde::{Deserialize, Serialize};

/// What gometr currently pretends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Control {
    /// Status `/health` reports.
    pub health: HealthStatus,
    /// Milliseconds added to every `/metrics` and `/health` response.
    pub delay_ms: u64,
    /// HTTP status `/metrics` answers with.
    pub metrics_status: u16,
    /// Number of extra synthetic series in `/metrics`, for load tests.
    pub extra_series: u32,
    /// Exposition text appended verbatim to `/metrics`: hostile or malformed
    /// samples (a timestamp PostgreSQL cannot store, a NUL byte, a duplicate).
    pub extra_text: String,
    /// `/metrics` answers with `Content-Encoding: gzip` and a small body that
    /// inflates to `gzip_bomb_bytes` (exposition comments only).
    pub gzip_bomb: bool,
    /// What the gzip bomb inflates to, in bytes.
    pub gzip_bomb_bytes: u64,
    /// When not 0, the `/metrics` body is streamed at this many bytes a second.
    pub trickle_bytes_per_second: u64,
    /// `/metrics` carries a series whose label value is raw invalid UTF-8.
    pub invalid_utf8: bool,
    /// When not 0, label values of the extra and churned series are this many
    /// bytes long (zero-padded indexes; an index with more digits stays whole).
    pub label_value_bytes: u32,
    /// Brand-new series added per scrape: label values no earlier scrape had.
    pub churn_series: u32,
    /// What the `extra_series` samples look like.
    pub series_profile: SeriesProfile,
    /// Seed of the `realistic` profile's values: the same seed, the same values
    /// at the same scrape.
    pub seed: u64,
}

/// What the `extra_series` samples look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesProfile {
    /// `gometr_synthetic_series{index="i"} i`: the same value every scrape.
    #[default]
    Constant,
    /// The mix a node_exporter exposes (see [`crate::realistic`]).
    Realistic,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            health: HealthStatus::Pass,
            delay_ms: 0,
            metrics_status: 200,
            extra_series: 0,
            extra_text: String::new(),
            gzip_bomb: false,
            gzip_bomb_bytes: DEFAULT_GZIP_BOMB_BYTES,
            trickle_bytes_per_second: 0,
            invalid_utf8: false,
            label_value_bytes: 0,
            churn_series: 0,
            series_profile: SeriesProfile::Constant,
            seed: 0,
        }
    }
}

/// A partial update: absent fields keep their value; unknown fields are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlUpdate {
    pub health: Option<HealthStatus>,
    pub delay_ms: Option<u64>,
    pub metrics_status: Option<u16>,
    pub extra_series: Option<u32>,
    pub extra_text: Option<String>,
    pub gzip_bomb: Option<bool>,
    pub gzip_bomb_bytes: Option<u64>,
    pub trickle_bytes_per_second: Option<u64>,
    pub invalid_utf8: Option<bool>,
    pub label_value_bytes: Option<u32>,
    pub churn_series: Option<u32>,
    pub series_profile: Option<SeriesProfile>,
    pub seed: Option<u64>,
}

/// Largest `extra_text`, in bytes.
pub const MAX_EXTRA_TEXT: usize = 64 * 1024;

/// Largest `extra_series`: enough for load tests, small enough not to exhaust memory.
pub const MAX_EXTRA_SERIES: u32 = 1_000_000;
/// Largest `delay_ms`: ten minutes.
pub const MAX_DELAY_MS: u64 = 600_000;

/// Default `gzip_bomb_bytes`: 100 MiB, ten times the checker's default body limit.
pub const DEFAULT_GZIP_BOMB_BYTES: u64 = 100 * 1024 * 1024;
/// Largest `gzip_bomb_bytes`: 4 GiB inflated, about 4 MiB compressed.
pub const MAX_GZIP_BOMB_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Largest `label_value_bytes`: 16 MiB.
pub const MAX_LABEL_VALUE_BYTES: u32 = 16 * 1024 * 1024;
/// Largest padded body: (`extra_series` + `churn_series`) × `label_value_bytes`
/// must stay under 256 MiB, or one scrape could exhaust gometr's memory.
pub const MAX_PADDED_BYTES: u64 = 256 * 1024 * 1024;

impl Control {
    /// Applies an update, or says which field is out of range and leaves `self` unchanged.
    pub fn apply(&mut self, update: ControlUpdate) -> Result<(), String> {
        let mut next = self.clone();
        if let Some(h) = update.health {
            next.health = h;
        }
        if let Some(d) = update.delay_ms {
            if d > MAX_DELAY_MS {
                return Err(format!("delay_ms must be at most {MAX_DELAY_MS}, got {d}"));
            }
            next.delay_ms = d;
        }
        if let Some(s) = update.metrics_status {
            if !(100..=599).contains(&s) {
                return Err(format!(
                    "metrics_status must be an HTTP status (100-599), got {s}"
                ));
            }
            next.metrics_status = s;
        }
        if let Some(n) = update.extra_series {
            if n > MAX_EXTRA_SERIES {
                return Err(format!(
                    "extra_series must be at most {MAX_EXTRA_SERIES}, got {n}"
                ));
            }
            next.extra_series = n;
        }
        if let Some(text) = update.extra_text {
            if text.len() > MAX_EXTRA_TEXT {
                return Err(format!(
                    "extra_text must be at most {MAX_EXTRA_TEXT} bytes, got {}",
                    text.len()
                ));
            }
            next.extra_text = text;
        }
        if let Some(on) = update.gzip_bomb {
            next.gzip_bomb = on;
        }
        if let Some(n) = update.gzip_bomb_bytes {
            if !(1..=MAX_GZIP_BOMB_BYTES).contains(&n) {
                return Err(format!(
                    "gzip_bomb_bytes must be from 1 to {MAX_GZIP_BOMB_BYTES}, got {n}"
                ));
            }
            next.gzip_bomb_bytes = n;
        }
        if let Some(n) = update.trickle_bytes_per_second {
            next.trickle_bytes_per_second = n;
        }
        if let Some(on) = update.invalid_utf8 {
            next.invalid_utf8 = on;
        }
        if let Some(n) = update.label_value_bytes {
            if n > MAX_LABEL_VALUE_BYTES {
                return Err(format!(
                    "label_value_bytes must be at most {MAX_LABEL_VALUE_BYTES}, got {n}"
                ));
            }
            next.label_value_bytes = n;
        }
        if let Some(n) = update.churn_series {
            if n > MAX_EXTRA_SERIES {
                return Err(format!(
                    "churn_series must be at most {MAX_EXTRA_SERIES}, got {n}"
                ));
            }
            next.churn_series = n;
        }
        if let Some(profile) = update.series_profile {
            next.series_profile = profile;
        }
        if let Some(seed) = update.seed {
            next.seed = seed;
        }
        let padded = (u64::from(next.extra_series) + u64::from(next.churn_series))
            * u64::from(next.label_value_bytes);
        if padded > MAX_PADDED_BYTES {
            return Err(format!(
                "label_value_bytes × (extra_series + churn_series) must be at most \
                 {MAX_PADDED_BYTES} bytes, got {padded}"
            ));
        }
        *self = next;
        Ok(())
    }

    /// Start-up settings from `GOMETR_HEALTH`, `GOMETR_DELAY_MS`,
    /// `GOMETR_METRICS_STATUS`, `GOMETR_EXTRA_SERIES` and the hostile modes'
    /// `GOMETR_GZIP_BOMB`, `GOMETR_GZIP_BOMB_BYTES`, `GOMETR_TRICKLE_BYTES_PER_SECOND`,
    /// `GOMETR_INVALID_UTF8`, `GOMETR_LABEL_VALUE_BYTES`, `GOMETR_CHURN_SERIES`,
    /// and the extra series' `GOMETR_SERIES_PROFILE` and `GOMETR_SEED`.
    pub fn from_env(vars: impl Fn(&str) -> Option<String>) -> Result<Control, String> {
        let mut update = ControlUpdate::default();
        if let Some(v) = vars("GOMETR_HEALTH") {
            update.health = Some(match v.as_str() {
                "pass" => HealthStatus::Pass,
                "warn" => HealthStatus::Warn,
                "fail" => HealthStatus::Fail,
                other => {
                    return Err(format!(
                        "GOMETR_HEALTH must be pass, warn or fail, got {other:?}"
                    ));
                }
            });
        }
        let number = |name: &str| -> Result<Option<u64>, String> {
            vars(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{name} must be a whole number, got {v:?}"))
                })
                .transpose()
        };
        update.delay_ms = number("GOMETR_DELAY_MS")?;
        update.metrics_status = number("GOMETR_METRICS_STATUS")?
            .map(|v| {
                u16::try_from(v).map_err(|_| format!("GOMETR_METRICS_STATUS out of range: {v}"))
            })
            .transpose()?;
        update.extra_series = number("GOMETR_EXTRA_SERIES")?
            .map(|v| u32::try_from(v).map_err(|_| format!("GOMETR_EXTRA_SERIES out of range: {v}")))
            .transpose()?;
        let flag = |name: &str| -> Result<Option<bool>, String> {
            vars(name)
                .map(|v| match v.as_str() {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err(format!("{name} must be true or false, got {v:?}")),
                })
                .transpose()
        };
        let small = |name: &str| -> Result<Option<u32>, String> {
            number(name)?
                .map(|v| u32::try_from(v).map_err(|_| format!("{name} out of range: {v}")))
                .transpose()
        };
        update.gzip_bomb = flag("GOMETR_GZIP_BOMB")?;
        update.gzip_bomb_bytes = number("GOMETR_GZIP_BOMB_BYTES")?;
        update.trickle_bytes_per_second = number("GOMETR_TRICKLE_BYTES_PER_SECOND")?;
        update.invalid_utf8 = flag("GOMETR_INVALID_UTF8")?;
        update.label_value_bytes = small("GOMETR_LABEL_VALUE_BYTES")?;
        update.churn_series = small("GOMETR_CHURN_SERIES")?;
        update.series_profile = vars("GOMETR_SERIES_PROFILE")
            .map(|v| match v.as_str() {
                "constant" => Ok(SeriesProfile::Constant),
                "realistic" => Ok(SeriesProfile::Realistic),
                other => Err(format!(
                    "GOMETR_SERIES_PROFILE must be constant or realistic, got {other:?}"
                )),
            })
            .transpose()?;
        update.seed = number("GOMETR_SEED")?;
        let mut control = Control::default();
        control.apply(update)?;
        Ok(control)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_text_is_kept_verbatim_and_bounded() {
        let mut c = Control::default();
        let poison = "old_metric 1 -300000000000000\nnul{v=\"a\0b\"} 1\n";
        c.apply(ControlUpdate {
            extra_text: Some(poison.into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.extra_text, poison);
        let err = c
            .apply(ControlUpdate {
                extra_text: Some("x".repeat(MAX_EXTRA_TEXT + 1)),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.contains("extra_text"), "{err}");
        assert_eq!(c.extra_text, poison, "a rejected update changes nothing");
    }

    #[test]
    fn a_partial_update_keeps_other_fields() {
        let mut c = Control {
            delay_ms: 5,
            ..Default::default()
        };
        c.apply(ControlUpdate {
            health: Some(HealthStatus::Fail),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.health, HealthStatus::Fail);
        assert_eq!(c.delay_ms, 5);
    }

    #[test]
    fn an_invalid_update_changes_nothing_and_names_the_field() {
        let mut c = Control::default();
        let err = c
            .apply(ControlUpdate {
                delay_ms: Some(1),
                metrics_status: Some(42),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.contains("metrics_status"), "{err}");
        assert_eq!(c, Control::default());
    }

    #[test]
    fn env_vars_set_the_start_up_state() {
        let env = |k: &str| match k {
            "GOMETR_HEALTH" => Some("warn".to_owned()),
            "GOMETR_EXTRA_SERIES" => Some("10".to_owned()),
            _ => None,
        };
        let c = Control::from_env(env).unwrap();
        assert_eq!(
            (c.health, c.extra_series, c.metrics_status),
            (HealthStatus::Warn, 10, 200)
        );
        let bad = Control::from_env(|k| (k == "GOMETR_DELAY_MS").then(|| "soon".to_owned()));
        assert!(bad.unwrap_err().contains("GOMETR_DELAY_MS"));
    }

    #[test]
    fn hostile_modes_are_off_by_default_and_set_from_env() {
        let c = Control::default();
        assert!(!c.gzip_bomb && !c.invalid_utf8);
        assert_eq!(
            (
                c.trickle_bytes_per_second,
                c.label_value_bytes,
                c.churn_series
            ),
            (0, 0, 0)
        );
        let env = |k: &str| {
            Some(
                match k {
                    "GOMETR_GZIP_BOMB" => "true",
                    "GOMETR_GZIP_BOMB_BYTES" => "1000",
                    "GOMETR_TRICKLE_BYTES_PER_SECOND" => "50",
                    "GOMETR_INVALID_UTF8" => "1",
                    "GOMETR_LABEL_VALUE_BYTES" => "300",
                    "GOMETR_CHURN_SERIES" => "7",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let c = Control::from_env(env).unwrap();
        assert!(c.gzip_bomb && c.invalid_utf8);
        assert_eq!(
            (
                c.gzip_bomb_bytes,
                c.trickle_bytes_per_second,
                c.label_value_bytes,
                c.churn_series
            ),
            (1000, 50, 300, 7)
        );
        let bad = Control::from_env(|k| (k == "GOMETR_GZIP_BOMB").then(|| "yes".to_owned()));
        assert!(bad.unwrap_err().contains("GOMETR_GZIP_BOMB"));
    }

    #[test]
    fn the_series_profile_is_constant_unless_set() {
        assert_eq!(Control::default().series_profile, SeriesProfile::Constant);
        let env = |k: &str| match k {
            "GOMETR_SERIES_PROFILE" => Some("realistic".to_owned()),
            "GOMETR_SEED" => Some("42".to_owned()),
            _ => None,
        };
        let c = Control::from_env(env).unwrap();
        assert_eq!((c.series_profile, c.seed), (SeriesProfile::Realistic, 42));
        let bad = Control::from_env(|k| (k == "GOMETR_SERIES_PROFILE").then(|| "real".to_owned()));
        assert!(bad.unwrap_err().contains("GOMETR_SERIES_PROFILE"));
    }

    #[test]
    fn hostile_bounds_name_the_field() {
        for (update, field) in [
            (
                ControlUpdate {
                    gzip_bomb_bytes: Some(0),
                    ..Default::default()
                },
                "gzip_bomb_bytes",
            ),
            (
                ControlUpdate {
                    label_value_bytes: Some(MAX_LABEL_VALUE_BYTES + 1),
                    ..Default::default()
                },
                "label_value_bytes",
            ),
            (
                ControlUpdate {
                    churn_series: Some(MAX_EXTRA_SERIES + 1),
                    ..Default::default()
                },
                "churn_series",
            ),
            (
                ControlUpdate {
                    extra_series: Some(1000),
                    label_value_bytes: Some(1024 * 1024),
                    ..Default::default()
                },
                "label_value_bytes",
            ),
        ] {
            let mut c = Control::default();
            let err = c.apply(update).unwrap_err();
            assert!(err.contains(field), "{err}");
            assert_eq!(c, Control::default());
        }
    }
}
