//! Series selectors for `metrics` steps: `name` or `name{label="value",...}`.

use std::collections::BTreeMap;
use std::fmt;

use metr_domain::exposition::ParsedSample;

use crate::suggest::distance;

/// Why text is not a selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("{0:?} is not a series selector")]
    NotOne(String),
    #[error("{text:?} is not a series selector such as name{{label=\"value\"}}: {why}")]
    Syntax { text: String, why: String },
}

/// A metric name with required label values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect();
            write!(f, "{{{}}}", labels.join(","))?;
        }
        Ok(())
    }
}

impl Selector {
    /// Parses a selector with the project's exposition parser (a selector is a
    /// sample line without its value), so quoting rules are the same.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let line = format!("{} 0", text.trim());
        match metr_domain::exposition::parse(&line) {
            Ok(mut samples) if samples.len() == 1 => {
                let s = samples.remove(0);
                Ok(Selector {
                    name: s.name,
                    labels: s.labels,
                })
            }
            Ok(_) => Err(SelectorError::NotOne(text.to_owned())),
            Err(e) => Err(SelectorError::Syntax {
                text: text.to_owned(),
                why: e.message,
            }),
        }
    }

    pub fn matches(&self, sample: &ParsedSample) -> bool {
        sample.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| sample.labels.get(k) == Some(v))
    }

    /// Sum of every matching series, or why there is none (with similar names).
    pub fn sum(&self, samples: &[ParsedSample]) -> Result<f64, NoSeries> {
        let matching: Vec<&ParsedSample> = samples.iter().filter(|s| self.matches(s)).collect();
        if matching.is_empty() {
            return Err(self.explain_absence(samples));
        }
        Ok(matching.iter().map(|s| s.value).sum())
    }

    fn explain_absence(&self, samples: &[ParsedSample]) -> NoSeries {
        let same_name: Vec<String> = samples
            .iter()
            .filter(|s| s.name == self.name)
            .take(5)
            .map(|s| format!("{}{:?}", s.name, s.labels))
            .collect();
        if !same_name.is_empty() {
            return NoSeries::NoSuchLabels {
                name: self.name.clone(),
                labels: format!("{:?}", self.labels),
                same_name,
            };
        }
        let mut names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        names.dedup();
        let stem = self
            .name
            .split('_')
            .find(|w| w.len() > 2)
            .unwrap_or(&self.name);
        let mut similar: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| n.contains(stem) || distance(n, &self.name) <= 3)
            .collect();
        // Closest first: a typo's intended name leads the list.
        similar.sort_by_key(|n| distance(n, &self.name));
        similar.truncate(5);
        NoSeries::NoSuchName {
            name: self.name.clone(),
            similar: similar.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// Why a selector matched no series of a scrape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoSeries {
    /// Series of the name exist, none with the labels.
    #[error("no {name} series has labels {labels}; series of that name: {}", same_name.join(", "))]
    NoSuchLabels {
        name: String,
        labels: String,
        /// Some of those series, as `name{labels}`.
        same_name: Vec<String>,
    },
    /// No series of the name; names like it, closest first.
    #[error("no series named {name}{}", similar_names(similar))]
    NoSuchName { name: String, similar: Vec<String> },
}

fn similar_names(similar: &[String]) -> String {
    if similar.is_empty() {
        String::new()
    } else {
        format!("; similar names: {}", similar.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<ParsedSample> {
        metr_domain::exposition::parse(
            "checker_scrapes_total{target=\"a\",result=\"success\"} 3\n\
             checker_scrapes_total{target=\"b\",result=\"success\"} 4\n\
             checker_scrapes_total{target=\"b\",result=\"failure\"} 1\n\
             checker_samples_written_total 10\n",
        )
        .unwrap()
    }

    #[test]
    fn matching_series_are_summed() {
        let s = samples();
        assert_eq!(
            Selector::parse("checker_scrapes_total").unwrap().sum(&s),
            Ok(8.0)
        );
        assert_eq!(
            Selector::parse("checker_scrapes_total{result=\"success\"}")
                .unwrap()
                .sum(&s),
            Ok(7.0)
        );
        assert_eq!(
            Selector::parse("checker_scrapes_total{target=\"b\",result=\"failure\"}")
                .unwrap()
                .sum(&s),
            Ok(1.0)
        );
    }

    #[test]
    fn no_match_lists_similar_names() {
        let s = samples();
        let err = Selector::parse("checker_sample_written_total")
            .unwrap()
            .sum(&s)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no series named checker_sample_written_total; similar names: \
             checker_samples_written_total, checker_scrapes_total"
        );
        let err = Selector::parse("checker_scrapes_total{target=\"zz\"}")
            .unwrap()
            .sum(&s)
            .unwrap_err();
        assert!(
            matches!(&err, NoSeries::NoSuchLabels { same_name, .. } if same_name.len() == 3),
            "{err}"
        );
        assert!(err.to_string().contains("series of that name"), "{err}");
    }

    #[test]
    fn bad_selectors_are_rejected() {
        assert!(Selector::parse("bad{").is_err());
        assert!(Selector::parse("9lives").is_err());
    }
}
