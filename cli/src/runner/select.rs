//! Which scenarios a run takes: `--tag`, `--filter`, and `--partition` to split
//! a suite across CI jobs.

use std::fmt;
use std::path::{Component, Path};
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::scenario::load::Loaded;

/// How `--partition` picks its slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// By a stable hash of the scenario's path and name: adding a scenario
    /// moves no other one to another slice.
    Hash,
    /// Round-robin over the sorted list: scenario `i` (from 0) goes to slice
    /// `i mod N + 1`. Even slices, but adding a scenario moves those after it.
    Count,
}

/// `--partition hash:K/N` or `count:K/N`: the K-th of N slices (K from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub strategy: Strategy,
    pub index: u64,
    pub total: u64,
}

/// Why a `--partition` value is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartitionError {
    #[error("{0:?} has no strategy: write hash:K/N or count:K/N")]
    NoStrategy(String),
    #[error("unknown strategy {0:?}: expected hash or count")]
    UnknownStrategy(String),
    #[error("{0:?} is not K/N with K and N positive whole numbers")]
    NotAFraction(String),
    #[error("N must be at least 1, got {0}")]
    NoSlices(u64),
    #[error("K must be between 1 and N ({total}), got {index}")]
    OutOfRange { index: u64, total: u64 },
}

impl FromStr for Partition {
    type Err = PartitionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((strategy, fraction)) = text.split_once(':') else {
            return Err(PartitionError::NoStrategy(text.to_owned()));
        };
        let strategy = match strategy {
            "hash" => Strategy::Hash,
            "count" => Strategy::Count,
            other => return Err(PartitionError::UnknownStrategy(other.to_owned())),
        };
        let not_a_fraction = || PartitionError::NotAFraction(fraction.to_owned());
        let (index, total) = fraction.split_once('/').ok_or_else(not_a_fraction)?;
        let index: u64 = index.trim().parse().map_err(|_| not_a_fraction())?;
        let total: u64 = total.trim().parse().map_err(|_| not_a_fraction())?;
        if total == 0 {
            return Err(PartitionError::NoSlices(total));
        }
        if index == 0 || index > total {
            return Err(PartitionError::OutOfRange { index, total });
        }
        Ok(Partition {
            strategy,
            index,
            total,
        })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strategy = match self.strategy {
            Strategy::Hash => "hash",
            Strategy::Count => "count",
        };
        write!(f, "{strategy}:{}/{}", self.index, self.total)
    }
}

/// The path with `.` components dropped and `/` separators, so that
/// `./scenarios/a.yaml` and `scenarios/a.yaml` hash alike on every platform.
fn stable_path(path: &Path) -> String {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// A hash that is the same on every machine and every release: SHA-256 (not
/// std's randomly seeded hasher) of the path and the name.
fn stable_hash(path: &Path, name: &str) -> u64 {
    let mut digest = Sha256::new();
    digest.update(stable_path(path).as_bytes());
    digest.update([0]);
    digest.update(name.as_bytes());
    let bytes = digest.finalize();
    u64::from_be_bytes(
        bytes[..8]
            .try_into()
            .expect("a SHA-256 digest has 32 bytes"),
    )
}

impl Partition {
    /// The scenarios of this slice, in their order; `scenarios` is the whole
    /// sorted selection.
    pub fn select(&self, scenarios: Vec<Loaded>) -> Vec<Loaded> {
        let slice = self.index - 1;
        scenarios
            .into_iter()
            .enumerate()
            .filter(|(i, l)| {
                let key = match self.strategy {
                    Strategy::Hash => stable_hash(&l.file, &l.scenario.name),
                    Strategy::Count => *i as u64,
                };
                key % self.total == slice
            })
            .map(|(_, l)| l)
            .collect()
    }
}

/// `--tag` (any of them) and `--filter` (a part of the name or the file).
pub fn matching(scenarios: Vec<Loaded>, tags: &[String], filter: Option<&str>) -> Vec<Loaded> {
    scenarios
        .into_iter()
        .filter(|l| tags.is_empty() || l.scenario.tags.iter().any(|t| tags.contains(t)))
        .filter(|l| {
            filter.is_none_or(|f| {
                l.scenario.name.contains(f) || l.file.display().to_string().contains(f)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load;
    use crate::scenario::references::Context;

    fn scenario(file: &str, name: &str) -> Loaded {
        let text = format!("name: {name}\nsteps:\n  - sleep: 1ms\n");
        load::parse(Path::new(file), &text, &Context::default()).expect("a valid scenario")
    }

    fn names(scenarios: &[Loaded]) -> Vec<String> {
        scenarios.iter().map(|l| l.scenario.name.clone()).collect()
    }

    #[test]
    fn partitions_parse_and_print_back() {
        for text in ["hash:1/3", "count:2/2", "hash:1/1"] {
            assert_eq!(text.parse::<Partition>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn bad_partitions_say_what_is_wrong() {
        let cases = [
            ("3/2", "no strategy"),
            ("hash:0/2", "K must be between 1 and N (2), got 0"),
            ("hash:3/2", "K must be between 1 and N (2), got 3"),
            ("foo:1/2", "unknown strategy \"foo\""),
            ("hash:1/0", "N must be at least 1"),
            ("count:a/2", "not K/N"),
            ("count:1-2", "not K/N"),
        ];
        for (text, expected) in cases {
            let err = text.parse::<Partition>().expect_err(text).to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn count_slices_are_round_robin_over_the_sorted_list() {
        let all: Vec<_> = (0..5)
            .map(|i| scenario(&format!("s/{i}.yaml"), &format!("n{i}")))
            .collect();
        let second: Partition = "count:2/2".parse().unwrap();
        assert_eq!(names(&second.select(all)), ["n1", "n3"]);
    }

    #[test]
    fn hash_slices_cover_everything_once_and_ignore_a_leading_dot() {
        let all: Vec<_> = (0..60)
            .map(|i| scenario(&format!("s/{i}.yaml"), &format!("n{i}")))
            .collect();
        let mut seen: Vec<String> = Vec::new();
        for k in 1..=3 {
            let slice = Partition {
                strategy: Strategy::Hash,
                index: k,
                total: 3,
            }
            .select(all.clone());
            assert!(!slice.is_empty(), "slice {k} of 60 scenarios is empty");
            seen.extend(names(&slice));
        }
        seen.sort();
        let mut expected = names(&all);
        expected.sort();
        assert_eq!(seen, expected);
        assert_eq!(
            stable_hash(Path::new("./s/1.yaml"), "n"),
            stable_hash(Path::new("s/1.yaml"), "n")
        );
    }

    #[test]
    fn tags_and_filter_narrow_the_selection() {
        let mut tagged = scenario("a/x.yaml", "first");
        tagged.scenario.tags = vec!["api".into()];
        let all = vec![tagged, scenario("b/y.yaml", "second")];
        assert_eq!(
            names(&matching(all.clone(), &["api".into()], None)),
            ["first"]
        );
        assert_eq!(names(&matching(all.clone(), &[], Some("b/"))), ["second"]);
        assert_eq!(names(&matching(all, &[], Some("sec"))), ["second"]);
    }
}
