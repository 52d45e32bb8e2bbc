//! Which targets one checker replica owns when several replicas share them.
//!
//! Rendezvous (highest random weight) hashing: every target scores each shard
//! `0..count` with a keyed hash of (shard, target name) and belongs to the
//! shard with the highest score. Every replica computes the same owner for a
//! name without talking to the others, so together they cover each target
//! exactly once; going from `N` to `N + 1` shards moves only the targets the
//! new shard now wins, about `1 / (N + 1)` of them, and none between old shards.
//!
//! The hash is SipHash-1-3 with fixed keys, written out here rather than taken
//! from `std`: std's `DefaultHasher` may change between Rust releases, and two
//! replicas built by different toolchains (a rolling update) must agree.

use std::fmt;
use std::hash::Hasher;
use std::str::FromStr;

use siphasher::sip::SipHasher13;

/// Fixed SipHash keys: the ASCII bytes of `metr-shard-key-1`, split in two.
/// Changing them reshuffles every target, so they are pinned by a test.
const KEY0: u64 = u64::from_le_bytes(*b"metr-sha");
const KEY1: u64 = u64::from_le_bytes(*b"rd-key-1");

/// One replica's share: shard `index` of `count` (`0 <= index < count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// A shard specification that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("expected INDEX/COUNT such as 2/3, or POD-NAME/COUNT such as checker-2/3; got {0:?}")]
    Syntax(String),
    #[error("the shard count must be at least 1, got {0}")]
    ZeroCount(u32),
    #[error("shard index {index} is out of range for {count} shards (indexes are 0 to {})", count - 1)]
    OutOfRange { index: u32, count: u32 },
}

impl Shard {
    /// The single shard that owns everything: what an unsharded checker is.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::ZeroCount(count));
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether this shard checks the target called `name`.
    pub fn owns(&self, name: &str) -> bool {
        owner(name, self.count) == self.index
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parses `INDEX/COUNT`, or `POD-NAME/COUNT` where the pod name ends in
/// `-ORDINAL` as a StatefulSet's pods do (`checker-2/3` is shard 2 of 3).
impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.trim().rsplit_once('/').ok_or_else(syntax)?;
        let count: u32 = parse_number(count).ok_or_else(syntax)?;
        let ordinal = match index.rsplit_once('-') {
            Some((pod, ordinal)) if !pod.is_empty() => ordinal,
            _ => index,
        };
        let index = parse_number(ordinal).ok_or_else(syntax)?;
        Shard::new(index, count)
    }
}

/// Plain decimal digits only: no sign, no spaces, no empty string.
fn parse_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The shard of `count` that owns the target called `name`.
pub fn owner(name: &str, count: u32) -> u32 {
    (0..count)
        .max_by_key(|&shard| (score(name, shard), std::cmp::Reverse(shard)))
        .unwrap_or(0)
}

/// The weight of `shard` for `name`; the shard index comes first at a fixed
/// width so no two (shard, name) pairs feed the hash the same bytes.
fn score(name: &str, shard: u32) -> u64 {
    let mut hasher = SipHasher13::new_with_keys(KEY0, KEY1);
    hasher.write(&shard.to_le_bytes());
    hasher.write(name.as_bytes());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn names(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("target-{i}")).collect()
    }

    #[test]
    fn the_spec_parses_as_index_over_count() {
        let shard: Shard = "2/3".parse().unwrap();
        assert_eq!((shard.index(), shard.count()), (2, 3));
        assert_eq!(shard.to_string(), "2/3");
    }

    #[test]
    fn a_statefulset_pod_name_gives_its_ordinal_as_the_index() {
        let shard: Shard = "checker-2/3".parse().unwrap();
        let dashed: Shard = "metr-checker-0/1".parse().unwrap();
        assert_eq!(shard, Shard::new(2, 3).unwrap());
        assert_eq!(dashed, Shard::ALL);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let cases = [
            ("3/2", "out of range"),
            ("2/2", "out of range"),
            ("0/0", "at least 1"),
            ("x", "INDEX/COUNT"),
            ("1/x", "INDEX/COUNT"),
            ("-1/2", "INDEX/COUNT"),
            ("/2", "INDEX/COUNT"),
            ("checker/2", "INDEX/COUNT"),
            ("checker-/2", "INDEX/COUNT"),
            ("1/+2", "INDEX/COUNT"),
            ("", "INDEX/COUNT"),
        ];
        for (spec, reason) in cases {
            let err = spec.parse::<Shard>().expect_err(spec).to_string();
            assert!(err.contains(reason), "{spec:?}: {err:?}");
        }
    }

    #[test]
    fn one_shard_owns_every_target() {
        let all = names(1000);
        assert!(all.iter().all(|n| Shard::ALL.owns(n)));
    }

    /// Pinned values: if this fails, the hash changed, and during a rolling
    /// update old and new replicas would check some targets twice and others never.
    #[test]
    fn scores_and_owners_are_stable_across_builds() {
        let owners: Vec<u32> = ["gometr", "gometr-health", "api", "a", "b", "c", "d", "e"]
            .iter()
            .map(|n| owner(n, 3))
            .collect();
        assert_eq!(score("gometr", 0), 0x556d_cde3_86a2_3f95);
        assert_eq!(owners, [1, 1, 1, 1, 0, 0, 2, 0]);
    }

    #[test]
    fn shards_get_about_the_same_number_of_targets() {
        let all = names(30_000);
        for count in [2u32, 3, 5, 8] {
            let expected = all.len() as f64 / count as f64;
            for index in 0..count {
                let shard = Shard::new(index, count).unwrap();
                let owned = all.iter().filter(|n| shard.owns(n)).count() as f64;
                assert!(
                    (owned - expected).abs() < expected * 0.05,
                    "shard {shard}: {owned} targets, expected about {expected}"
                );
            }
        }
    }

    /// Measured with 20 000 names, the moved fraction is within 0.007 of
    /// 1/(N+1) for every N from 1 to 15 (1→2: 0.507, 2→3: 0.333, 9→10: 0.100,
    /// 15→16: 0.062).
    #[test]
    fn growing_from_n_to_n_plus_one_moves_about_one_in_n_plus_one_and_only_to_the_new_shard() {
        let all = names(20_000);
        for count in 1u32..16 {
            let mut moved = 0usize;
            for name in &all {
                let before = owner(name, count);
                let after = owner(name, count + 1);
                if before != after {
                    assert_eq!(after, count, "{name} moved between old shards");
                    moved += 1;
                }
            }
            let fraction = moved as f64 / all.len() as f64;
            let ideal = 1.0 / (count + 1) as f64;
            assert!(
                (fraction - ideal).abs() < 0.01,
                "{count}→{}: moved {fraction:.4}, ideal {ideal:.4}",
                count + 1
            );
        }
    }

    proptest! {
        #[test]
        fn the_shards_split_any_target_set_with_no_overlap_and_no_gap(
            names in prop::collection::btree_set("[a-z0-9._/-]{1,40}", 0..200),
            count in 1u32..20,
        ) {
            let owned: Vec<BTreeSet<&String>> = (0..count)
                .map(|i| {
                    let shard = Shard::new(i, count).unwrap();
                    names.iter().filter(|n| shard.owns(n)).collect()
                })
                .collect();
            let total: usize = owned.iter().map(BTreeSet::len).sum();
            let union: BTreeSet<&String> = owned.iter().flatten().copied().collect();
            prop_assert_eq!(total, union.len(), "a target is owned by two shards");
            prop_assert_eq!(union, names.iter().collect::<BTreeSet<_>>(), "a target has no shard");
        }

        #[test]
        fn any_index_below_the_count_parses_back(count in 1u32..10_000, seed in any::<u32>()) {
            let index = seed % count;
            let shard: Shard = format!("{index}/{count}").parse().unwrap();
            prop_assert_eq!(shard, Shard::new(index, count).unwrap());
            let pod: Shard = format!("checker-{index}/{count}").parse().unwrap();
            prop_assert_eq!(pod, shard);
        }
    }
}
