//! The checker container's memory request and limit, derived from the bound
//! the checker itself computes from the configuration it runs
//! (`checker::memory::MemoryBudget`, README: the checker's memory): the
//! checker exits 2 at start when that bound exceeds its cgroup's limit, so a
//! limit from any other rule would be a crash loop waiting for a bigger
//! `sampleLimit`.

use checker::memory::MemoryBudget;
use checker::shard::Shard;

/// The limit is the bound plus this share of it. The bound already counts
/// every structure that grows with the input, and the base (48 MiB) the
/// runtime, clients and allocator slack; the headroom covers what the
/// cgroup counts beyond the process's own memory (socket buffers, the page
/// cache of the files it reads) and the measured costs per series being
/// exceeded by targets that spell their series unusually.
pub const LIMIT_HEADROOM_PERCENT: u64 = 25;

/// The request is this share of the bound: the release checker peaked at 72 MB
/// (28 % of the 261 MB bound) storing 199,000 new series at the default limits
/// and sits near 26 MiB with small targets, so a quarter of the bound is a
/// steady-state estimate for targets near their `sample_limit` without
/// reserving the worst case on the node.
pub const REQUEST_PERCENT: u64 = 25;

const MIB: u64 = 1 << 20;

/// The checker's memory: the bound of its busiest shard, and the request and
/// limit its container gets, in bytes (whole MiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerMemory {
    /// The bound of the shard with the largest one, term by term.
    pub budget: MemoryBudget,
    pub request: u64,
    pub limit: u64,
}

impl CheckerMemory {
    /// The memory of `replicas` shards running `settings` (whose own `shard`
    /// is ignored): every shard shares one pod template, so the busiest sets
    /// it.
    pub fn of(settings: &checker::Settings, replicas: u32) -> CheckerMemory {
        let count = replicas.max(1);
        let budget = (0..count)
            .filter_map(|index| Shard::new(index, count).ok())
            .map(|shard| {
                let mut settings = settings.clone();
                settings.shard = shard;
                MemoryBudget::of(&settings)
            })
            .max_by_key(MemoryBudget::total)
            .unwrap_or_else(|| MemoryBudget::of(settings));
        let bound = budget.total();
        CheckerMemory {
            budget,
            request: whole_mib(bound * REQUEST_PERCENT / 100),
            limit: whole_mib(bound + bound * LIMIT_HEADROOM_PERCENT / 100),
        }
    }

    /// The most the checker's settings let it use, in bytes.
    pub fn bound(&self) -> u64 {
        self.budget.total()
    }

    /// With the user's `limit` (bytes) instead of the derived one; the request
    /// never exceeds it.
    pub fn with_limit(self, limit: u64) -> CheckerMemory {
        CheckerMemory {
            request: self.request.min(limit),
            limit,
            ..self
        }
    }
}

/// `bytes` rounded up to whole MiB.
fn whole_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB) * MIB
}

/// A byte count as a Kubernetes quantity: `NMi` when whole MiB, else bytes.
pub fn quantity(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{}Mi", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

/// Bytes of a memory quantity (`512Mi`, `1Gi`, `1.5G`, `300000000`, `1e9`),
/// rounded up; `None` when it is not one or is not positive.
pub fn bytes_of(quantity: &str) -> Option<u64> {
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let quantity = quantity.trim();
    let (number, unit) = SUFFIXES
        .iter()
        .find_map(|(suffix, unit)| Some((quantity.strip_suffix(suffix)?, *unit)))
        .unwrap_or((quantity, 1.0));
    // Digits, one optional point and an optional exponent; no sign, no "inf".
    let plain = number
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E'));
    let value = number.parse::<f64>().ok().filter(|_| plain)? * unit;
    (value.is_finite() && value >= 1.0 && value < 2f64.powi(63)).then(|| value.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_read_in_binary_and_decimal_units() {
        assert_eq!(bytes_of("512Mi"), Some(512 << 20));
        assert_eq!(bytes_of("1Gi"), Some(1 << 30));
        assert_eq!(bytes_of("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes_of("500M"), Some(500_000_000));
        assert_eq!(bytes_of("2G"), Some(2_000_000_000));
        assert_eq!(bytes_of("268435456"), Some(1 << 28));
        assert_eq!(bytes_of("1e9"), Some(1_000_000_000));
        for bad in ["", "Mi", "-1Gi", "0", "lots", "12MB", "inf", "1..2Mi"] {
            assert_eq!(bytes_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn quantities_are_written_in_mib_when_whole() {
        assert_eq!(quantity(460 << 20), "460Mi");
        assert_eq!(quantity((460 << 20) + 1), "482344961");
        assert_eq!(bytes_of(&quantity(460 << 20)), Some(460 << 20));
    }

    #[test]
    fn sizes_are_rounded_up_to_whole_mib() {
        assert_eq!(whole_mib(1), MIB);
        assert_eq!(whole_mib(MIB), MIB);
        assert_eq!(whole_mib(MIB + 1), 2 * MIB);
    }
}
