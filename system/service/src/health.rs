//! `application/health+json` responses, per the IETF health-check draft.

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Overall or per-check state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Pass,
    Warn,
    Fail,
}

/// One observation under `checks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub component_type: String,
    pub status: HealthStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The health document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: HealthStatus,
    pub service_id: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub checks: BTreeMap<String, Vec<HealthCheck>>,
}

impl IntoResponse for Health {
    /// 200 for pass and warn, 503 for fail, as the draft says.
    fn into_response(self) -> Response {
        let code = match self.status {
            HealthStatus::Pass | HealthStatus::Warn => StatusCode::OK,
            HealthStatus::Fail => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            code,
            [(header::CONTENT_TYPE, "application/health+json")],
            body,
        )
            .into_response()
    }
}
