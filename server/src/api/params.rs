//! Request parameters of the Prometheus API: merged from the URL query and,
//! for `POST` with `application/x-www-form-urlencoded`, the body (repeated
//! keys such as `match[]` kept in order), and the parsers for times
//! (RFC 3339 or unix seconds with fraction) and durations (Prometheus
//! duration or float seconds).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, Method};

use crate::duration::parse_duration_ms;
use crate::error::ApiError;

/// Smallest and largest timestamps the API accepts (Prometheus' minTime and
/// maxTime, in milliseconds), used when `start`/`end` are absent.
pub const MIN_TIME_MS: i64 = -9_223_309_901_257_974;
/// See [`MIN_TIME_MS`].
pub const MAX_TIME_MS: i64 = 9_223_309_901_257_974;

/// All parameters of one request, in order.
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses `a=1&b=2` text.
    pub fn parse_into(&mut self, text: &[u8]) {
        self.0
            .extend(form_urlencoded::parse(text).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }

    /// The first value of `name` that is not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (e.g. `match[]`).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A time parameter in milliseconds, `default` when absent.
    pub fn time_or(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(s) => parse_time(s)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}"))),
        }
    }

    /// A required duration parameter (`step`) in milliseconds.
    pub fn duration(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|s| {
                parse_duration_param(s)
                    .map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}")))
            })
            .transpose()
    }

    /// A non-negative integer parameter (`limit`); 0 or absent means none.
    pub fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.get("limit") {
            None => Ok(None),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n < 0 => Err(ApiError::bad_data("limit must be non-negative")),
                Ok(0) => Ok(None),
                Ok(n) => Ok(Some(n as usize)),
                Err(_) => Err(ApiError::bad_data(format!(
                    "invalid parameter \"limit\": cannot parse {s:?} to a valid limit"
                ))),
            },
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut p = Params::default();
        if let Some(q) = req.uri().query() {
            p.parse_into(q.as_bytes());
        }
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if req.method() == Method::POST && is_form {
            let body = Bytes::from_request(req, state)
                .await
                .map_err(|e| ApiError::new(crate::error::ErrorKind::TooLarge, e.body_text()))?;
            // Body parameters come first, as Go's r.Form orders them.
            let mut from_body = Params::default();
            from_body.parse_into(&body);
            from_body.0.extend(p.0);
            p = from_body;
        }
        Ok(p)
    }
}

/// Parses a time: float unix seconds (`1435781451.781`) or RFC 3339
/// (`2015-07-01T20:10:51.781Z`).
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (f * 1000.0).round();
        if ms < MIN_TIME_MS as f64 || ms > MAX_TIME_MS as f64 {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        return Ok(ms as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Parses a duration parameter: float seconds (`15`, `0.5`) or a Prometheus
/// duration (`1m30s`). Milliseconds.
pub fn parse_duration_param(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() > i64::MAX as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok(ms.round() as i64);
    }
    parse_duration_ms(s)
        .map(|v| v as i64)
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let ok = |s: &str, want: i64| assert_eq!(parse_time(s), Ok(want), "{s}");
        ok("1435781451.781", 1_435_781_451_781);
        ok("1435781451", 1_435_781_451_000);
        ok("2015-07-01T20:10:51.781Z", 1_435_781_451_781);
        ok("2015-07-01T22:10:51+02:00", 1_435_781_451_000);
        ok("-1.5", -1_500);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("NaN").is_err());
        assert!(parse_time("Inf").is_err());
    }

    #[test]
    fn durations() {
        let ok = |s: &str, want: i64| assert_eq!(parse_duration_param(s), Ok(want), "{s}");
        ok("15", 15_000);
        ok("0.5", 500);
        ok("1m30s", 90_000);
        ok("-1", -1_000);
        assert!(parse_duration_param("1q").is_err());
    }

    #[test]
    fn repeated_keys_and_empty_values() {
        let mut p = Params::default();
        p.parse_into(b"match%5B%5D=up&match[]=%7Bjob%3D%22a%22%7D&start=&limit=5");
        assert_eq!(p.get_all("match[]"), vec!["up", "{job=\"a\"}"]);
        assert_eq!(p.get("start"), None);
        assert_eq!(p.limit().unwrap(), Some(5));
        p.parse_into(b"&limit=x");
        assert_eq!(p.limit().unwrap(), Some(5)); // first non-empty wins
    }
}
