//! Tower layers of the HTTP API: authentication (basic and/or bearer, off by
//! default) and per-request logging and metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::Shared;
use crate::error::{ApiError, ErrorKind};
use crate::metrics::{HandlerCodeLabel, HandlerLabel};

/// Compares without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether an `Authorization` header value satisfies the configured auth.
pub fn authorized(auth: &crate::config::AuthConfig, header: Option<&str>) -> bool {
    let Some(h) = header else { return false };
    if let (Some(token), Some(got)) = (&auth.bearer, h.strip_prefix("Bearer ")) {
        if constant_time_eq(token.as_bytes(), got.trim().as_bytes()) {
            return true;
        }
    }
    if let (Some((user, pass)), Some(b64)) = (&auth.basic, h.strip_prefix("Basic ")) {
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            let want = format!("{user}:{pass}");
            return constant_time_eq(want.as_bytes(), &raw);
        }
    }
    false
}

/// Rejects requests without valid credentials when auth is configured;
/// `/-/healthy` and `/-/ready` stay open for probes.
pub async fn auth(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let auth = &s.cfg.auth;
    let open = matches!(req.uri().path(), "/-/healthy" | "/-/ready");
    if !auth.enabled() || open {
        return next.run(req).await;
    }
    let h = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if authorized(auth, h) {
        next.run(req).await
    } else {
        ApiError::new(ErrorKind::Unauthorized, "missing or wrong credentials").into_response()
    }
}

/// Logs every request (debug; errors at warn) and records latency and
/// status per route.
pub async fn observe(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let uri = req.uri().path().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let code = resp.status();
    s.metrics
        .http_duration
        .get_or_create(&HandlerLabel {
            handler: handler.clone(),
        })
        .observe(elapsed.as_secs_f64());
    s.metrics
        .http_requests
        .get_or_create(&HandlerCodeLabel {
            handler,
            code: code.as_u16().to_string(),
        })
        .inc();
    let ms = elapsed.as_secs_f64() * 1000.0;
    if code.is_client_error() || code.is_server_error() {
        tracing::warn!(%method, path = %uri, status = code.as_u16(), elapsed_ms = ms, "request failed");
    } else {
        tracing::debug!(%method, path = %uri, status = code.as_u16(), elapsed_ms = ms, "request");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    #[test]
    fn credentials() {
        let a = AuthConfig {
            basic: Some(("u".into(), "p".into())),
            bearer: Some("tok".into()),
        };
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:p")
        );
        let wrong = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:x")
        );
        assert!(authorized(&a, Some(&basic)));
        assert!(!authorized(&a, Some(&wrong)));
        assert!(authorized(&a, Some("Bearer tok")));
        assert!(!authorized(&a, Some("Bearer tok2")));
        assert!(!authorized(&a, None));
        let only_basic = AuthConfig {
            basic: a.basic.clone(),
            bearer: None,
        };
        assert!(!authorized(&only_basic, Some("Bearer tok")));
    }
}
