//! `POST /api/v1/write`: Prometheus remote write 1.0.
//!
//! 204 when everything was stored; 400 (plain text, naming series and
//! reasons) when some series or samples were refused — the valid ones are
//! still stored, as Prometheus does; 413 over the body limit; 429 when
//! overloaded; 503 when a shard has no leader (the client retries); 415 for
//! a remote write 2.0 body or another media type ([`check_content_type`]).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::OwnedSemaphorePermit;

use super::{cluster_error, Shared};
use crate::error::{ApiError, ErrorKind};
use crate::ingest::shards::{ShardBatches, TimeWindow};
use crate::ingest::{remote_write, Refused, RejectReason, WriteSeries};

/// Most refused series named in one error message.
const MAX_NAMED: usize = 5;

/// The handler.
pub async fn remote_write(State(s): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = check_content_type(&headers) {
        return e.into_text_response();
    }
    match handle(&s, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_text_response(),
    }
}

/// The protobuf message of remote write 1.0.
const PROTO_V1: &str = "prometheus.WriteRequest";
/// The protobuf message of remote write 2.0.
const PROTO_V2: &str = "io.prometheus.write.v2.Request";

/// Accepts only remote write 1.0 bodies, as Prometheus' receiver decides:
/// no `Content-Type` or `application/x-protobuf` without a `proto`
/// parameter is 1.0; `proto=prometheus.WriteRequest` is 1.0; anything else
/// (remote write 2.0 above all, whose bytes would otherwise be misread as
/// 1.0) is refused with 415 before the body is read.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(raw) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = raw.to_str().map_err(|_| {
        ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "cannot read remote write body: Content-Type is not ASCII",
        )
    })?;
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "cannot read remote write body: Content-Type {ct:?} is not application/x-protobuf"
            ),
        ));
    }
    let proto = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("proto")
            .then(|| v.trim().trim_matches('"'))
    });
    match proto {
        None | Some(PROTO_V1) => Ok(()),
        Some(PROTO_V2) => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "cannot read remote write body: remote write 2.0 (proto={PROTO_V2}) is not supported yet; \
                 send remote write 1.0 (in Prometheus: protobuf_message: {PROTO_V1} in remote_write)"
            ),
        )),
        Some(other) => Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "cannot read remote write body: unknown remote write message proto={other}; \
                 only {PROTO_V1} (remote write 1.0) is supported"
            ),
        )),
    }
}

async fn handle(s: &Shared, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    let limit = s.cfg.limits.max_body_bytes;
    // The body's declared size is reserved before it is read, the size it
    // decompresses to once that is known (snappy states it up front).
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0)
        .min(limit);
    let body_permit = reserve_bytes(s, declared, 0)?;
    let held = body_permit.as_ref().map_or(0, |p| p.num_permits());
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ErrorKind::TooLarge,
            format!("cannot read remote write body: larger than --max-body-bytes={limit}"),
        )
    })?;
    s.metrics.ingest_requests.inc();
    let more = snap::raw::decompress_len(&bytes)
        .unwrap_or(0)
        .saturating_add(bytes.len().saturating_sub(declared));
    let _decoded_permit = reserve_bytes(s, more, held)?;
    let raw = remote_write::decompress(&bytes, limit.saturating_mul(remote_write::MAX_EXPANSION))?;
    let now = chrono::Utc::now().timestamp_millis();
    let window = TimeWindow {
        min_t: now.saturating_sub(duration_ms(s.cfg.retention.0)),
        max_t: now.saturating_add(duration_ms(s.cfg.limits.max_future.0)),
    };
    let mut b = ShardBatches::new(
        &s.cfg.limits,
        &s.ingest_cache,
        s.node.shard_count(),
        window,
        remote_write::reread,
    );
    let extras = remote_write::feed(&raw, &mut b, &s.cfg.limits)?;
    s.metadata.record(extras.metadata);
    s.metrics.exemplars_dropped.inc_by(extras.exemplars);
    s.metrics.ingest_cache_hits.inc_by(b.cache_hits);
    s.metrics.ingest_cache_misses.inc_by(b.cache_misses);
    let refused = std::mem::take(&mut b.refused);
    let out = if b.is_empty() {
        cluster::WriteOutcome::default()
    } else {
        b.send(&s.node).await.map_err(cluster_error)?
    };
    report(s, refused, out)
}

/// Reserves `bytes` of `--max-inflight-write-bytes` (counted in KiB)
/// until the request is answered; 429 when they do not fit now, so
/// concurrent writes cannot together take unbounded memory. `held`: KiB
/// the request holds already; a request larger than the whole budget takes
/// all of it, alone (`None` once it holds it all).
fn reserve_bytes(
    s: &Shared,
    bytes: usize,
    held: usize,
) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
    let all = (s.cfg.limits.max_inflight_write_bytes / 1024).max(1);
    let kib = bytes.div_ceil(1024).min(all.saturating_sub(held));
    if kib == 0 {
        return Ok(None);
    }
    let kib = u32::try_from(kib).unwrap_or(u32::MAX);
    match s.write_bytes.clone().try_acquire_many_owned(kib) {
        Ok(p) => Ok(Some(p)),
        Err(_) => {
            s.metrics.ingest_throttled.inc();
            Err(ApiError::new(
                ErrorKind::Overloaded,
                format!(
                    "cannot accept remote write request now: more than --max-inflight-write-bytes={} bytes of remote write in flight; retry later",
                    s.cfg.limits.max_inflight_write_bytes
                ),
            ))
        }
    }
}

fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Writes validated series through the cluster and reports refusals (the
/// self-scrape's path: its series come with parsed labels).
pub async fn write_series(
    s: &Shared,
    series: Vec<WriteSeries>,
    refused: Vec<Refused>,
) -> Result<(), ApiError> {
    let out = if series.is_empty() {
        cluster::WriteOutcome::default()
    } else {
        let incoming = series
            .into_iter()
            .map(|w| cluster::IncomingSeries {
                labels: w.labels,
                samples: w.samples,
            })
            .collect();
        s.node.write(incoming).await.map_err(cluster_error)?
    };
    report(s, refused, out)
}

/// The answer's status for a refusal: the one place a [`RejectReason`]
/// becomes an HTTP status. Every reason is the client's data, which a
/// retry cannot fix, so all are 400 (Prometheus drops the samples instead
/// of retrying); a limit is not load, so it is not 429 either.
fn reject_kind(r: RejectReason) -> ErrorKind {
    match r {
        RejectReason::OutOfOrder
        | RejectReason::TooOld
        | RejectReason::Duplicate
        | RejectReason::InvalidLabels
        | RejectReason::LabelTooLong
        | RejectReason::TooManyLabels
        | RejectReason::NativeHistogram
        | RejectReason::TooFarInFuture
        | RejectReason::SeriesLimit
        | RejectReason::MetricSeriesLimit
        | RejectReason::InvalidBatch
        // Resent with labels by the ingest side; it reaches here only if
        // the shard lost the series twice within one request.
        | RejectReason::UnknownSeriesId => ErrorKind::BadData,
    }
}

/// Counts what was stored and refused, and answers naming the first few
/// problems when anything was refused (status from [`reject_kind`] of the
/// first).
fn report(s: &Shared, refused: Vec<Refused>, out: cluster::WriteOutcome) -> Result<(), ApiError> {
    let mut kind: Option<ErrorKind> = None;
    let mut problems: Vec<String> = Vec::with_capacity(refused.len() + out.rejected.len());
    for r in refused {
        s.metrics.reject(r.reason.as_str(), r.samples);
        kind.get_or_insert(reject_kind(r.reason));
        problems.push(r.msg);
    }
    s.metrics.ingest_samples.inc_by(out.accepted);
    for r in &out.rejected {
        s.metrics.reject(r.reason.as_str(), r.count);
        kind.get_or_insert(reject_kind(r.reason));
        problems.push(format!(
            "{} ({} samples), e.g. {}",
            r.reason, r.count, r.example
        ));
    }
    let Some(kind) = kind else {
        return Ok(());
    };
    let total = problems.len();
    problems.truncate(MAX_NAMED);
    let mut msg = format!(
        "cannot store part of the request (valid series were stored): {}",
        problems.join("; ")
    );
    if total > MAX_NAMED {
        msg.push_str(&format!("; and {} more", total - MAX_NAMED));
    }
    Err(ApiError::new(kind, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let f = |ct: Option<&str>, ok: bool, needle: &str| {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(header::CONTENT_TYPE, ct.parse().expect("header value"));
            }
            match check_content_type(&h) {
                Ok(()) => assert!(ok, "{ct:?} accepted"),
                Err(e) => {
                    assert!(!ok, "{ct:?} refused: {e}");
                    assert_eq!(e.kind.status().as_u16(), 415, "{ct:?}");
                    assert!(e.msg.contains(needle), "{ct:?}: {e}");
                }
            }
        };
        f(None, true, "");
        f(Some("application/x-protobuf"), true, "");
        f(Some("Application/X-Protobuf; charset=binary"), true, "");
        f(
            Some("application/x-protobuf;proto=prometheus.WriteRequest"),
            true,
            "",
        );
        f(
            Some("application/x-protobuf; proto=\"prometheus.WriteRequest\""),
            true,
            "",
        );
        f(
            Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
            false,
            "remote write 2.0",
        );
        f(
            Some("application/x-protobuf;proto=foo.Bar"),
            false,
            "proto=foo.Bar",
        );
        f(Some("application/json"), false, "application/json");
    }
}
