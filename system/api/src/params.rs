//! Query strings into validated storage queries; every error names its parameter.

use chrono::{DateTime, Utc};
use metr_domain::CheckStatus;
use metr_storage::query::{DEFAULT_LIMIT, MAX_LIMIT};
use metr_storage::{CheckQuery, Cursor, MetricQuery, SeriesQuery};

use crate::error::ApiError;

/// The raw `key=value` pairs of a query string, checked against what an endpoint accepts.
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decodes the query string, rejecting parameters the endpoint does not know
    /// (a misspelt filter must not silently return everything).
    pub fn parse(raw: Option<&str>, known: &[&str]) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| ApiError::bad_data("the query string is not valid URL encoding"))?;
        if let Some((key, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            let accepted = if known.is_empty() {
                "this endpoint accepts no parameters".to_owned()
            } else {
                format!("this endpoint accepts: {}", known.join(", "))
            };
            return Err(ApiError::bad_data(format!(
                "unknown parameter {key:?}; {accepted}"
            )));
        }
        Ok(Params { pairs })
    }

    /// The value of a parameter that may appear at most once.
    fn one(&self, key: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_data(format!(
                "parameter {key:?} is given more than once"
            )));
        }
        Ok(first)
    }

    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.one(key)? {
            Some("") => Err(ApiError::bad_data(format!(
                "parameter {key:?} must not be empty"
            ))),
            Some(v) => storable(key, v).map(|()| Some(v.to_owned())),
            None => Ok(None),
        }
    }

    fn time(&self, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        self.one(key)?
            .map(|v| {
                parse_time(v)
                    .and_then(in_window)
                    .map_err(|e| ApiError::bad_data(format!("parameter {key:?}: {e}")))
            })
            .transpose()
    }

    fn limit(&self, default: u32) -> Result<u32, ApiError> {
        let Some(raw) = self.one("limit")? else {
            return Ok(default);
        };
        match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_data(format!(
                "parameter \"limit\" must be a whole number from 1 to {MAX_LIMIT}, got {raw:?}"
            ))),
        }
    }

    fn cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.one("cursor")?
            .map(|c| {
                Cursor::decode(c)
                    .map_err(|e| ApiError::bad_data(format!("parameter \"cursor\": {e}")))
            })
            .transpose()
    }

    fn range(&self) -> Result<TimeRange, ApiError> {
        let (from, to) = (self.time("from")?, self.time("to")?);
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(ApiError::bad_data(format!(
                "parameter \"from\" ({}) is after \"to\" ({})",
                f.to_rfc3339(),
                t.to_rfc3339()
            )));
        }
        Ok((from, to))
    }
}

/// PostgreSQL refuses NUL in text, so a value holding one cannot match anything
/// stored; saying so beats a database error.
fn storable(key: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::bad_data(format!(
            "parameter {key:?} must not contain a NUL byte"
        )));
    }
    Ok(())
}

/// The earliest `from`/`to` accepted: the first instant RFC 3339 can write.
pub const EARLIEST: &str = "0000-01-01T00:00:00Z";
/// The latest `from`/`to` accepted: the last instant RFC 3339 can write.
pub const LATEST: &str = "9999-12-31T23:59:59.999999Z";

/// Times outside RFC 3339's four-digit years cannot be written back in a
/// response, and some are outside PostgreSQL's range.
fn in_window(t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let earliest = DateTime::parse_from_rfc3339(EARLIEST).expect("a valid constant");
    let latest = DateTime::parse_from_rfc3339(LATEST).expect("a valid constant");
    if t < earliest || t > latest {
        return Err(format!(
            "{} is outside the supported range {EARLIEST} to {LATEST}",
            t.to_rfc3339()
        ));
    }
    Ok(t)
}

/// Optional `from` and `to` bounds.
type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// RFC 3339, or Unix seconds: up to 11 digits and up to 6 decimals, as the
/// OpenAPI document's `UNIX_SECONDS_PATTERN` says.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    unix_seconds(raw).ok_or_else(|| {
        format!(
            "{raw:?} is neither an RFC 3339 time nor Unix seconds (up to 11 digits, \
             up to 6 decimals)"
        )
    })
}

fn unix_seconds(raw: &str) -> Option<DateTime<Utc>> {
    let (whole, fraction) = match raw.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (raw, None),
    };
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(whole, 11) || fraction.is_some_and(|f| !digits(f, 6)) {
        return None;
    }
    let seconds: i64 = whole.parse().ok()?;
    let micros: u32 = fraction.map_or(Some(0), |f| format!("{f:0<6}").parse().ok())?;
    DateTime::from_timestamp(seconds, micros * 1000)
}

pub const CHECK_PARAMS: &[&str] = &["target", "status", "from", "to", "limit", "cursor"];
pub const METRIC_PARAMS: &[&str] = &["target", "name", "label", "from", "to", "limit", "cursor"];
pub const SERIES_PARAMS: &[&str] = &["target", "name", "limit", "cursor"];

pub fn check_query(raw: Option<&str>) -> Result<CheckQuery, ApiError> {
    let p = Params::parse(raw, CHECK_PARAMS)?;
    let status = p
        .one("status")?
        .map(|s| {
            s.parse::<CheckStatus>().map_err(|_| {
                ApiError::bad_data(format!(
                    "parameter \"status\" must be up or down, got {s:?}"
                ))
            })
        })
        .transpose()?;
    let (from, to) = p.range()?;
    Ok(CheckQuery {
        target: p.text("target")?,
        status,
        from,
        to,
        limit: p.limit(DEFAULT_LIMIT)?,
        cursor: p.cursor()?,
    })
}

pub fn metric_query(raw: Option<&str>) -> Result<MetricQuery, ApiError> {
    let p = Params::parse(raw, METRIC_PARAMS)?;
    let labels = p
        .all("label")
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                storable("label", l)?;
                Ok((k.to_owned(), v.to_owned()))
            }
            _ => Err(ApiError::bad_data(format!(
                "parameter \"label\" must be key=value, got {l:?}"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (from, to) = p.range()?;
    Ok(MetricQuery {
        target: p.text("target")?,
        name: p.text("name")?,
        labels,
        from,
        to,
        limit: p.limit(DEFAULT_LIMIT)?,
        cursor: p.cursor()?,
    })
}

pub fn series_query(raw: Option<&str>) -> Result<SeriesQuery, ApiError> {
    let p = Params::parse(raw, SERIES_PARAMS)?;
    Ok(SeriesQuery {
        target: p.text("target")?,
        name: p.text("name")?,
        limit: p.limit(MAX_LIMIT)?,
        cursor: p.cursor()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(result: Result<impl std::fmt::Debug, ApiError>, word: &str) {
        let err = result.expect_err(word);
        assert!(
            err.message.contains(word),
            "{word:?} not in {:?}",
            err.message
        );
    }

    #[test]
    fn every_bad_parameter_is_named() {
        bad(check_query(Some("status=sideways")), "status");
        bad(check_query(Some("limit=0")), "limit");
        bad(check_query(Some("limit=5000")), "limit");
        bad(check_query(Some("limit=ten")), "limit");
        bad(check_query(Some("from=yesterday")), "from");
        bad(check_query(Some("to=2024-13-01T00:00:00Z")), "to");
        bad(check_query(Some("from=200&to=100")), "from");
        bad(check_query(Some("cursor=zzz")), "cursor");
        bad(check_query(Some("targt=gometr")), "targt");
        bad(check_query(Some("limit=1&limit=2")), "limit");
        bad(metric_query(Some("label=novalue")), "label");
        bad(metric_query(Some("label==x")), "label");
        bad(metric_query(Some("label=a%3D%00")), "label");
        bad(metric_query(Some("name=%00")), "name");
        bad(series_query(Some("target=a%00")), "target");
        bad(check_query(Some("from=-100000000000")), "from");
        bad(check_query(Some("to=1e15")), "to");
    }

    #[test]
    fn an_endpoint_without_parameters_says_so() {
        let err = Params::parse(Some("x=1"), &[]).err().expect("x is unknown");
        assert_eq!(
            err.message,
            "unknown parameter \"x\"; this endpoint accepts no parameters"
        );
        let err = Params::parse(Some("x=1"), SERIES_PARAMS)
            .err()
            .expect("x is unknown");
        assert!(
            err.message
                .ends_with("this endpoint accepts: target, name, limit, cursor"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unix_seconds_are_what_the_document_says() {
        for good in ["0", "1700000000", "1700000000.5", "99999999999.999999"] {
            assert!(parse_time(good).is_ok(), "{good}");
        }
        for bad in [
            "-1",
            "1e3",
            "1.",
            ".5",
            "+5",
            "123456789012",
            "1.1234567",
            " 1",
            "inf",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_time("1.25").unwrap().timestamp_micros(), 1_250_000);
    }

    #[test]
    fn the_ends_of_the_window_are_accepted() {
        let q = check_query(Some("from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59Z")).unwrap();
        assert_eq!(q.from.unwrap().to_rfc3339(), "0000-01-01T00:00:00+00:00");
        assert!(q.to.is_some());
    }

    #[test]
    fn good_parameters_become_a_query() {
        let q = metric_query(Some(
            "target=gometr&name=up&label=le%3D%2BInf&label=a%3Db&limit=5&from=1700000000.5",
        ))
        .unwrap();
        assert_eq!(q.target.as_deref(), Some("gometr"));
        assert_eq!(
            q.labels,
            vec![("le".into(), "+Inf".into()), ("a".into(), "b".into())]
        );
        assert_eq!(q.limit, 5);
        assert_eq!(q.from.unwrap().timestamp_millis(), 1_700_000_000_500);
        let c = check_query(Some("status=down&to=2024-01-01T00:00:00%2B01:00")).unwrap();
        assert_eq!(c.status, Some(CheckStatus::Down));
        assert_eq!(c.to.unwrap().to_rfc3339(), "2023-12-31T23:00:00+00:00");
        assert_eq!(c.limit, DEFAULT_LIMIT);
    }
}
