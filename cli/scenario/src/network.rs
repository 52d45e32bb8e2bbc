//! The `network` step: faults on a link between two services of the stack, or
//! a service cut off the stack's network and reconnected.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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

/// Why text is not a link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a link 'CLIENT->SERVER' such as 'checker->postgres'{}", if *.cut_short { REDIRECT_HINT } else { "" })]
pub struct LinkError {
    pub text: String,
    /// Ends at `-` with no `->`: what a shell redirect leaves.
    pub cut_short: bool,
}

impl FromStr for Link {
    type Err = LinkError;

    /// Parses `CLIENT->SERVER`; both names are plain words.
    fn from_str(text: &str) -> Result<Link, LinkError> {
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
            .ok_or_else(|| LinkError {
                text: text.to_owned(),
                cut_short: text.trim_end().ends_with('-') && !text.contains("->"),
            })
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{}", self.client, self.server)
    }
}

/// A link no fault may be put on: not between services of the stack that talk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown link '{link}': a link is 'CLIENT->SERVER' between services of the stack \
     that talk to each other: {known}"
)]
pub struct UnknownLink {
    pub link: Link,
    /// The links there are, quoted and listed.
    pub known: String,
}

/// A rate in bytes per second, written `2KB/s`, `512B/s`, `1MiB/s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate(pub u64);

/// Why text is not a rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rate such as 2KB/s (units: B, KB, MB, KiB, MiB per second, above 0)")]
pub struct RateError(pub String);

impl Rate {
    /// Parses `NUMBER UNIT/s`; KB and MB are powers of 1000, KiB and MiB of 1024.
    pub fn parse(text: &str) -> Result<Rate, RateError> {
        let bad = || RateError(text.to_owned());
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::load::parse;
    use crate::references::Context;

    /// The step's action, or every problem told, joined.
    fn step(yaml: &str) -> Result<NetworkAction, Vec<String>> {
        let node = crate::yaml::parse(yaml).map_err(|e| vec![e.to_string()])?;
        let context = Context::default();
        let mut decoder = crate::decode::Decoder::new(&context);
        let path = crate::span::NodePath::root().key("network");
        decoder
            .network(&node, &path, node.span)
            .ok_or_else(|| decoder.problems.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_link_is_client_arrow_server() {
        assert_eq!(
            "checker->gometr-2".parse(),
            Ok(Link {
                client: "checker".into(),
                server: "gometr-2".into()
            })
        );
        for bad in ["checker", "checker->", "->postgres", "a->b->c", "a b->c"] {
            assert!(bad.parse::<Link>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_link_cut_short_at_a_dash_hints_at_a_shell_redirect() {
        let why = "checker-".parse::<Link>().unwrap_err().to_string();
        assert!(
            why.ends_with("quote the link, e.g. 'checker->postgres'"),
            "{why}"
        );
        for other in ["checker", "checker->", "a b->c"] {
            let why = other.parse::<Link>().unwrap_err().to_string();
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
            let err = step(bad).expect_err(bad).join("; ");
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
