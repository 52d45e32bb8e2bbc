//! The faults in force on a link; every connection reads them as data flows.

use std::time::Duration;

/// Faults on a link, in both directions. The default lets traffic pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults {
    /// Toxiproxy's proxy `enabled`: when false, connections are refused and open ones closed.
    pub enabled: bool,
    /// `latency` toxic: each chunk of data waits this long.
    pub latency: Duration,
    /// `latency` toxic's jitter: up to this much more or less, at random.
    pub jitter: Duration,
    /// `bandwidth` toxic: bytes per second, per direction.
    pub bandwidth: Option<u64>,
    /// `timeout` toxic: no data passes, and nothing is closed unless `timeout_after` says when.
    pub timeout: bool,
    /// `timeout` toxic's `timeout` above 0: the black hole closes the connection after this long.
    pub timeout_after: Option<Duration>,
    /// `reset_peer` toxic: connections are reset (TCP RST) as data flows.
    pub reset: bool,
    /// `limit_data` toxic: a connection is closed after this many bytes per direction.
    pub limit_data: Option<u64>,
    /// `slow_close` toxic: a connection's close waits this long.
    pub slow_close: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            enabled: true,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth: None,
            timeout: false,
            timeout_after: None,
            reset: false,
            limit_data: None,
            slow_close: Duration::ZERO,
        }
    }
}

/// The faults of each direction: client to server (Toxiproxy's upstream)
/// and server to client (downstream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Streams {
    pub upstream: Faults,
    pub downstream: Faults,
}

impl Streams {
    /// The same faults both ways.
    pub fn both(faults: Faults) -> Streams {
        Streams {
            upstream: faults.clone(),
            downstream: faults,
        }
    }

    /// Whether the link is up: a link is down when either direction says so.
    pub fn enabled(&self) -> bool {
        self.upstream.enabled && self.downstream.enabled
    }
}

impl Faults {
    /// The wait before a chunk passes: the latency, moved by up to the jitter.
    pub fn delay(&self) -> Duration {
        if self.jitter.is_zero() {
            return self.latency;
        }
        let jitter = self.jitter.as_micros() as i64;
        let moved = self.latency.as_micros() as i64 + rand::random_range(-jitter..=jitter);
        Duration::from_micros(moved.max(0) as u64)
    }

    /// How long `bytes` take at the bandwidth limit, if there is one.
    pub fn transfer_time(&self, bytes: usize) -> Duration {
        match self.bandwidth {
            Some(rate) if rate > 0 => Duration::from_secs_f64(bytes as f64 / rate as f64),
            _ => Duration::ZERO,
        }
    }

    /// The largest chunk to pass at once: small enough to keep a bandwidth
    /// limit smooth (a tenth of a second's worth).
    pub fn chunk(&self) -> usize {
        match self.bandwidth {
            Some(rate) => ((rate / 10) as usize).clamp(1, 16 * 1024),
            None => 16 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_keeps_the_delay_within_its_range() {
        let faults = Faults {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(20),
            ..Faults::default()
        };
        for _ in 0..200 {
            let d = faults.delay();
            assert!(
                d >= Duration::from_millis(80) && d <= Duration::from_millis(120),
                "{d:?}"
            );
        }
    }

    #[test]
    fn a_bandwidth_limit_spreads_bytes_over_time_in_small_chunks() {
        let faults = Faults {
            bandwidth: Some(2_000),
            ..Faults::default()
        };
        assert_eq!(faults.transfer_time(1_000), Duration::from_millis(500));
        assert_eq!(faults.chunk(), 200);
        assert_eq!(Faults::default().transfer_time(1_000_000), Duration::ZERO);
    }
}
