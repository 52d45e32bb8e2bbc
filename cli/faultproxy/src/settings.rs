//! The proxy's settings, from the environment: where the control API listens
//! and the proxies to start with (so clients can connect before any control call).

use std::net::SocketAddr;

use crate::api::NewProxy;

/// Toxiproxy's control port.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8474";

/// What the binary starts with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `FAULTPROXY_LISTEN`: the control API's address.
    pub listen: SocketAddr,
    /// `FAULTPROXY_PROXIES`: a JSON array of proxies as `POST /proxies` takes them.
    pub proxies: Vec<NewProxy>,
}

impl Settings {
    /// Reads the settings through `var` (the environment, in the binary).
    pub fn load(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let listen = var("FAULTPROXY_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen
            .parse()
            .map_err(|e| format!("FAULTPROXY_LISTEN {listen:?}: {e}"))?;
        let proxies = match var("FAULTPROXY_PROXIES") {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| format!("FAULTPROXY_PROXIES is not a JSON array of proxies: {e}"))?,
            None => Vec::new(),
        };
        Ok(Settings { listen, proxies })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_the_toxiproxy_port_and_read_initial_proxies() {
        let none = Settings::load(|_| None).unwrap();
        assert_eq!(none.listen.port(), 8474);
        assert!(none.proxies.is_empty());
        let some = Settings::load(|k| {
            (k == "FAULTPROXY_PROXIES").then(|| {
                r#"[{"name":"checker_to_postgres","listen":"0.0.0.0:10000","upstream":"postgres:5432"}]"#
                    .to_owned()
            })
        })
        .unwrap();
        assert_eq!(some.proxies[0].upstream, "postgres:5432");
        assert!(some.proxies[0].enabled);
        let bad = Settings::load(|k| (k == "FAULTPROXY_PROXIES").then(|| "{".to_owned()));
        assert!(bad.unwrap_err().contains("FAULTPROXY_PROXIES"));
    }
}
