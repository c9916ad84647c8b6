//! Tower layers of the HTTP API: authentication (basic and/or bearer, off by
//! default), the admin gate (`--enable-admin-api`) with its cross-site
//! check, and per-request logging and metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::HeaderMap;
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

/// Admin endpoints (`/api/v1/admin/...`): answered only with
/// `--enable-admin-api` (otherwise 503 "admin APIs disabled", as Prometheus
/// answers), and only to requests that pass [`same_site_check`].
pub async fn admin(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if !s.cfg.http.enable_admin_api {
        return ApiError::new(
            ErrorKind::Unavailable,
            "admin APIs disabled; start with --enable-admin-api to use them",
        )
        .into_response();
    }
    same_site(req, next).await
}

/// Refuses what [`same_site_check`] refuses (admin endpoints and
/// `/-/reload`).
pub async fn same_site(req: Request, next: Next) -> Response {
    // HTTP/2 carries the host in the URI (`:authority`), not in `Host`.
    let host = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match same_site_check(req.headers(), host.as_deref()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Refuses a request that a web page on another site could make a browser
/// send (cross-site request forgery against an operator's browser):
/// - a body of a type an HTML form can send without a CORS preflight
///   (`application/x-www-form-urlencoded`, `multipart/form-data`,
///   `text/plain`): parameters of these endpoints go in the URL;
/// - a `Sec-Fetch-Site` header other than `same-origin` or `none` (sent by
///   every current browser);
/// - an `Origin` header whose host is not `host` (the request's `Host`; or
///   is `null`), for browsers without `Sec-Fetch-Site`.
///
/// Clients that are not browsers (curl, scripts) send none of these and pass.
pub fn same_site_check(h: &HeaderMap, host: Option<&str>) -> Result<(), ApiError> {
    let refuse = |why: String| {
        Err(ApiError::new(
            ErrorKind::Forbidden,
            format!("cannot accept this request: {why}"),
        ))
    };
    let text = |name: &str| h.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if let Some(ct) = text(CONTENT_TYPE.as_str()) {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            media.as_str(),
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
        ) {
            return refuse(format!(
                "a {media} body could come from a form on another site; \
                 send the parameters in the URL without a body (curl -X POST 'URL?node=ID')"
            ));
        }
    }
    if let Some(site) = text("sec-fetch-site") {
        if !matches!(site, "same-origin" | "none") {
            return refuse(format!("cross-site request (Sec-Fetch-Site: {site})"));
        }
    }
    if let Some(origin) = text(ORIGIN.as_str()) {
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        let same = matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h));
        if !same {
            return refuse(format!(
                "Origin {origin} is not this server ({})",
                host.unwrap_or("no Host header")
            ));
        }
    }
    Ok(())
}

/// The series-metadata endpoints (`/api/v1/series`, `/api/v1/labels`,
/// `/api/v1/label/{name}/values`, `/api/v1/status/tsdb`) walk the index like
/// a query does, so they take a query slot (`--max-concurrent-queries`) and
/// end with 503 `timeout` after `--query-timeout`, the wait for the slot
/// included.
pub async fn query_slot(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let to = s.cfg.limits.query_timeout;
    let run = async {
        let Ok(_slot) = s.query_slots.acquire().await else {
            return ApiError::new(ErrorKind::Unavailable, "server is shutting down")
                .into_response();
        };
        s.metrics.queries_running.inc();
        // Decrements also when the timeout drops this future mid-run.
        struct Running<'a>(&'a Shared);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.metrics.queries_running.dec();
            }
        }
        let _running = Running(&s);
        next.run(req).await
    };
    match tokio::time::timeout(to.0, run).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            ErrorKind::Timeout,
            format!(
                "cannot answer: no result within --query-timeout={to} \
                     (waiting for a query slot included; see --max-concurrent-queries)"
            ),
        )
        .into_response(),
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
    fn same_site_requests_only() {
        let f = |headers: &[(&'static str, &str)], ok: bool| {
            let mut h = HeaderMap::new();
            for (k, v) in headers {
                h.insert(*k, v.parse().expect("header value"));
            }
            let host = h.get(HOST).and_then(|v| v.to_str().ok());
            let got = same_site_check(&h, host);
            assert_eq!(got.is_ok(), ok, "{headers:?}: {got:?}");
            if let Err(e) = got {
                assert_eq!(e.kind.status().as_u16(), 403);
            }
        };
        // curl and scripts.
        f(&[], true);
        f(&[("host", "a:9201")], true);
        f(&[("content-type", "application/json")], true);
        // Same-origin browser requests.
        f(&[("host", "a:9201"), ("origin", "http://a:9201")], true);
        f(&[("sec-fetch-site", "same-origin")], true);
        // What a page on another site can make a browser send.
        f(
            &[("content-type", "application/x-www-form-urlencoded")],
            false,
        );
        f(
            &[("content-type", "multipart/form-data; boundary=x")],
            false,
        );
        f(&[("content-type", "text/plain;charset=UTF-8")], false);
        f(&[("sec-fetch-site", "cross-site")], false);
        f(&[("sec-fetch-site", "same-site")], false);
        f(
            &[("host", "a:9201"), ("origin", "http://evil.example")],
            false,
        );
        f(&[("host", "a:9201"), ("origin", "null")], false);
        f(&[("origin", "http://a:9201")], false);
    }

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
