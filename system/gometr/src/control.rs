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
}

impl Default for Control {
    fn default() -> Self {
        Control {
            health: HealthStatus::Pass,
            delay_ms: 0,
            metrics_status: 200,
            extra_series: 0,
            extra_text: String::new(),
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
}

/// Largest `extra_text`, in bytes.
pub const MAX_EXTRA_TEXT: usize = 64 * 1024;

/// Largest `extra_series`: enough for load tests, small enough not to exhaust memory.
pub const MAX_EXTRA_SERIES: u32 = 1_000_000;
/// Largest `delay_ms`: ten minutes.
pub const MAX_DELAY_MS: u64 = 600_000;

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
        *self = next;
        Ok(())
    }

    /// Start-up settings from `GOMETR_HEALTH`, `GOMETR_DELAY_MS`,
    /// `GOMETR_METRICS_STATUS` and `GOMETR_EXTRA_SERIES`.
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
}
