//! What each type asks of one sample: its value, the labels its role needs or
//! forbids, and whether it may carry an exemplar.

use super::family::{Family, Kind, Role};
use super::line::{Label, Sample};
use super::number;

/// Where in the line (byte offset) a rule is broken, and how.
pub(super) type Broken = (usize, String);

/// Checks one sample against the rules of its family's type.
pub(super) fn check(
    family: &Family<'_>,
    role: Role,
    sample: &Sample<'_>,
    labels: &[Label<'_>],
) -> Result<(), Broken> {
    let kind = family.kind;
    if let Some(at) = sample.exemplar_at {
        let allowed = matches!(
            (kind, role),
            (Kind::Counter, Role::Total) | (Kind::Histogram | Kind::GaugeHistogram, Role::Bucket)
        );
        if !allowed {
            return Err((
                at,
                format!(
                    "an exemplar on {:?}: only a counter's _total and a histogram's _bucket samples may have one",
                    sample.name
                ),
            ));
        }
    }
    let value = sample.value;
    let at_value = sample.series.len() + 1;
    match (kind, role) {
        (Kind::Counter, Role::Total)
        | (Kind::Histogram, Role::Bucket | Role::Count | Role::Sum)
        | (Kind::GaugeHistogram, Role::Bucket | Role::GaugeCount)
        | (Kind::Summary, Role::Count | Role::Sum)
            if value.is_nan() || value < 0.0 =>
        {
            return Err((
                at_value,
                format!("{:?} counts, so it may not be {value}", sample.name),
            ));
        }
        (Kind::GaugeHistogram, Role::GaugeSum) if value.is_nan() => {
            return Err((at_value, format!("{:?} may not be NaN", sample.name)));
        }
        (Kind::Info, Role::Info) if value != 1.0 => {
            return Err((
                at_value,
                format!("an info sample's value is 1, not {value}"),
            ));
        }
        (Kind::StateSet, Role::Plain) => return state(family, sample, labels),
        (Kind::Summary, Role::Plain) => return quantile(sample, labels),
        _ => {}
    }
    let reserved = match kind {
        Kind::Histogram | Kind::GaugeHistogram if role != Role::Bucket => "le",
        Kind::Summary => "quantile",
        _ => return Ok(()),
    };
    match labels.iter().find(|l| l.name == reserved) {
        Some(label) => Err((
            label.at,
            format!("{:?} may not have a {reserved:?} label", sample.name),
        )),
        None => Ok(()),
    }
}

/// A stateset sample names its state in a label named after the family, and is 0 or 1.
fn state(family: &Family<'_>, sample: &Sample<'_>, labels: &[Label<'_>]) -> Result<(), Broken> {
    if !labels.iter().any(|l| l.name == family.name) {
        return Err((
            0,
            format!(
                "a stateset sample needs a label named after its family, {:?}",
                family.name
            ),
        ));
    }
    if sample.value != 0.0 && sample.value != 1.0 {
        return Err((
            sample.series.len() + 1,
            format!("a stateset sample is 0 or 1, not {}", sample.value),
        ));
    }
    Ok(())
}

/// A summary's quantile sample has a `quantile` label between 0 and 1, and a value that is not negative.
fn quantile(sample: &Sample<'_>, labels: &[Label<'_>]) -> Result<(), Broken> {
    let Some(label) = labels.iter().find(|l| l.name == "quantile") else {
        return Err((
            0,
            format!(
                "summary sample {:?} needs a \"quantile\" label",
                sample.name
            ),
        ));
    };
    let q = number::value(&label.value);
    if !q.is_some_and(|q| (0.0..=1.0).contains(&q)) {
        return Err((
            label.at,
            format!("quantile {:?} is not a number between 0 and 1", label.value),
        ));
    }
    if sample.value < 0.0 {
        return Err((
            sample.series.len() + 1,
            format!("a quantile's value may not be negative ({})", sample.value),
        ));
    }
    Ok(())
}
