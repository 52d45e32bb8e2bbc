//! The `realistic` series profile: the mix of series a node_exporter exposes,
//! so that storage benches measure data that compresses like users' data.
//!
//! Every block of [`CYCLE`] samples holds counters that rise by varying
//! amounts (CPU seconds in hundredths, bytes as integers, operations that
//! often stand still), gauges that random-walk at the precision real ones
//! have (memory in pages, load with 2 decimals, temperatures with 1), a few
//! constants and one histogram (buckets, `_sum`, `_count`). Values advance one
//! step per scrape and depend only on the seed and the step, never on time:
//! two gometrs with the same seed expose the same values at the same scrape.

use std::fmt::Write;

/// Samples per block of the mix; `extra_series` need not be a multiple.
pub const CYCLE: u32 = 32;

/// What a slot of the cycle holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Rises by up to `max_step` units a scrape; `still` in 8 scrapes stand still.
    Counter { max_step: u64, still: u64 },
    /// Walks by up to `max_step` units a scrape within `[low, high]`.
    Gauge { max_step: u64, low: i64, high: i64 },
    /// Never changes.
    Constant,
    /// A bucket (by position), `_sum` or `_count` of the cycle's histogram.
    Histogram,
}

/// One metric family of the cycle: its slots, unit and how it is printed.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    label: &'static str,
    values: &'static [&'static str],
    /// First slot of the cycle this family fills.
    first: u32,
    /// Decimals printed: values are held as integers of 10^-decimals.
    decimals: usize,
    /// Integer units are multiplied by this when printed (4096-byte pages).
    unit: i64,
    series: Kind,
}

const BUCKETS: [&str; 9] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf",
];
/// Histogram slots: the buckets, then `_sum` and `_count`.
const HISTOGRAM_FIRST: u32 = 21;
const HISTOGRAM_SLOTS: u32 = BUCKETS.len() as u32 + 2;

const FAMILIES: &[Family] = &[
    Family {
        name: "gometr_cpu_seconds_total",
        help: "Seconds the CPUs spent in each mode.",
        kind: "counter",
        label: "mode",
        values: &["user", "system", "idle", "iowait", "irq"],
        first: 0,
        decimals: 2,
        unit: 1,
        series: Kind::Counter {
            max_step: 120,
            still: 0,
        },
    },
    Family {
        name: "gometr_network_transmit_bytes_total",
        help: "Bytes transmitted by each device.",
        kind: "counter",
        label: "device",
        values: &["eth0", "eth1", "lo"],
        first: 5,
        decimals: 0,
        unit: 1,
        series: Kind::Counter {
            max_step: 250_000,
            still: 1,
        },
    },
    Family {
        name: "gometr_disk_writes_completed_total",
        help: "Writes completed by each disk.",
        kind: "counter",
        label: "device",
        values: &["sda", "sdb"],
        first: 8,
        decimals: 0,
        unit: 1,
        series: Kind::Counter {
            max_step: 40,
            still: 4,
        },
    },
    Family {
        name: "gometr_memory_bytes",
        help: "Memory by use, in bytes (whole pages).",
        kind: "gauge",
        label: "use",
        values: &["used", "cached", "buffers", "free"],
        first: 10,
        decimals: 0,
        unit: 4096,
        series: Kind::Gauge {
            max_step: 300,
            low: 10_000,
            high: 4_000_000,
        },
    },
    Family {
        name: "gometr_load",
        help: "Load average.",
        kind: "gauge",
        label: "window",
        values: &["1m", "5m"],
        first: 14,
        decimals: 2,
        unit: 1,
        series: Kind::Gauge {
            max_step: 15,
            low: 0,
            high: 1_600,
        },
    },
    Family {
        name: "gometr_temperature_celsius",
        help: "Temperature of each sensor.",
        kind: "gauge",
        label: "sensor",
        values: &["core0", "core1"],
        first: 16,
        decimals: 1,
        unit: 1,
        series: Kind::Gauge {
            max_step: 5,
            low: 300,
            high: 900,
        },
    },
    Family {
        name: "gometr_filesystem_size_bytes",
        help: "Size of each filesystem.",
        kind: "gauge",
        label: "mountpoint",
        values: &["/", "/boot", "/var"],
        first: 18,
        decimals: 0,
        unit: 4096,
        series: Kind::Constant,
    },
];

/// The histogram's family (`_bucket`, `_sum`, `_count`).
const HISTOGRAM: &str = "gometr_request_duration_seconds";

/// The state of every realistic series, advanced one step per scrape.
#[derive(Debug, Clone)]
pub struct Realistic {
    seed: u64,
    step: u64,
    /// Integer units of each sample slot (histogram `_sum` is in `sums`).
    units: Vec<i64>,
    /// `_sum` of each cycle's histogram, a float as real ones are.
    sums: Vec<f64>,
}

impl Realistic {
    /// Series of `seed` before their first scrape.
    pub fn new(seed: u64) -> Self {
        Realistic {
            seed,
            step: 0,
            units: Vec::new(),
            sums: Vec::new(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Advances every series one step and appends exactly `samples` samples'
    /// lines (with their families' HELP and TYPE lines) to `text`.
    pub fn render(&mut self, samples: u32, text: &mut String) {
        self.grow(samples);
        self.advance();
        let cycles = samples.div_ceil(CYCLE);
        for family in FAMILIES {
            let width = family.values.len() as u32;
            let present =
                |c: u32| (0..width).filter(move |&k| c * CYCLE + family.first + k < samples);
            if !(0..cycles).any(|c| present(c).next().is_some()) {
                continue;
            }
            let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
            let _ = writeln!(text, "# TYPE {} {}", family.name, family.kind);
            for c in 0..cycles {
                for k in present(c) {
                    let i = (c * CYCLE + family.first + k) as usize;
                    let _ = write!(
                        text,
                        "{}{{index=\"{c}\",{}=\"{}\"}} ",
                        family.name, family.label, family.values[k as usize]
                    );
                    write_units(text, self.units[i] * family.unit, family.decimals);
                    text.push('\n');
                }
            }
        }
        self.render_histograms(samples, cycles, text);
    }

    fn render_histograms(&self, samples: u32, cycles: u32, text: &mut String) {
        if samples <= HISTOGRAM_FIRST {
            return;
        }
        let _ = writeln!(text, "# HELP {HISTOGRAM} Duration of requests.");
        let _ = writeln!(text, "# TYPE {HISTOGRAM} histogram");
        for c in 0..cycles {
            let base = c * CYCLE + HISTOGRAM_FIRST;
            for (k, le) in BUCKETS.iter().enumerate() {
                let slot = base + k as u32;
                if slot < samples {
                    let _ = writeln!(
                        text,
                        "{HISTOGRAM}_bucket{{index=\"{c}\",le=\"{le}\"}} {}",
                        self.units[slot as usize]
                    );
                }
            }
            let sum = base + BUCKETS.len() as u32;
            if sum < samples {
                let _ = writeln!(
                    text,
                    "{HISTOGRAM}_sum{{index=\"{c}\"}} {}",
                    self.sums[c as usize]
                );
            }
            if sum + 1 < samples {
                let _ = writeln!(
                    text,
                    "{HISTOGRAM}_count{{index=\"{c}\"}} {}",
                    self.units[sum as usize + 1]
                );
            }
        }
    }

    /// Makes room for `samples` slots; new series start from their initial value.
    fn grow(&mut self, samples: u32) {
        let have = self.units.len() as u32;
        for i in have..samples.max(have) {
            self.units.push(self.initial(i));
        }
        let cycles = (self.units.len() as u32).div_ceil(CYCLE) as usize;
        self.sums.resize(cycles, 0.0);
    }

    fn initial(&self, i: u32) -> i64 {
        let r = mix(self.seed, u64::from(i), u64::MAX);
        match kind_of(i % CYCLE) {
            Kind::Counter { max_step, .. } => (r % (max_step * 10_000)) as i64,
            Kind::Gauge { low, high, .. } => low + (r % (high - low) as u64) as i64,
            Kind::Constant => (1 << 18) + (r % (1 << 22)) as i64,
            Kind::Histogram => 0,
        }
    }

    fn advance(&mut self) {
        let step = self.step;
        self.step += 1;
        for i in 0..self.units.len() {
            let r = mix(self.seed, i as u64, step);
            let units = &mut self.units[i];
            match kind_of(i as u32 % CYCLE) {
                Kind::Counter { max_step, still } => {
                    if r % 8 >= still {
                        *units += ((r >> 8) % (max_step + 1)) as i64;
                    }
                }
                Kind::Gauge {
                    max_step,
                    low,
                    high,
                } => {
                    let delta = ((r >> 8) % (2 * max_step + 1)) as i64 - max_step as i64;
                    let next = *units + delta;
                    // Reflected at the bounds, so the walk stays plausible.
                    *units = if next < low || next > high {
                        *units - delta
                    } else {
                        next
                    };
                }
                Kind::Constant | Kind::Histogram => {}
            }
        }
        for c in 0..self.sums.len() {
            self.observe(c, step);
        }
    }

    /// Adds one scrape's worth of observations to cycle `c`'s histogram.
    fn observe(&mut self, c: usize, step: u64) {
        let base = c * CYCLE as usize + HISTOGRAM_FIRST as usize;
        let r = mix(self.seed ^ 0x9e37, c as u64, step);
        let count = r % 12;
        for n in 0..count {
            let o = mix(self.seed, (c as u64) << 32 | n, step);
            // Mostly fast, a long tail: 1 ms to about 2 s.
            let seconds = 0.001 * (1.0 + (o % 1000) as f64).powf(1.1);
            for (k, le) in BUCKETS.iter().enumerate() {
                let bound = le.parse::<f64>().unwrap_or(f64::INFINITY);
                if seconds <= bound && base + k < self.units.len() {
                    self.units[base + k] += 1;
                }
            }
            self.sums[c] += seconds;
            let count_slot = base + BUCKETS.len() + 1;
            if count_slot < self.units.len() {
                self.units[count_slot] += 1;
            }
        }
    }
}

fn kind_of(slot: u32) -> Kind {
    if slot >= HISTOGRAM_FIRST {
        debug_assert!(slot < HISTOGRAM_FIRST + HISTOGRAM_SLOTS);
        return Kind::Histogram;
    }
    FAMILIES
        .iter()
        .find(|f| (f.first..f.first + f.values.len() as u32).contains(&slot))
        .map_or(Kind::Constant, |f| f.series)
}

/// `units` × 10^-decimals, printed with exactly `decimals` decimals.
fn write_units(text: &mut String, units: i64, decimals: usize) {
    if decimals == 0 {
        let _ = write!(text, "{units}");
    } else {
        let scale = 10_i64.pow(decimals as u32);
        let _ = write!(text, "{}.{:0>decimals$}", units / scale, units % scale);
    }
}

/// SplitMix64 of (seed, series, step): a stable function of its inputs, so
/// values do not change with a random-number crate's version.
fn mix(seed: u64, series: u64, step: u64) -> u64 {
    let mut z = seed
        .wrapping_add(series.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(step.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrapes(seed: u64, samples: u32, n: usize) -> Vec<String> {
        let mut r = Realistic::new(seed);
        (0..n)
            .map(|_| {
                let mut text = String::new();
                r.render(samples, &mut text);
                text
            })
            .collect()
    }

    fn samples_of(text: &str) -> Vec<metr_domain::exposition::ParsedSample> {
        metr_domain::exposition::parse(text).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_values_and_another_seed_others() {
        assert_eq!(scrapes(7, 100, 5), scrapes(7, 100, 5));
        assert_ne!(scrapes(7, 100, 5), scrapes(8, 100, 5));
    }

    #[test]
    fn every_count_of_samples_is_exposed_exactly() {
        for n in [0, 1, 20, 21, 22, 31, 32, 33, 100, 1000] {
            let text = &scrapes(1, n, 2)[1];
            assert_eq!(
                samples_of(text).len(),
                n as usize,
                "{n} samples asked:\n{text}"
            );
        }
    }

    #[test]
    fn counters_never_decrease_and_most_series_move() {
        let texts = scrapes(3, 320, 60);
        let parsed: Vec<_> = texts.iter().map(|t| samples_of(t)).collect();
        let mut moved = 0;
        for i in 0..parsed[0].len() {
            let name = &parsed[0][i].name;
            let counter = name.ends_with("_total")
                || name.ends_with("_bucket")
                || name.ends_with("_count")
                || name.ends_with("_sum");
            let values: Vec<f64> = parsed.iter().map(|p| p[i].value).collect();
            if counter {
                assert!(
                    values.windows(2).all(|w| w[1] >= w[0]),
                    "{name} decreased: {values:?}"
                );
            }
            moved += usize::from(values.windows(2).any(|w| w[1] != w[0]));
        }
        assert!(
            moved > parsed[0].len() * 3 / 4,
            "only {moved} of {} series moved",
            parsed[0].len()
        );
    }

    #[test]
    fn gauges_keep_their_precision() {
        let text = &scrapes(5, 64, 10)[9];
        for line in text.lines().filter(|l| l.starts_with("gometr_load{")) {
            let value = line.rsplit(' ').next().unwrap();
            assert_eq!(value.split('.').nth(1).map(str::len), Some(2), "{line}");
        }
        for line in text
            .lines()
            .filter(|l| l.starts_with("gometr_memory_bytes{"))
        {
            let value: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert_eq!(value % 4096, 0, "{line}");
        }
    }

    #[test]
    fn a_histogram_is_cumulative_and_counts_match() {
        let text = &scrapes(9, 32, 20)[19];
        let samples = samples_of(text);
        let buckets: Vec<f64> = samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .map(|s| s.value)
            .collect();
        assert_eq!(buckets.len(), BUCKETS.len());
        assert!(buckets.windows(2).all(|w| w[1] >= w[0]), "{buckets:?}");
        let count = samples
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .unwrap()
            .value;
        assert_eq!(*buckets.last().unwrap(), count);
    }
}
