//! What a step's action saw: the input of the (pure) expectation checks.

use metr_domain::exposition::ParsedSample;
use serde_json::Value;

/// An HTTP response, as an `http` step's expectations see it, with the
/// request that got it as a `curl` command line for the reports.
#[derive(Debug, Clone, Default)]
pub struct HttpObservation {
    pub status: u16,
    /// Response headers, names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub elapsed_ms: f64,
    /// The request, to paste in a shell (`runner::step::http::curl`).
    pub curl: String,
}

impl HttpObservation {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or why it is not.
    pub fn json(&self) -> Result<Value, NotJson> {
        serde_json::from_str(&self.body).map_err(NotJson)
    }
}

/// A response body that a JSON expectation or capture could not read.
#[derive(Debug, thiserror::Error)]
#[error("the body is not JSON ({0})")]
pub struct NotJson(serde_json::Error);

/// What a step saw; steps that only act (docker, network, sleep) see nothing.
#[derive(Debug, Clone)]
pub enum Observation {
    Http(HttpObservation),
    /// Rows of an SQL result as an array of objects keyed by column.
    Sql(Value),
    /// The samples of a metrics page.
    Metrics(Vec<ParsedSample>),
    /// A service's log text.
    Logs(String),
    Nothing,
}
