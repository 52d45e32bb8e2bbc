//! Link faults of `network` steps as calls to the stack's fault proxy: each
//! fault kind is a Toxiproxy toxic on both directions of the link's proxy.
//! A new value of a kind replaces the old one, kinds combine, `clear`
//! removes them all; each call returns once the proxy applied it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::runner::target::StackHandle;
use crate::scenario::network::{Faults, Link};
use crate::stack::faults;

/// How long one control call may take (taking a link down waits for its
/// open connections to close, for up to 5 s on the proxy's side).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Toxics are put on both directions, named as Toxiproxy names them by default.
const STREAMS: [&str; 2] = ["upstream", "downstream"];

/// Sets (or clears) `wanted` on `link` of the stack.
pub async fn set_link_faults(
    stack: &StackHandle,
    http: &reqwest::Client,
    link: &Link,
    wanted: &Faults,
) -> Result<(), String> {
    let base = stack.url_of(faults::SERVICE).map_err(|_| {
        format!(
            "this stack has no fault proxy for link '{link}': link faults need a stack started for \
             the scenario, not one given with --stack"
        )
    })?;
    let control = Control {
        http,
        path: format!("{base}/proxies/{}", faults::proxy_name(link)),
    };
    let existing = control.toxics().await?;
    for toxic in calls(wanted) {
        match toxic {
            Call::Enable(enabled) => control.enable(enabled).await?,
            Call::Remove(kind) => {
                for name in existing
                    .iter()
                    .filter(|n| kind.is_none_or(|k| is_kind(n, k)))
                {
                    control
                        .send(Method::DELETE, &format!("/toxics/{name}"), None)
                        .await?;
                }
            }
            Call::Put(kind, attributes) => {
                for stream in STREAMS {
                    let name = format!("{kind}_{stream}");
                    let (path, body) = if existing.contains(&name) {
                        (format!("/toxics/{name}"), json!({"attributes": attributes}))
                    } else {
                        let toxic = json!({"name": name, "type": kind, "stream": stream, "attributes": attributes});
                        ("/toxics".to_owned(), toxic)
                    };
                    control.send(Method::POST, &path, Some(body)).await?;
                }
            }
        }
    }
    Ok(())
}

/// One change to a link's proxy.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    /// The proxy's `enabled`: false is `down`.
    Enable(bool),
    /// Removes the toxics of a type, or all of them.
    Remove(Option<&'static str>),
    /// Adds or updates a type's toxic on both directions.
    Put(&'static str, Value),
}

/// The control calls a step's faults make, in order.
fn calls(wanted: &Faults) -> Vec<Call> {
    if wanted.clear {
        return vec![Call::Remove(None), Call::Enable(true)];
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut out = Vec::new();
    if let Some(down) = wanted.down {
        out.push(Call::Enable(!down));
    }
    if let Some(latency) = wanted.latency {
        let jitter = wanted.jitter.unwrap_or_default();
        out.push(Call::Put(
            "latency",
            json!({"latency": ms(latency), "jitter": ms(jitter)}),
        ));
    }
    if let Some(rate) = wanted.bandwidth {
        // Toxiproxy's rate is in KB/s.
        out.push(Call::Put(
            "bandwidth",
            json!({"rate": rate.0 as f64 / 1000.0}),
        ));
    }
    if let Some(bytes) = wanted.limit_data {
        out.push(Call::Put("limit_data", json!({"bytes": bytes})));
    }
    for (kind, on, attributes) in [
        ("timeout", wanted.timeout, json!({"timeout": 0})),
        ("reset_peer", wanted.reset, json!({"timeout": 0})),
    ] {
        match on {
            Some(true) => out.push(Call::Put(kind, attributes)),
            Some(false) => out.push(Call::Remove(Some(kind))),
            None => {}
        }
    }
    out
}

/// Whether a toxic of ours named `name` is of type `kind` (`<type>_<stream>`).
fn is_kind(name: &str, kind: &str) -> bool {
    STREAMS
        .iter()
        .any(|stream| name == format!("{kind}_{stream}"))
}

/// The control API of one link's proxy.
struct Control<'a> {
    http: &'a reqwest::Client,
    /// `…/proxies/<name>`.
    path: String,
}

impl Control<'_> {
    async fn send(&self, method: Method, sub: &str, body: Option<Value>) -> Result<Value, String> {
        let shown = format!("{method} {}{sub}", self.path);
        let mut request = self
            .http
            .request(method, format!("{}{sub}", self.path))
            .timeout(CALL_TIMEOUT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("fault proxy: {shown}: {}", crate::engine::root_cause(&e)))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let why = body["error"].as_str().unwrap_or(text.as_str()).to_owned();
        Err(match status {
            StatusCode::NOT_FOUND if sub.is_empty() => {
                format!("fault proxy: no proxy on this link ({why})")
            }
            _ => format!("fault proxy: {shown} answered {status}: {why}"),
        })
    }

    /// The names of the proxy's toxics.
    async fn toxics(&self) -> Result<Vec<String>, String> {
        let view = self.send(Method::GET, "", None).await?;
        Ok(view["toxics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect())
    }

    async fn enable(&self, enabled: bool) -> Result<(), String> {
        self.send(Method::POST, "", Some(json!({"enabled": enabled})))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::network::Rate;

    #[test]
    fn clear_removes_every_toxic_and_brings_the_link_up() {
        let wanted = Faults {
            clear: true,
            ..Faults::default()
        };
        assert_eq!(calls(&wanted), vec![Call::Remove(None), Call::Enable(true)]);
    }

    #[test]
    fn each_fault_kind_is_its_toxic_with_toxiproxys_units() {
        let wanted = Faults {
            latency: Some(Duration::from_millis(1500)),
            jitter: Some(Duration::from_millis(200)),
            bandwidth: Some(Rate(2_000)),
            limit_data: Some(10_000),
            timeout: Some(true),
            reset: Some(false),
            down: Some(true),
            ..Faults::default()
        };
        assert_eq!(
            calls(&wanted),
            vec![
                Call::Enable(false),
                Call::Put("latency", json!({"latency": 1500.0, "jitter": 200.0})),
                Call::Put("bandwidth", json!({"rate": 2.0})),
                Call::Put("limit_data", json!({"bytes": 10_000})),
                Call::Put("timeout", json!({"timeout": 0})),
                Call::Remove(Some("reset_peer")),
            ]
        );
    }

    #[test]
    fn a_type_is_told_by_its_name_and_stream() {
        assert!(is_kind("timeout_upstream", "timeout"));
        assert!(!is_kind("timeout_sideways", "timeout"));
        assert!(!is_kind("latency_upstream", "timeout"));
    }
}
