//! A database URL that never prints its password.

use std::fmt;

use serde::Deserialize;

/// A PostgreSQL connection string. `Debug` and `Display` hide the password, so it
/// cannot leak into logs or error bodies by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The full connection string, password included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> String {
        // postgres://user:password@host/db  →  postgres://user:***@host/db
        if let Some((scheme, rest)) = self.0.split_once("://")
            && let Some((userinfo, host)) = rest.rsplit_once('@')
        {
            let user = userinfo.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
        // key=value form: hide password=...
        self.0
            .split_whitespace()
            .map(|kv| {
                if kv.starts_with("password=") {
                    "password=***"
                } else {
                    kv
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        let url = DatabaseUrl::new("postgres://metr:s3cret@db:5432/metr");
        assert_eq!(url.to_string(), "postgres://metr:***@db:5432/metr");
        assert!(!format!("{url:?}").contains("s3cret"));
        let kv = DatabaseUrl::new("host=db user=metr password=s3cret");
        assert_eq!(kv.to_string(), "host=db user=metr password=***");
        assert_eq!(kv.expose(), "host=db user=metr password=s3cret");
    }
}
