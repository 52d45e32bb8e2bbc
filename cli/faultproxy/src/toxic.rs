//! Toxics as Toxiproxy's control API spells them, and the faults they put on
//! each direction of a link.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::faults::{Faults, Streams};

/// The direction a toxic acts on: client to server, or server to client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Upstream,
    #[default]
    Downstream,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

/// A toxic as the control API takes and shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    /// Defaults to `<type>_<stream>`, as in Toxiproxy.
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub stream: Stream,
    #[serde(default = "full")]
    pub toxicity: f64,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

fn full() -> f64 {
    1.0
}

/// A toxic the proxy cannot apply, in words for the control API's 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ToxicError(pub String);

/// What a toxic does, with its attributes read and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Effect {
    Latency {
        latency: Duration,
        jitter: Duration,
    },
    /// Bytes per second.
    Bandwidth(u64),
    /// `None`: never closes.
    Timeout(Option<Duration>),
    ResetPeer,
    LimitData(u64),
    SlowClose(Duration),
}

/// The toxic types this proxy knows.
pub const TYPES: [&str; 6] = [
    "latency",
    "bandwidth",
    "timeout",
    "reset_peer",
    "limit_data",
    "slow_close",
];

impl Toxic {
    /// Fills in the default name and checks the type and attributes.
    pub fn checked(mut self) -> Result<Toxic, ToxicError> {
        if self.name.is_empty() {
            self.name = format!("{}_{}", self.kind, self.stream.as_str());
        }
        if self.toxicity != 1.0 {
            return Err(ToxicError(format!(
                "toxicity {} is not supported: every toxic here acts on every connection (1.0)",
                self.toxicity
            )));
        }
        self.effect()?;
        Ok(self)
    }

    /// This toxic with `update`'s fields laid over it (attributes key by key).
    pub fn updated(&self, update: &Map<String, Value>) -> Result<Toxic, ToxicError> {
        let mut merged = self.clone();
        if let Some(toxicity) = update.get("toxicity") {
            merged.toxicity = toxicity
                .as_f64()
                .ok_or_else(|| ToxicError("toxicity must be a number".into()))?;
        }
        if let Some(attributes) = update.get("attributes") {
            let attributes = attributes
                .as_object()
                .ok_or_else(|| ToxicError("attributes must be an object".into()))?;
            merged.attributes.extend(attributes.clone());
        }
        for fixed in ["type", "stream", "name"] {
            if update
                .get(fixed)
                .is_some_and(|v| v.as_str() != Some(field(self, fixed)))
            {
                return Err(ToxicError(format!(
                    "a toxic's {fixed} cannot change; remove it and add another"
                )));
            }
        }
        merged.checked()
    }

    fn attribute(&self, key: &str) -> Result<f64, ToxicError> {
        match self.attributes.get(key) {
            None => Ok(0.0),
            Some(v) => v.as_f64().filter(|n| *n >= 0.0).ok_or_else(|| {
                ToxicError(format!(
                    "{} attribute {key} must be a number of at least 0, got {v}",
                    self.kind
                ))
            }),
        }
    }

    fn millis(&self, key: &str) -> Result<Duration, ToxicError> {
        Ok(Duration::from_secs_f64(self.attribute(key)? / 1000.0))
    }

    fn effect(&self) -> Result<Effect, ToxicError> {
        Ok(match self.kind.as_str() {
            "latency" => Effect::Latency {
                latency: self.millis("latency")?,
                jitter: self.millis("jitter")?,
            },
            // Toxiproxy's rate is KB/s (1000 bytes); a fraction gives finer rates.
            "bandwidth" => match (self.attribute("rate")? * 1000.0).round() as u64 {
                0 => {
                    return Err(ToxicError(
                        "bandwidth attribute rate must be above 0".into(),
                    ));
                }
                bytes => Effect::Bandwidth(bytes),
            },
            "timeout" => {
                let after = self.millis("timeout")?;
                Effect::Timeout((!after.is_zero()).then_some(after))
            }
            "reset_peer" => {
                if !self.millis("timeout")?.is_zero() {
                    return Err(ToxicError(
                        "reset_peer attribute timeout must be 0 here: connections are reset as data flows".into(),
                    ));
                }
                Effect::ResetPeer
            }
            "limit_data" => match self.attribute("bytes")? as u64 {
                0 => {
                    return Err(ToxicError(
                        "limit_data attribute bytes must be above 0".into(),
                    ));
                }
                bytes => Effect::LimitData(bytes),
            },
            "slow_close" => Effect::SlowClose(self.millis("delay")?),
            other => {
                return Err(ToxicError(format!(
                    "unknown toxic type {other:?} (known: {})",
                    TYPES.join(", ")
                )));
            }
        })
    }
}

fn field<'a>(toxic: &'a Toxic, name: &str) -> &'a str {
    match name {
        "type" => &toxic.kind,
        "stream" => toxic.stream.as_str(),
        _ => &toxic.name,
    }
}

/// The faults a proxy's toxics put on each direction. Toxics are applied in
/// the order given; of two of one type on one stream, the later wins.
pub fn streams<'a>(enabled: bool, toxics: impl IntoIterator<Item = &'a Toxic>) -> Streams {
    let mut streams = Streams::default();
    for toxic in toxics {
        let faults = match toxic.stream {
            Stream::Upstream => &mut streams.upstream,
            Stream::Downstream => &mut streams.downstream,
        };
        // Toxics are checked when they are added, so this never skips one.
        if let Ok(effect) = toxic.effect() {
            apply(faults, effect);
        }
    }
    streams.upstream.enabled = enabled;
    streams.downstream.enabled = enabled;
    streams
}

fn apply(faults: &mut Faults, effect: Effect) {
    match effect {
        Effect::Latency { latency, jitter } => {
            faults.latency = latency;
            faults.jitter = jitter;
        }
        Effect::Bandwidth(rate) => faults.bandwidth = Some(rate),
        Effect::Timeout(after) => {
            faults.timeout = true;
            faults.timeout_after = after;
        }
        Effect::ResetPeer => faults.reset = true,
        Effect::LimitData(bytes) => faults.limit_data = Some(bytes),
        Effect::SlowClose(delay) => faults.slow_close = delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toxic(json: &str) -> Result<Toxic, ToxicError> {
        serde_json::from_str::<Toxic>(json).unwrap().checked()
    }

    #[test]
    fn a_toxic_without_a_name_is_named_after_its_type_and_stream() {
        let t = toxic(r#"{"type":"latency","attributes":{"latency":100}}"#).unwrap();
        assert_eq!(t.name, "latency_downstream");
        let t = toxic(r#"{"type":"timeout","stream":"upstream"}"#).unwrap();
        assert_eq!(t.name, "timeout_upstream");
    }

    #[test]
    fn each_type_sets_its_fault_on_its_stream_only() {
        let list = [
            r#"{"type":"latency","stream":"upstream","attributes":{"latency":1500,"jitter":200}}"#,
            r#"{"type":"bandwidth","stream":"upstream","attributes":{"rate":2}}"#,
            r#"{"type":"limit_data","attributes":{"bytes":10000}}"#,
            r#"{"type":"slow_close","attributes":{"delay":300}}"#,
            r#"{"type":"timeout","attributes":{"timeout":0}}"#,
            r#"{"type":"reset_peer","stream":"upstream"}"#,
        ]
        .map(|j| toxic(j).unwrap());
        let s = streams(true, &list);
        assert_eq!(s.upstream.latency, Duration::from_millis(1500));
        assert_eq!(s.upstream.jitter, Duration::from_millis(200));
        assert_eq!(s.upstream.bandwidth, Some(2_000));
        assert!(s.upstream.reset && !s.upstream.timeout);
        assert_eq!(s.downstream.latency, Duration::ZERO);
        assert_eq!(s.downstream.limit_data, Some(10_000));
        assert_eq!(s.downstream.slow_close, Duration::from_millis(300));
        assert!(s.downstream.timeout && s.downstream.timeout_after.is_none());
        assert!(s.enabled());
        assert!(!streams(false, &list).enabled());
    }

    #[test]
    fn bad_toxics_are_refused_with_the_reason() {
        for (json, words) in [
            (r#"{"type":"loss"}"#, "unknown toxic type \"loss\""),
            (
                r#"{"type":"latency","attributes":{"latency":"slow"}}"#,
                "latency attribute latency must be a number",
            ),
            (
                r#"{"type":"bandwidth","attributes":{"rate":0}}"#,
                "rate must be above 0",
            ),
            (r#"{"type":"limit_data"}"#, "bytes must be above 0"),
            (
                r#"{"type":"latency","toxicity":0.5}"#,
                "toxicity 0.5 is not supported",
            ),
            (
                r#"{"type":"reset_peer","attributes":{"timeout":100}}"#,
                "timeout must be 0",
            ),
        ] {
            let err = toxic(json).expect_err(json).to_string();
            assert!(err.contains(words), "{json}: {err}");
        }
    }

    #[test]
    fn an_update_merges_attributes_and_keeps_the_type() {
        let t = toxic(r#"{"type":"latency","attributes":{"latency":100,"jitter":10}}"#).unwrap();
        let update = serde_json::json!({"attributes": {"latency": 2000}});
        let u = t.updated(update.as_object().unwrap()).unwrap();
        assert_eq!(u.attributes["latency"], 2000);
        assert_eq!(u.attributes["jitter"], 10);
        let change = serde_json::json!({"type": "timeout"});
        assert!(t.updated(change.as_object().unwrap()).is_err());
    }
}
