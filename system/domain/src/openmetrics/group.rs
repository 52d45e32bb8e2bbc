//! The samples of one metric (a label set, less `le` or `quantile`) come
//! together, their timestamps never go back, and each histogram point (the
//! samples of one metric at one timestamp) is whole and consistent.

use std::borrow::Cow;
use std::collections::HashSet;

use super::family::{Family, Kind, Role};
use super::line::{Label, Sample};
use super::number;
use crate::exposition::ParseError;

/// A metric's identity within its family: its labels sorted by name, less the
/// one that tells its samples apart (`le`, `quantile`, a stateset's state).
type Key<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// The metrics of the current family.
#[derive(Debug, Default)]
pub(super) struct Groups<'a> {
    seen: HashSet<Key<'a>>,
    current: Option<Group<'a>>,
}

#[derive(Debug)]
struct Group<'a> {
    key: Key<'a>,
    /// Whether a sample of it was read.
    started: bool,
    /// Whether its samples have timestamps: all of them or none.
    stamped: bool,
    last_ts: f64,
    point: Point,
}

/// A histogram point as read so far.
#[derive(Debug, Default)]
struct Point {
    ts: Option<f64>,
    samples: usize,
    last_line: usize,
    last_le: Option<f64>,
    last_bucket: f64,
    inf_bucket: Option<f64>,
    negative_buckets: bool,
    count: Option<(f64, usize)>,
    sum: Option<(f64, usize)>,
}

impl<'a> Groups<'a> {
    /// Places a sample in its metric, checking order and histogram rules.
    pub fn add(
        &mut self,
        family: &Family<'_>,
        role: Role,
        sample: &Sample<'a>,
        labels: &[Label<'a>],
        line: usize,
    ) -> Result<(), ParseError> {
        let apart = distinguishing_label(family);
        let same = self
            .current
            .as_ref()
            .is_some_and(|g| same_metric(&g.key, labels, apart));
        if !same {
            self.start(family, labels, apart, line)?;
        }
        let Some(group) = self.current.as_mut() else {
            return Ok(());
        };
        group.timestamp(family, sample.timestamp, line)?;
        if histogram_like(family.kind) {
            group.point.add(role, sample, labels, line)?;
        }
        Ok(())
    }

    /// Ends the family: checks its last point and forgets its metrics.
    pub fn finish(&mut self, family: &Family<'_>) -> Result<(), ParseError> {
        self.seen.clear();
        match self.current.take() {
            Some(group) => group.point.finish(family, &group.key),
            None => Ok(()),
        }
    }

    fn start(
        &mut self,
        family: &Family<'_>,
        labels: &[Label<'a>],
        apart: &str,
        line: usize,
    ) -> Result<(), ParseError> {
        if let Some(group) = self.current.take() {
            group.point.finish(family, &group.key)?;
        }
        let mut key: Key<'a> = labels
            .iter()
            .filter(|l| l.name != apart)
            .map(|l| (l.name, l.value.clone()))
            .collect();
        key.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if self.seen.contains(&key) {
            return Err(at_line(
                line,
                format!(
                    "the samples of {}{} are not together: they appeared before, separated by others",
                    family.name,
                    describe(&key)
                ),
            ));
        }
        self.seen.insert(key.clone());
        self.current = Some(Group {
            key,
            started: false,
            stamped: false,
            last_ts: f64::NEG_INFINITY,
            point: Point::default(),
        });
        Ok(())
    }
}

impl Group<'_> {
    fn timestamp(
        &mut self,
        family: &Family<'_>,
        ts: Option<f64>,
        line: usize,
    ) -> Result<(), ParseError> {
        let first = !std::mem::replace(&mut self.started, true);
        if first {
            self.stamped = ts.is_some();
        } else if self.stamped != ts.is_some() {
            return Err(at_line(
                line,
                format!(
                    "{}{} mixes samples with and without timestamps",
                    family.name,
                    describe(&self.key)
                ),
            ));
        }
        let Some(ts) = ts else {
            return Ok(());
        };
        if ts < self.last_ts {
            return Err(at_line(
                line,
                format!(
                    "timestamps of {}{} go back ({ts} after {})",
                    family.name,
                    describe(&self.key),
                    self.last_ts
                ),
            ));
        }
        if !first && Some(ts) != self.point.ts {
            let point = std::mem::take(&mut self.point);
            point.finish(family, &self.key)?;
        }
        self.last_ts = ts;
        self.point.ts = Some(ts);
        Ok(())
    }
}

impl Point {
    fn add(
        &mut self,
        role: Role,
        sample: &Sample<'_>,
        labels: &[Label<'_>],
        line: usize,
    ) -> Result<(), ParseError> {
        self.samples += 1;
        self.last_line = line;
        match role {
            Role::Bucket => self.bucket(sample.value, labels, line)?,
            Role::Count | Role::GaugeCount => self.count = Some((sample.value, line)),
            Role::Sum | Role::GaugeSum => self.sum = Some((sample.value, line)),
            _ => {}
        }
        Ok(())
    }

    fn bucket(&mut self, value: f64, labels: &[Label<'_>], line: usize) -> Result<(), ParseError> {
        let Some(label) = labels.iter().find(|l| l.name == "le") else {
            return Err(at_line(line, "a histogram bucket needs an \"le\" label"));
        };
        let le = number::value(&label.value).filter(|le| !le.is_nan());
        let Some(le) = le else {
            return Err(at_line(
                line,
                format!("le {:?} is not a number", label.value),
            ));
        };
        if le == f64::INFINITY && label.value != "+Inf" {
            return Err(at_line(
                line,
                format!(
                    "the last bucket is written le=\"+Inf\", not {:?}",
                    label.value
                ),
            ));
        }
        if let Some(last) = self.last_le.filter(|last| le <= *last) {
            return Err(at_line(
                line,
                format!("bucket le={:?} after le={last}: buckets go up", label.value),
            ));
        }
        if value < self.last_bucket {
            return Err(at_line(
                line,
                format!(
                    "bucket le={:?} counts {value}, less than the bucket before ({}): buckets are cumulative",
                    label.value, self.last_bucket
                ),
            ));
        }
        self.last_le = Some(le);
        self.last_bucket = value;
        self.negative_buckets |= le < 0.0;
        if le == f64::INFINITY {
            self.inf_bucket = Some(value);
        }
        Ok(())
    }

    /// Checks a whole histogram point: a +Inf bucket, a count that matches
    /// it, a sum and a count together, and a sum only where it means something.
    fn finish(self, family: &Family<'_>, key: &Key<'_>) -> Result<(), ParseError> {
        if self.samples == 0 {
            return Ok(());
        }
        let what = format!("{} {}{}", family.kind.as_str(), family.name, describe(key));
        let gauge = family.kind == Kind::GaugeHistogram;
        let (count, sum) = if gauge {
            ("_gcount", "_gsum")
        } else {
            ("_count", "_sum")
        };
        let Some(inf) = self.inf_bucket else {
            return Err(at_line(
                self.last_line,
                format!("{what} has no le=\"+Inf\" bucket"),
            ));
        };
        if let Some((value, line)) = self.count.filter(|(v, _)| *v != inf) {
            return Err(at_line(
                line,
                format!("{what}: {count} is {value} but the +Inf bucket is {inf}"),
            ));
        }
        match (self.count, self.sum) {
            (Some(_), Some((value, line))) => {
                if !gauge && self.negative_buckets {
                    return Err(at_line(
                        line,
                        format!("{what} has negative buckets, so it may not have a {sum}"),
                    ));
                }
                if gauge && !self.negative_buckets && value < 0.0 {
                    return Err(at_line(
                        line,
                        format!("{what}: {sum} is negative without negative buckets"),
                    ));
                }
                Ok(())
            }
            (Some((_, line)), None) if gauge || !self.negative_buckets => {
                Err(at_line(line, format!("{what} has a {count} but no {sum}")))
            }
            (None, Some((_, line))) => {
                Err(at_line(line, format!("{what} has a {sum} but no {count}")))
            }
            _ => Ok(()),
        }
    }
}

fn histogram_like(kind: Kind) -> bool {
    matches!(kind, Kind::Histogram | Kind::GaugeHistogram)
}

/// The label that tells a metric's samples apart (none: a name no label has).
fn distinguishing_label<'f>(family: &Family<'f>) -> &'f str {
    match family.kind {
        Kind::Histogram | Kind::GaugeHistogram => "le",
        Kind::Summary => "quantile",
        Kind::StateSet => family.name,
        _ => "",
    }
}

/// Whether `labels`, less `apart`, are the sorted `key`.
fn same_metric(key: &Key<'_>, labels: &[Label<'_>], apart: &str) -> bool {
    let mut matched = 0;
    for label in labels.iter().filter(|l| l.name != apart) {
        match key.binary_search_by(|(name, _)| (*name).cmp(label.name)) {
            Ok(i) if key[i].1 == label.value => matched += 1,
            _ => return false,
        }
    }
    matched == key.len()
}

fn describe(key: &Key<'_>) -> String {
    if key.is_empty() {
        return String::new();
    }
    let labels: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", labels.join(","))
}

fn at_line(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        column: 1,
        message: message.into(),
    }
}
