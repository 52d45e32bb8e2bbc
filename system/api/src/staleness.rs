//! Whether monitoring of a target stopped: the API does not know the checker's
//! configured intervals, so it infers each target's interval from its checks.

use std::time::Duration;

use chrono::{DateTime, Utc};
use metr_domain::TargetSummary;
use serde::Serialize;

/// A target is stale when its last check is older than this many of its intervals.
pub const STALE_AFTER_INTERVALS: u32 = 3;

/// Least age at which a target counts as stale, whatever its interval: the
/// checker stores checks in batches (sealed every `writer.flush_interval`)
/// and a write may lag a second or two under load, so at sub-second
/// intervals 3 intervals would call a busy but healthy checker stopped
/// (seen in the suite: a last check 1.05 s old at a 250 ms interval).
pub const STALE_AT_LEAST: Duration = Duration::from_secs(5);

/// The interval assumed for a target with fewer than two checks: the checker's
/// default `interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// A target as `/api/v1/targets` lists it: the stored summary, unchanged, and
/// whether its checks stopped.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TargetState {
    #[serde(flatten)]
    pub summary: TargetSummary,
    /// The interval inferred from the target's checks: the median gap between
    /// its last six checks, or 15 s (the checker's default) with fewer than two.
    #[schema(minimum = 0.0)]
    pub interval_seconds: f64,
    /// Seconds since the last check (0 when its time is ahead of the API's
    /// clock); `null` when the target was never checked.
    #[schema(minimum = 0.0)]
    pub last_check_age_seconds: Option<f64>,
    /// `true` when the last check is older than 3 intervals (and at least
    /// 5 s): monitoring of this target stopped. `false` for a target never checked.
    pub stale: bool,
}

impl TargetState {
    /// The state of `summary` as of `now`.
    pub fn of(summary: TargetSummary, now: DateTime<Utc>) -> TargetState {
        let interval = inferred_interval(&summary.recent_checks).unwrap_or(DEFAULT_INTERVAL);
        let age = summary
            .last_checked_at
            .map(|last| (now - last).to_std().unwrap_or(Duration::ZERO));
        TargetState {
            interval_seconds: interval.as_secs_f64(),
            last_check_age_seconds: age.map(|a| a.as_secs_f64()),
            stale: age.is_some_and(|a| a > (interval * STALE_AFTER_INTERVALS).max(STALE_AT_LEAST)),
            summary,
        }
    }
}

/// The median gap between consecutive `checks` (any order); `None` with fewer
/// than two distinct times. The median, not the mean, so one pause (a restart,
/// an outage) among the last few checks does not stretch the interval.
pub fn inferred_interval(checks: &[DateTime<Utc>]) -> Option<Duration> {
    let mut times = checks.to_vec();
    times.sort();
    let mut gaps: Vec<Duration> = times
        .windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .filter(|gap| !gap.is_zero())
        .collect();
    gaps.sort();
    let middle = gaps.len() / 2;
    match gaps.len() {
        0 => None,
        n if n % 2 == 1 => Some(gaps[middle]),
        _ => Some((gaps[middle - 1] + gaps[middle]) / 2),
    }
}

/// When no target has been checked within 3 of its intervals although some
/// were checked before: the age of the newest check, else `None`.
pub fn checks_stopped(targets: &[TargetState]) -> Option<f64> {
    let checked: Vec<&TargetState> = targets
        .iter()
        .filter(|t| t.last_check_age_seconds.is_some())
        .collect();
    if checked.is_empty() || checked.iter().any(|t| !t.stale) {
        return None;
    }
    checked
        .iter()
        .filter_map(|t| t.last_check_age_seconds)
        .reduce(f64::min)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use metr_domain::TargetKind;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
    }

    fn summary(checks: &[i64]) -> TargetSummary {
        let mut recent: Vec<_> = checks.iter().map(|&s| at(s)).collect();
        recent.sort_by(|a, b| b.cmp(a));
        TargetSummary {
            name: "t".into(),
            kind: TargetKind::Http,
            url: "http://t/".into(),
            last_status: None,
            last_checked_at: recent.first().copied(),
            last_latency_ms: None,
            uptime_ratio: None,
            recent_checks: recent,
        }
    }

    #[test]
    fn the_interval_is_the_median_gap_so_one_pause_does_not_stretch_it() {
        assert_eq!(
            inferred_interval(&[at(0), at(10), at(20), at(300), at(310)]),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            inferred_interval(&[at(30), at(0), at(10)]),
            Some(Duration::from_secs(15)),
            "an even number of gaps: the mean of the middle two"
        );
        assert_eq!(inferred_interval(&[at(5)]), None);
        assert_eq!(inferred_interval(&[]), None);
    }

    #[test]
    fn stale_after_three_intervals() {
        let checks = [0, 2, 4, 6];
        let fresh = TargetState::of(summary(&checks), at(12));
        assert_eq!(fresh.interval_seconds, 2.0);
        assert_eq!(fresh.last_check_age_seconds, Some(6.0));
        assert!(!fresh.stale, "exactly 3 intervals is not yet stale");
        let stale = TargetState::of(summary(&checks), at(13));
        assert!(stale.stale);
    }

    #[test]
    fn at_short_intervals_a_check_a_write_late_is_not_stale() {
        let ms = |n: i64| at(0) + chrono::Duration::milliseconds(n);
        let mut every_250ms = summary(&[]);
        every_250ms.recent_checks = vec![ms(0), ms(250), ms(500), ms(750)];
        every_250ms.last_checked_at = Some(ms(750));
        let stale_at = |now: i64| TargetState::of(every_250ms.clone(), ms(now)).stale;
        assert!(!stale_at(750 + 1_050), "1.05 s at 250 ms is a late write");
        assert!(!stale_at(750 + 5_000));
        assert!(stale_at(750 + 5_001), "past the floor it is stale");
    }

    #[test]
    fn fewer_than_two_checks_fall_back_to_the_default_interval() {
        let once = TargetState::of(summary(&[0]), at(45));
        assert_eq!(once.interval_seconds, DEFAULT_INTERVAL.as_secs_f64());
        assert!(!once.stale);
        assert!(TargetState::of(summary(&[0]), at(46)).stale);
        let never = TargetState::of(summary(&[]), at(1_000_000));
        assert_eq!((never.last_check_age_seconds, never.stale), (None, false));
    }

    #[test]
    fn a_check_ahead_of_the_clock_is_age_zero() {
        let ahead = TargetState::of(summary(&[0, 10]), at(-5));
        assert_eq!(ahead.last_check_age_seconds, Some(0.0));
        assert!(!ahead.stale);
    }

    #[test]
    fn checks_stopped_only_when_every_checked_target_is_stale() {
        let now = at(100);
        let stale = TargetState::of(summary(&[0, 1, 2]), now);
        let older = TargetState::of(summary(&[0, 1]), now);
        let fresh = TargetState::of(summary(&[90, 95]), now);
        let never = TargetState::of(summary(&[]), now);
        assert_eq!(
            checks_stopped(&[stale.clone(), older.clone(), never.clone()]),
            Some(98.0)
        );
        assert_eq!(checks_stopped(&[stale, fresh]), None);
        assert_eq!(checks_stopped(&[never]), None, "nothing was ever checked");
        assert_eq!(checks_stopped(&[]), None);
    }
}
