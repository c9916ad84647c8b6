//! `/api/v1/rules`, `/api/v1/alerts` and `POST /-/reload`, answered by the
//! rules module through [`RulesApi`] once it is installed in the
//! [`RulesSlot`]; before that, empty groups and alerts in Prometheus' shape.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::RwLock;
use serde_json::json;

use super::json::Success;
use super::params::Params;
use super::Shared;
use crate::error::{ApiError, ErrorKind};

/// What the rules module provides to the HTTP API.
#[async_trait]
pub trait RulesApi: Send + Sync {
    /// The `data` of `/api/v1/rules` (`{"groups":[...]}`), honouring the
    /// request's filters (`type`, `rule_name[]`, `rule_group[]`, `file[]`).
    fn rules(&self, params: &Params) -> Result<serde_json::Value, ApiError>;
    /// The `data` of `/api/v1/alerts` (`{"alerts":[...]}`).
    fn alerts(&self) -> serde_json::Value;
    /// Re-reads the rule files.
    async fn reload(&self) -> Result<(), String>;
}

/// Holds the installed [`RulesApi`], if any.
#[derive(Default)]
pub struct RulesSlot(RwLock<Option<Arc<dyn RulesApi>>>);

impl RulesSlot {
    /// Installs the rules module's API.
    pub fn install(&self, api: Arc<dyn RulesApi>) {
        *self.0.write() = Some(api);
    }

    fn get(&self) -> Option<Arc<dyn RulesApi>> {
        self.0.read().clone()
    }
}

/// `GET|POST /api/v1/rules`.
pub async fn rules(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let data = match s.rules.get() {
        Some(r) => r.rules(&p)?,
        None => json!({ "groups": [] }),
    };
    Ok(Success::new(data).into_response())
}

/// `GET|POST /api/v1/alerts`.
pub async fn alerts(State(s): State<Shared>) -> Response {
    let data = match s.rules.get() {
        Some(r) => r.alerts(),
        None => json!({ "alerts": [] }),
    };
    Success::new(data).into_response()
}

/// `POST|PUT /-/reload`.
pub async fn reload(State(s): State<Shared>) -> Response {
    match s.rules.get() {
        None => (StatusCode::OK, "").into_response(),
        Some(r) => match r.reload().await {
            Ok(()) => (StatusCode::OK, "").into_response(),
            Err(e) => ApiError::new(ErrorKind::Internal, format!("failed to reload config: {e}"))
                .into_text_response(),
        },
    }
}
