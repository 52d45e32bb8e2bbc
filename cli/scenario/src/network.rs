//! The `network` step: faults on a link between two services of the stack, or
//! a service cut off the stack's network and reconnected.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::model::Interval;

/// Said of a link cut short at `-`: unquoted, `checker->postgres` is
/// `checker-` with its output redirected to a file `postgres`.
const REDIRECT_HINT: &str =
    "; the shell may have read `>` as a redirect: quote the link, e.g. 'checker->postgres'";

/// `CLIENT->SERVER`: the connections one service opens to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub client: String,
    pub server: String,
}

impl Link {
    /// Parses `CLIENT->SERVER`; both names are plain words.
    pub fn parse(text: &str) -> Result<Link, String> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        text.split_once("->")
            .map(|(client, server)| (client.trim(), server.trim()))
            .filter(|(client, server)| plain(client) && plain(server))
            .map(|(client, server)| Link {
                client: client.to_owned(),
                server: server.to_owned(),
            })
            .ok_or_else(|| {
                let mut why =
                    format!("{text:?} is not a link 'CLIENT->SERVER' such as 'checker->postgres'");
                if text.trim_end().ends_with('-') && !text.contains("->") {
                    why.push_str(REDIRECT_HINT);
                }
                why
            })
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.client, self.server)
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Link::parse(&text).map_err(de::Error::custom)
    }
}

/// A rate in bytes per second, written `2KB/s`, `512B/s`, `1MiB/s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

impl Rate {
    /// Parses `NUMBER UNIT/s`; KB and MB are powers of 1000, KiB and MiB of 1024.
    pub fn parse(text: &str) -> Result<Rate, String> {
        let bad = || {
            format!(
                "{text:?} is not a rate such as 2KB/s (units: B, KB, MB, KiB, MiB per second, above 0)"
            )
        };
        let size = text.trim().strip_suffix("/s").ok_or_else(bad)?;
        let digits = size
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(size.len());
        let (number, unit) = size.split_at(digits);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let scale: u64 = match unit.trim() {
            "B" => 1,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "KiB" => 1_024,
            "MiB" => 1_048_576,
            _ => return Err(bad()),
        };
        number
            .checked_mul(scale)
            .filter(|&n| n > 0)
            .map(Rate)
            .ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Rate::parse(&text).map_err(de::Error::custom)
    }
}

/// The faults one step sets on a link; unset kinds are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Added to each direction's data.
    pub latency: Option<Duration>,
    /// Random variation of the latency, up to this much either way.
    pub jitter: Option<Duration>,
    /// Black hole: connections accepted, no data passes, never closed.
    pub timeout: Option<bool>,
    /// New connections refused, open ones closed.
    pub down: Option<bool>,
    /// Connections reset (TCP RST) as data flows.
    pub reset: Option<bool>,
    /// Bytes per second, per direction.
    pub bandwidth: Option<Rate>,
    /// A connection is closed after this many bytes.
    pub limit_data: Option<u64>,
    /// Remove every fault on the link.
    pub clear: bool,
}

impl Faults {
    /// The fault kinds set, as written in the file.
    pub fn keys(&self) -> Vec<&'static str> {
        [
            ("latency", self.latency.is_some()),
            ("jitter", self.jitter.is_some()),
            ("timeout", self.timeout.is_some()),
            ("down", self.down.is_some()),
            ("reset", self.reset.is_some()),
            ("bandwidth", self.bandwidth.is_some()),
            ("limit_data", self.limit_data.is_some()),
            ("clear", self.clear),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }
}

/// What a network step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkAction {
    /// Set or clear faults on a link.
    Link { link: Link, faults: Faults },
    /// Cut a service off the stack's network.
    Partition(String),
    /// Reconnect a partitioned service with its name and address.
    Heal(String),
}

impl NetworkAction {
    /// How the step is shown when it has no name.
    pub fn describe(&self) -> String {
        match self {
            NetworkAction::Link { link, faults } => {
                format!("network '{link}' {}", faults.keys().join(", "))
            }
            NetworkAction::Partition(s) => format!("network partition {s}"),
            NetworkAction::Heal(s) => format!("network heal {s}"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    link: Option<Link>,
    partition: Option<String>,
    heal: Option<String>,
    latency: Option<Interval>,
    jitter: Option<Interval>,
    timeout: Option<bool>,
    down: Option<bool>,
    reset: Option<bool>,
    bandwidth: Option<Rate>,
    limit_data: Option<u64>,
    clear: Option<bool>,
}

const TARGETS: &str = "a network step takes exactly one of link, partition or heal";

impl TryFrom<RawNetwork> for NetworkAction {
    type Error = String;

    fn try_from(raw: RawNetwork) -> Result<NetworkAction, String> {
        if raw.clear == Some(false) {
            return Err("\"clear\" is either true or left out".into());
        }
        if raw.limit_data == Some(0) {
            return Err("\"limit_data\" must be a byte count above 0".into());
        }
        let faults = Faults {
            latency: raw.latency.map(|s| s.0),
            jitter: raw.jitter.map(|s| s.0),
            timeout: raw.timeout,
            down: raw.down,
            reset: raw.reset,
            bandwidth: raw.bandwidth,
            limit_data: raw.limit_data,
            clear: raw.clear == Some(true),
        };
        let keys = faults.keys();
        match (raw.link, raw.partition, raw.heal) {
            (Some(link), None, None) => {
                if keys.is_empty() {
                    return Err(format!(
                        "a network step on link \"{link}\" takes at least one of latency, jitter, \
                         timeout, down, reset, bandwidth, limit_data or clear"
                    ));
                }
                if faults.clear && keys.len() > 1 {
                    return Err(format!(
                        "\"{}\" cannot go with clear, which removes every fault on the link",
                        keys.iter().find(|k| **k != "clear").unwrap_or(&"clear")
                    ));
                }
                if faults.jitter.is_some() && faults.latency.is_none() {
                    return Err("\"jitter\" varies a latency: give latency in the same step".into());
                }
                Ok(NetworkAction::Link { link, faults })
            }
            (None, Some(service), None) | (None, None, Some(service)) if !keys.is_empty() => {
                Err(format!(
                    "\"{}\" is a fault of a link; partition and heal take only a service ({service:?})",
                    keys[0]
                ))
            }
            (None, Some(service), None) => Ok(NetworkAction::Partition(service)),
            (None, None, Some(service)) => Ok(NetworkAction::Heal(service)),
            _ => Err(TARGETS.into()),
        }
    }
}

impl<'de> Deserialize<'de> for NetworkAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawNetwork::deserialize(deserializer)?;
        NetworkAction::try_from(raw).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::load::parse;
    use crate::references::Context;

    fn step(yaml: &str) -> Result<NetworkAction, String> {
        serde_yaml::from_str::<NetworkAction>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn a_link_is_client_arrow_server() {
        assert_eq!(
            Link::parse("checker->gometr-2"),
            Ok(Link {
                client: "checker".into(),
                server: "gometr-2".into()
            })
        );
        for bad in ["checker", "checker->", "->postgres", "a->b->c", "a b->c"] {
            assert!(Link::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_link_cut_short_at_a_dash_hints_at_a_shell_redirect() {
        let why = Link::parse("checker-").unwrap_err();
        assert!(
            why.ends_with("quote the link, e.g. 'checker->postgres'"),
            "{why}"
        );
        for other in ["checker", "checker->", "a b->c"] {
            let why = Link::parse(other).unwrap_err();
            assert!(!why.contains("redirect"), "{other}: {why}");
        }
    }

    #[test]
    fn rates_take_decimal_and_binary_units() {
        assert_eq!(Rate::parse("2KB/s"), Ok(Rate(2_000)));
        assert_eq!(Rate::parse("512B/s"), Ok(Rate(512)));
        assert_eq!(Rate::parse("1MiB/s"), Ok(Rate(1_048_576)));
        for bad in ["2KB", "0KB/s", "fast", "2 kb/s", "KB/s", "1.5KB/s"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_documented_form_is_accepted() {
        for good in [
            "{ link: checker->postgres, latency: 1500ms, jitter: 200ms }",
            "{ link: checker->gometr, timeout: true }",
            "{ link: api->postgres, down: true }",
            "{ link: api->postgres, reset: true }",
            "{ link: checker->postgres, bandwidth: 2KB/s }",
            "{ link: checker->postgres, limit_data: 10000 }",
            "{ link: checker->postgres, clear: true }",
            "{ link: checker->postgres, latency: 1s, bandwidth: 2KB/s }",
            "{ partition: gometr }",
            "{ heal: gometr }",
        ] {
            assert!(step(good).is_ok(), "{good}: {:?}", step(good));
        }
    }

    #[test]
    fn each_mistake_is_named() {
        for (bad, words) in [
            ("{ latency: 1s }", "exactly one of link, partition or heal"),
            ("{ partition: a, heal: a }", "exactly one of link"),
            ("{ link: checker->postgres }", "at least one of"),
            (
                "{ link: checker->postgres, latency: soon }",
                "not a duration",
            ),
            ("{ link: checker->postgres, bandwidth: 2KB }", "not a rate"),
            ("{ link: checker->postgres, down: yes please }", "boolean"),
            ("{ link: checker->postgres, limit_data: 0 }", "above 0"),
            ("{ link: checker->postgres, limit_data: -5 }", "limit_data"),
            (
                "{ link: checker->postgres, clear: true, down: true }",
                "\"down\" cannot go with clear",
            ),
            ("{ link: checker->postgres, clear: false }", "\"clear\""),
            ("{ link: checker->postgres, jitter: 1s }", "\"jitter\""),
            (
                "{ partition: gometr, latency: 1s }",
                "\"latency\" is a fault of a link",
            ),
            ("{ link: checker-postgres, down: true }", "not a link"),
            (
                "{ link: checker->postgres, loss: 5 }",
                "unknown field `loss`",
            ),
        ] {
            let err = step(bad).expect_err(bad);
            assert!(err.contains(words), "{bad}: {err}");
        }
    }

    #[test]
    fn a_network_step_implies_a_stack_of_its_own() {
        let text = "name: x\nsteps:\n  - network: { partition: gometr }\n";
        let loaded = parse(Path::new("s.yaml"), text, &Context::default()).unwrap();
        assert!(loaded.scenario.needs_own_stack());
        assert_eq!(loaded.scenario.steps[0].name, "network partition gometr");
    }
}
