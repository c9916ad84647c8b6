//! API errors and their one mapping to HTTP status codes.
//!
//! Every failure the HTTP layer reports is an [`ApiError`]: an [`ErrorKind`]
//! (Prometheus' `errorType`) and a message. [`ErrorKind::status`] is the only
//! place a kind becomes an HTTP status. Query endpoints render errors as
//! Prometheus does, `{"status":"error","errorType":..,"error":..}`; the
//! remote-write endpoint answers with the plain-text message, as Prometheus'
//! receiver does.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The kinds of failure, named as Prometheus' `errorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is invalid; do not retry it.
    BadData,
    /// The query could not be evaluated.
    Execution,
    /// The query ran past its timeout.
    Timeout,
    /// The client went away.
    Canceled,
    /// A part of the cluster cannot answer now; retry.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
    /// Unknown endpoint or object.
    NotFound,
    /// The request body exceeds the configured limit.
    TooLarge,
    /// Too much load; retry later.
    Overloaded,
    /// Missing or wrong credentials.
    Unauthorized,
    /// The body's media type is not one the endpoint reads.
    UnsupportedMediaType,
    /// The endpoint is turned off by configuration, or the request is not
    /// allowed from where it came (a cross-site request to an admin
    /// endpoint).
    Forbidden,
}

impl ErrorKind {
    /// The HTTP status of each kind — the one place this mapping lives.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadData => StatusCode::BAD_REQUEST,
            ErrorKind::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Timeout | ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            // Prometheus answers 499 (nginx' "client closed request").
            ErrorKind::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
            ErrorKind::NotFound => "not_found",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Overloaded => "too_many_requests",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Forbidden => "forbidden",
        }
    }
}

/// An error answered to an HTTP client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct ApiError {
    /// The kind (decides the status).
    pub kind: ErrorKind,
    /// What failed, for the client.
    pub msg: String,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        ApiError {
            kind,
            msg: msg.into(),
        }
    }

    /// A `bad_data` error.
    pub fn bad_data(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadData, msg)
    }

    /// An `internal` error.
    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, msg)
    }

    /// The same error as a plain-text response (remote write).
    pub fn into_text_response(self) -> Response {
        (self.kind.status(), format!("{}\n", self.msg)).into_response()
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'static str,
    #[serde(rename = "errorType")]
    error_type: &'static str,
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: "error",
            error_type: self.kind.as_str(),
            error: &self.msg,
        };
        let mut resp = (self.kind.status(), axum::Json(body)).into_response();
        if self.kind == ErrorKind::Unauthorized {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"silverback\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_prometheus() {
        let f = |k: ErrorKind, code: u16, name: &str| {
            assert_eq!(k.status().as_u16(), code, "{k:?}");
            assert_eq!(k.as_str(), name);
        };
        f(ErrorKind::BadData, 400, "bad_data");
        f(ErrorKind::Execution, 422, "execution");
        f(ErrorKind::Timeout, 503, "timeout");
        f(ErrorKind::Canceled, 499, "canceled");
        f(ErrorKind::Unavailable, 503, "unavailable");
        f(ErrorKind::Internal, 500, "internal");
        f(ErrorKind::TooLarge, 413, "too_large");
        f(ErrorKind::Overloaded, 429, "too_many_requests");
        f(
            ErrorKind::UnsupportedMediaType,
            415,
            "unsupported_media_type",
        );
        f(ErrorKind::Forbidden, 403, "forbidden");
    }
}
