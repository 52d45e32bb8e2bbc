//! The memory the checker's settings let it reach, and the memory it is given.
//!
//! Every structure that grows with its input is bounded by a setting, so the
//! checker's memory has an upper bound that follows from its settings alone
//! ([`MemoryBudget`]). At start-up it is compared with the container's limit
//! (cgroup v2 `memory.max` or v1 `memory.limit_in_bytes`): a configuration
//! that cannot fit is refused, naming the settings, instead of being killed by
//! the kernel the first time a big target answers.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use metr_domain::TargetKind;

use crate::config::{Settings, TargetSettings};

/// Bytes one series costs in a target's series table: its canonical text
/// (about 40 bytes for a typical series, plus the allocator's header), its
/// slot (id, last sample), its place in the lookup table, and an alias when
/// the target spells it differently, with the tables' spare capacity.
/// Measured: 112 bytes a series for 200,000 gometr series spelt canonically
/// (`SeriesTable::memory_bytes`), under 192 aliased (the storage crate's test
/// `two_hundred_thousand_series_fit_in_the_bytes_per_series_the_checker_budgets`).
pub const SERIES_BYTES: u64 = 192;

/// Series an `http` target records: its probe series, whatever it answers.
pub const HTTP_SERIES: u64 = 16;

/// Bytes one sample costs while it waits to be written (24 in the batch).
pub const SAMPLE_BYTES: u64 = 24;
/// Bytes one sample costs while its batch is written: its id looked up (16),
/// its slot in a block row and the COPY buffer.
const WRITE_BYTES_PER_SAMPLE: u64 = 48;

/// Everything that does not grow with the input: code, the runtime and its
/// threads, HTTP clients and the connection pool, the allocator's slack.
/// Measured: 10 MiB resident at start, 26 MiB at steady state with two small
/// targets.
pub const BASE_BYTES: u64 = 48 << 20;

/// Series a target's table may hold: a full scrape's worth of series, and as
/// many that came and went (churn). The table is replaced by a fresh one
/// before a scrape, which may bring up to `sample_limit` new series, could
/// push it past this; a target that keeps its series never has it replaced.
pub fn max_series(sample_limit: usize) -> usize {
    sample_limit.saturating_mul(2)
}

/// An upper bound of the checker's memory, term by term, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBudget {
    pub base: u64,
    /// Series tables: per scraped target, a table of up to twice its
    /// `sample_limit` series, and the table it replaced while batches still
    /// use it.
    pub series: u64,
    /// Checks in flight (at most `concurrency`, one per target): a body of up
    /// to `max_body_bytes` (twice, while it is assembled) and the scrape's
    /// samples (twice, while their vector grows).
    pub scrapes: u64,
    /// Samples waiting to be written (`writer.buffer_samples`), plus the batch
    /// being written and the one being filled, and the write's own work.
    pub buffer: u64,
}

impl MemoryBudget {
    pub fn of(settings: &Settings) -> MemoryBudget {
        let owned: Vec<&TargetSettings> = settings
            .targets
            .iter()
            .filter(|t| settings.shard.owns(&t.name))
            .collect();
        // Samples one check of the target may record.
        let samples_of = |t: &TargetSettings| match t.kind {
            TargetKind::Prometheus => t.sample_limit(settings) as u64,
            TargetKind::Http => HTTP_SERIES,
        };
        let series = owned
            .iter()
            .map(|t| match t.kind {
                // The table, and the one it replaced while buffered batches still use it.
                TargetKind::Prometheus => {
                    2 * max_series(t.sample_limit(settings)) as u64 * SERIES_BYTES
                }
                TargetKind::Http => HTTP_SERIES * SERIES_BYTES,
            })
            .sum();
        let mut largest: Vec<u64> = owned.iter().map(|t| samples_of(t)).collect();
        largest.sort_unstable_by(|a, b| b.cmp(a));
        let in_flight = settings.concurrency.min(owned.len());
        let scrapes = largest
            .iter()
            .take(in_flight)
            .map(|samples| 2 * settings.max_body_bytes as u64 + 2 * samples * SAMPLE_BYTES)
            .sum();
        let batch = settings.writer.batch_samples as u64 + largest.first().copied().unwrap_or(0);
        let buffer = (settings.writer.buffer_samples as u64 + 2 * batch) * SAMPLE_BYTES
            + batch * WRITE_BYTES_PER_SAMPLE;
        MemoryBudget {
            base: BASE_BYTES,
            series,
            scrapes,
            buffer,
        }
    }

    pub fn total(&self) -> u64 {
        self.base + self.series + self.scrapes + self.buffer
    }

    /// Each term in MiB, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{} = {} base + {} series tables (sample_limit per target) + {} scrapes in flight \
             (concurrency, max_body_bytes, sample_limit) + {} write buffer (writer.buffer_samples, writer.batch_samples)",
            mib(self.total()),
            mib(self.base),
            mib(self.series),
            mib(self.scrapes),
            mib(self.buffer)
        )
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The memory limit of the checker's cgroup, `None` when unlimited or unknown.
pub fn cgroup_limit() -> Option<u64> {
    cgroup_limit_in(Path::new("/sys/fs/cgroup"), &read_self_cgroup())
}

fn read_self_cgroup() -> String {
    std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default()
}

/// The limit under `root` for a process whose `/proc/self/cgroup` is `self_cgroup`.
fn cgroup_limit_in(root: &Path, self_cgroup: &str) -> Option<u64> {
    // v2: one hierarchy ("0::/path"); inside a container's namespace the path is "/".
    let v2_path = self_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    let v2 = [
        root.join(v2_path.trim_start_matches('/'))
            .join("memory.max"),
        root.join("memory.max"),
    ];
    // v1: the memory controller's own hierarchy.
    let v1_path = self_cgroup
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then_some(path)
        })
        .unwrap_or("/");
    let v1 = [
        root.join("memory")
            .join(v1_path.trim_start_matches('/'))
            .join("memory.limit_in_bytes"),
        root.join("memory/memory.limit_in_bytes"),
    ];
    v2.iter()
        .chain(&v1)
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| parse_limit(&text))
}

/// `max`, or v1's "no limit" (a page-rounded `i64::MAX`), mean unlimited.
fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    let bytes: u64 = text.parse().ok()?;
    (bytes < (1 << 60)).then_some(bytes)
}

/// Resident memory of this process (`VmRSS` of `/proc/self/status`).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Hands memory the allocator keeps after frees back to the kernel (glibc's
/// `malloc_trim`): after a big scrape, glibc keeps its peak otherwise.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The checker's resident memory as last measured, against its limit.
#[derive(Debug)]
pub struct MemoryWatch {
    limit: Option<u64>,
    resident: AtomicU64,
}

/// Share of the limit from which memory pressure is logged.
pub const WARN_AT: f64 = 0.8;

impl MemoryWatch {
    pub fn new(limit: Option<u64>) -> Self {
        MemoryWatch {
            limit,
            resident: AtomicU64::new(resident_bytes().unwrap_or(0)),
        }
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Measures resident memory again; returns it.
    pub fn refresh(&self) -> u64 {
        let resident = resident_bytes().unwrap_or(0);
        self.resident.store(resident, Ordering::Relaxed);
        resident
    }

    pub fn resident(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }

    /// Whether the process can take `extra` more bytes without reaching its
    /// limit; if not, why, in words for a failed scrape.
    pub fn admit(&self, extra: u64) -> Result<(), String> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        // The watch measures every second; only a scrape near the limit pays
        // for measuring again, so scrapes do not each read /proc.
        if self.resident().saturating_add(extra) <= limit / 10 * 9 {
            return Ok(());
        }
        let resident = self.refresh();
        if resident.saturating_add(extra) <= limit {
            return Ok(());
        }
        Err(format!(
            "not stored: the checker holds {} of its {} memory limit and recording this scrape could take {} more",
            mib(resident),
            mib(limit),
            mib(extra)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        Settings::load(Some(&path), std::iter::empty()).unwrap()
    }

    const TWO_TARGETS: &str = "
database_url: postgres://u:p@db/metr
targets:
  - { name: gometr, kind: prometheus, url: 'http://gometr:8080' }
  - { name: gometr-http, kind: http, url: 'http://gometr:8080/health' }
";

    #[test]
    fn the_default_stack_fits_the_default_container_with_room_to_spare() {
        let budget = MemoryBudget::of(&settings(TWO_TARGETS));
        eprintln!("{}", budget.describe());
        assert!(budget.total() < 400 << 20, "{}", budget.describe());
        assert!(budget.total() > 100 << 20, "{}", budget.describe());
    }

    #[test]
    fn every_limit_raises_the_bound() {
        let base = MemoryBudget::of(&settings(TWO_TARGETS)).total();
        for extra in [
            "sample_limit: 400000\n",
            "max_body_bytes: 20971520\n",
            "writer: {buffer_samples: 2000000}\n",
        ] {
            let raised = MemoryBudget::of(&settings(&format!("{TWO_TARGETS}{extra}"))).total();
            assert!(raised > base, "{extra}: {raised} <= {base}");
        }
    }

    #[test]
    fn limits_are_read_from_cgroup_v1_and_v2_and_unlimited_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(cgroup_limit_in(root, ""), None, "no cgroup files");
        std::fs::create_dir_all(root.join("memory/docker/abc")).unwrap();
        std::fs::write(
            root.join("memory/docker/abc/memory.limit_in_bytes"),
            "536870912\n",
        )
        .unwrap();
        let v1 = "12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n";
        assert_eq!(cgroup_limit_in(root, v1), Some(512 << 20));
        std::fs::write(
            root.join("memory/docker/abc/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        assert_eq!(cgroup_limit_in(root, v1), None, "v1's unlimited");
        std::fs::write(root.join("memory.max"), "268435456\n").unwrap();
        assert_eq!(cgroup_limit_in(root, "0::/\n"), Some(256 << 20));
        std::fs::write(root.join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_limit_in(root, "0::/\n"), None);
    }

    #[test]
    fn this_process_knows_its_resident_memory() {
        let rss = resident_bytes().expect("/proc/self/status");
        assert!(rss > 1 << 20, "{rss}");
    }

    #[test]
    fn a_scrape_that_would_reach_the_limit_is_refused_with_the_figures() {
        let rss = resident_bytes().unwrap();
        let watch = MemoryWatch::new(Some(rss + (64 << 20)));
        assert!(watch.admit(1 << 20).is_ok());
        let err = watch.admit(256 << 20).unwrap_err();
        assert!(
            err.contains("memory limit") && err.contains("256 MiB more"),
            "{err}"
        );
        assert!(
            MemoryWatch::new(None).admit(u64::MAX).is_ok(),
            "no limit, no refusal"
        );
    }
}
