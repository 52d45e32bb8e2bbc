//! Reading a `network` step from the parsed tree: each field at its own
//! position, then the rules between fields, then the link against the stack.

use crate::decode::{Decoder, Fields};
use crate::error::Problem;
use crate::network::{Faults, Link, NetworkAction, Rate};
use crate::span::{NodePath, Span};
use crate::suggest::{self, single};
use crate::yaml::Node;

const NETWORK_KEYS: &[&str] = &[
    "link",
    "partition",
    "heal",
    "latency",
    "jitter",
    "timeout",
    "down",
    "reset",
    "bandwidth",
    "limit_data",
    "clear",
];

/// Why the fields of a network step do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    #[error("\"clear\" is either true or left out")]
    ClearFalse,
    #[error("\"limit_data\" must be a byte count above 0")]
    LimitZero,
    #[error(
        "a network step on link \"{0}\" takes at least one of latency, jitter, \
         timeout, down, reset, bandwidth, limit_data or clear"
    )]
    NoFault(Link),
    #[error("\"{0}\" cannot go with clear, which removes every fault on the link")]
    WithClear(&'static str),
    #[error("\"jitter\" varies a latency: give latency in the same step")]
    JitterAlone,
    #[error(
        "\"{fault}\" is a fault of a link; partition and heal take only a service ({service:?})"
    )]
    FaultOnService {
        fault: &'static str,
        service: String,
    },
    #[error("a network step takes exactly one of link, partition or heal")]
    Targets,
}

impl Decoder<'_> {
    /// A network step's action; `named` is where its `network` key is.
    pub(crate) fn network(
        &mut self,
        node: &Node,
        path: &NodePath,
        named: Span,
    ) -> Option<NetworkAction> {
        let f = self.fields(node, path, named, NETWORK_KEYS, "a mapping")?;
        let before = self.problems.len();
        let faults = self.faults(&f);
        let link = f.given("link").and_then(|n| self.link(n, path));
        let partition = f
            .given("partition")
            .and_then(|n| self.string(n, &f.path_of("partition")));
        let heal = f
            .given("heal")
            .and_then(|n| self.string(n, &f.path_of("heal")));
        if self.problems.len() > before {
            return None;
        }
        let faults = faults?;
        let step = path.parent();
        let fail = |d: &mut Self, key: &str, e: NetworkError| {
            d.error(f.key_span(key), &step, e);
            None
        };
        if f.given("clear").is_some() && !faults.clear {
            return fail(self, "clear", NetworkError::ClearFalse);
        }
        if faults.limit_data == Some(0) {
            return fail(self, "limit_data", NetworkError::LimitZero);
        }
        let keys = faults.keys();
        let action = match (link, partition, heal) {
            (Some(link), None, None) => {
                if keys.is_empty() {
                    let at = f.get("link").map_or(named, |n| n.span);
                    self.error(at, &step, NetworkError::NoFault(link));
                    return None;
                }
                if faults.clear && keys.len() > 1 {
                    let other = keys
                        .iter()
                        .copied()
                        .find(|k| *k != "clear")
                        .unwrap_or("clear");
                    return fail(self, other, NetworkError::WithClear(other));
                }
                if faults.jitter.is_some() && faults.latency.is_none() {
                    return fail(self, "jitter", NetworkError::JitterAlone);
                }
                self.known_link(&link, f.get("link"));
                NetworkAction::Link { link, faults }
            }
            (None, Some(service), None) | (None, None, Some(service)) if !keys.is_empty() => {
                let error = NetworkError::FaultOnService {
                    fault: keys[0],
                    service,
                };
                return fail(self, keys[0], error);
            }
            (None, Some(service), None) => {
                self.service(f.get("partition"), &f.path_of("partition"), named)?;
                NetworkAction::Partition(service)
            }
            (None, None, Some(service)) => {
                self.service(f.get("heal"), &f.path_of("heal"), named)?;
                NetworkAction::Heal(service)
            }
            _ => {
                self.error(named, &step, NetworkError::Targets);
                return None;
            }
        };
        Some(action)
    }

    fn link(&mut self, node: &Node, path: &NodePath) -> Option<Link> {
        let text = self.string(node, &path.key("link"))?;
        text.parse::<Link>()
            .map_err(|e| self.error(node.span, path, e))
            .ok()
    }

    /// An unknown link is told where it is written, with the nearest known one.
    fn known_link(&mut self, link: &Link, node: Option<&Node>) {
        let Err(error) = self.context.check_link(link) else {
            return;
        };
        let known: Vec<String> = self
            .context
            .links()
            .unwrap_or_default()
            .iter()
            .map(Link::to_string)
            .collect();
        let written = link.to_string();
        let help = suggest::did_you_mean(&written, known.iter().map(String::as_str), single);
        let at = node.map_or(Span::default(), |n| n.span);
        self.report(Problem::new(at, error).with_help(help));
    }

    fn faults(&mut self, f: &Fields<'_>) -> Option<Faults> {
        let mut ok = true;
        let mut read = |d: &mut Self, key: &str, kind: Kind| -> Option<Read> {
            let node = f.given(key)?;
            let path = f.path_of(key);
            let value = match kind {
                Kind::Duration => d.interval(node, &path).map(|i| Read::Duration(i.0)),
                Kind::Bool => d.bool(node, &path).map(Read::Bool),
                Kind::Count => d.u64(node, &path).map(Read::Count),
                Kind::Rate => d.string(node, &path).and_then(|text| {
                    Rate::parse(&text)
                        .map_err(|e| d.error(node.span, &f.path, e))
                        .ok()
                        .map(Read::Rate)
                }),
            };
            ok &= value.is_some();
            value
        };
        let faults = Faults {
            latency: read(self, "latency", Kind::Duration).and_then(Read::duration),
            jitter: read(self, "jitter", Kind::Duration).and_then(Read::duration),
            timeout: read(self, "timeout", Kind::Bool).and_then(Read::bool),
            down: read(self, "down", Kind::Bool).and_then(Read::bool),
            reset: read(self, "reset", Kind::Bool).and_then(Read::bool),
            bandwidth: match read(self, "bandwidth", Kind::Rate) {
                Some(Read::Rate(r)) => Some(r),
                _ => None,
            },
            limit_data: match read(self, "limit_data", Kind::Count) {
                Some(Read::Count(n)) => Some(n),
                _ => None,
            },
            clear: read(self, "clear", Kind::Bool).and_then(Read::bool) == Some(true),
        };
        ok.then_some(faults)
    }
}

/// What kind of value a fault takes.
enum Kind {
    Duration,
    Bool,
    Count,
    Rate,
}

/// A fault's value as read.
enum Read {
    Duration(std::time::Duration),
    Bool(bool),
    Count(u64),
    Rate(Rate),
}

impl Read {
    fn duration(self) -> Option<std::time::Duration> {
        match self {
            Read::Duration(d) => Some(d),
            _ => None,
        }
    }

    fn bool(self) -> Option<bool> {
        match self {
            Read::Bool(b) => Some(b),
            _ => None,
        }
    }
}
