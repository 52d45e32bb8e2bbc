//! Metric families: their types, the sample names each type allows, their
//! metadata, and the rule that no two families may claim the same sample name.

use std::collections::HashMap;

use super::line::{Meta, MetaKind};

/// A family's type, from `# TYPE`, `Unknown` when it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    StateSet,
    Info,
    Summary,
    Unknown,
}

/// What a sample is within its family, from its name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// No suffix: a gauge's, stateset's, unknown's value or a summary's quantile.
    Plain,
    Total,
    Created,
    Bucket,
    Count,
    Sum,
    GaugeCount,
    GaugeSum,
    Info,
}

impl Kind {
    /// The type a `# TYPE` line names; `untyped` is Prometheus text only.
    pub fn parse(word: &str) -> Option<Kind> {
        Some(match word {
            "counter" => Kind::Counter,
            "gauge" => Kind::Gauge,
            "histogram" => Kind::Histogram,
            "gaugehistogram" => Kind::GaugeHistogram,
            "stateset" => Kind::StateSet,
            "info" => Kind::Info,
            "summary" => Kind::Summary,
            "unknown" => Kind::Unknown,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::GaugeHistogram => "gaugehistogram",
            Kind::StateSet => "stateset",
            Kind::Info => "info",
            Kind::Summary => "summary",
            Kind::Unknown => "unknown",
        }
    }

    /// The suffixes its samples' names may have, with what each means.
    fn suffixes(self) -> &'static [(&'static str, Role)] {
        match self {
            Kind::Counter => &[("_total", Role::Total), ("_created", Role::Created)],
            Kind::Histogram => &[
                ("_bucket", Role::Bucket),
                ("_count", Role::Count),
                ("_sum", Role::Sum),
                ("_created", Role::Created),
            ],
            Kind::GaugeHistogram => &[
                ("_bucket", Role::Bucket),
                ("_gcount", Role::GaugeCount),
                ("_gsum", Role::GaugeSum),
            ],
            Kind::Summary => &[
                ("", Role::Plain),
                ("_count", Role::Count),
                ("_sum", Role::Sum),
                ("_created", Role::Created),
            ],
            Kind::Info => &[("_info", Role::Info)],
            Kind::Gauge | Kind::StateSet | Kind::Unknown => &[("", Role::Plain)],
        }
    }
}

/// The family samples are being read for, and its metadata so far.
#[derive(Debug)]
pub(super) struct Family<'a> {
    pub name: &'a str,
    pub kind: Kind,
    /// Line where it started: its first metadata or sample line.
    pub line: usize,
    /// Whether a sample of it was read (metadata must come before).
    pub has_samples: bool,
    typed: bool,
    helped: bool,
    unit: Option<&'a str>,
}

impl<'a> Family<'a> {
    pub fn new(name: &'a str, line: usize) -> Self {
        Family {
            name,
            kind: Kind::Unknown,
            line,
            has_samples: false,
            typed: false,
            helped: false,
            unit: None,
        }
    }

    /// The role of a sample named `name` in this family, if it belongs here.
    pub fn role_of(&self, name: &str) -> Option<Role> {
        let suffix = name.strip_prefix(self.name)?;
        self.kind
            .suffixes()
            .iter()
            .find(|(s, _)| *s == suffix)
            .map(|(_, role)| *role)
    }

    /// Applies a metadata line naming this family; `Err` says why it may not.
    pub fn apply(&mut self, meta: &Meta<'a>) -> Result<(), String> {
        let keyword = match meta.kind {
            MetaKind::Help => "HELP",
            MetaKind::Type => "TYPE",
            MetaKind::Unit => "UNIT",
        };
        if self.has_samples {
            return Err(format!(
                "# {keyword} for {:?} after its samples (metadata comes first)",
                self.name
            ));
        }
        let seen = match meta.kind {
            MetaKind::Help => std::mem::replace(&mut self.helped, true),
            MetaKind::Type => std::mem::replace(&mut self.typed, true),
            MetaKind::Unit => self.unit.replace(meta.rest).is_some(),
        };
        if seen {
            return Err(format!("second # {keyword} for {:?}", self.name));
        }
        match meta.kind {
            MetaKind::Type => {
                // The lexer accepts only known types.
                self.kind = Kind::parse(meta.rest).unwrap_or(Kind::Unknown);
            }
            MetaKind::Unit if !meta.rest.is_empty() => {
                let suffixed = self
                    .name
                    .strip_suffix(meta.rest)
                    .is_some_and(|head| head.ends_with('_'));
                if !suffixed {
                    return Err(format!(
                        "unit {:?} is not a suffix of the family name {:?} (after '_')",
                        meta.rest, self.name
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks what can be known only once the type is final.
    pub fn check_complete(&self) -> Result<(), String> {
        if self.unit.is_some_and(|u| !u.is_empty())
            && matches!(self.kind, Kind::Info | Kind::StateSet)
        {
            return Err(format!(
                "{} {:?} has a unit, which its type may not have",
                self.kind.as_str(),
                self.name
            ));
        }
        Ok(())
    }
}

/// The sample names every family read so far may use, each with its family:
/// a family name must not let two families write the same series name.
#[derive(Debug, Default)]
pub(super) struct Claims {
    names: HashMap<String, String>,
}

impl Claims {
    /// Claims the family's name and its samples' names, or says which other
    /// family already has one of them.
    pub fn claim(&mut self, family: &Family<'_>) -> Result<(), String> {
        let mut names: Vec<String> = vec![family.name.to_owned()];
        names.extend(
            family
                .kind
                .suffixes()
                .iter()
                .filter(|(s, _)| !s.is_empty())
                .map(|(s, _)| format!("{}{s}", family.name)),
        );
        for name in &names {
            if let Some(other) = self.names.get(name) {
                return Err(if other == family.name {
                    format!(
                        "family {:?} appears twice (its lines must be together)",
                        family.name
                    )
                } else {
                    format!(
                        "{} {:?} clashes with family {other:?}: both could have samples named {name:?}",
                        family.kind.as_str(),
                        family.name
                    )
                });
            }
        }
        for name in names {
            self.names.insert(name, family.name.to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_owns_its_total_and_created_samples() {
        let mut family = Family::new("a", 1);
        family.kind = Kind::Counter;
        assert_eq!(family.role_of("a_total"), Some(Role::Total));
        assert_eq!(family.role_of("a_created"), Some(Role::Created));
        assert_eq!(family.role_of("a"), None);
        assert_eq!(family.role_of("b_total"), None);
    }

    #[test]
    fn a_gauge_named_like_a_counters_sample_clashes_with_it() {
        let mut claims = Claims::default();
        let gauge = Family::new("a_created", 1);
        claims.claim(&gauge).unwrap();
        let mut counter = Family::new("a", 2);
        counter.kind = Kind::Counter;
        let err = claims.claim(&counter).unwrap_err();
        assert!(err.contains("a_created"), "{err}");
    }
}
