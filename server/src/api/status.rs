//! `/api/v1/status/*`, `/-/healthy`, `/-/ready` and `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json::Success;
use super::Shared;
use crate::error::ApiError;

/// The Prometheus API version Silverback implements (reported as `version`
/// so clients such as Grafana enable the matching features).
pub const PROMETHEUS_API_VERSION: &str = "3.0.0";

/// `GET /api/v1/status/buildinfo`.
pub async fn buildinfo() -> Response {
    Success::new(json!({
        "version": PROMETHEUS_API_VERSION,
        "revision": concat!("silverback-", env!("CARGO_PKG_VERSION")),
        "branch": "silverback",
        "buildUser": "silverback",
        "buildDate": "",
        "goVersion": "none (Rust)",
        "application": "silverback",
        "silverbackVersion": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// `GET /api/v1/status/flags`.
pub async fn flags(State(s): State<Shared>) -> Response {
    Success::new(s.cfg.flags()).into_response()
}

/// `GET /api/v1/status/config`.
pub async fn config(State(s): State<Shared>) -> Response {
    Success::new(json!({ "yaml": s.cfg.to_yaml() })).into_response()
}

/// `GET /api/v1/status/runtimeinfo`.
pub async fn runtimeinfo(State(s): State<Shared>) -> Response {
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Success::new(json!({
        "startTime": s.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "CWD": cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": s.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": threads,
        "GOMEMLIMIT": 0,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": s.cfg.retention.to_string(),
    }))
    .into_response()
}

/// `GET /api/v1/status/cluster`: the cluster as this node sees it.
pub async fn cluster(State(s): State<Shared>) -> Response {
    Success::new(s.node.status()).into_response()
}

/// `POST /api/v1/admin/cluster/decommission?node=ID`: starts moving every
/// replica off node `ID`; it is marked `removed` once it holds none and can
/// then be stopped. Progress shows in `/api/v1/status/cluster`.
pub async fn decommission(
    State(s): State<Shared>,
    p: super::params::Params,
) -> Result<Response, ApiError> {
    let raw = p
        .get("node")
        .ok_or_else(|| ApiError::bad_data("missing parameter \"node\" (the node id)"))?;
    let id: u64 = raw.parse().map_err(|_| {
        ApiError::bad_data(format!(
            "invalid parameter \"node\": {raw:?} is not a node id"
        ))
    })?;
    s.node
        .decommission(id)
        .await
        .map_err(super::cluster_error)?;
    Ok(Success::new(s.node.status()).into_response())
}

/// `GET /api/v1/status/tsdb` (`limit`, default 10, at most
/// `--max-lookup-results` with a warning): series counts by metric name
/// and label pair, from every shard's in-memory index (no walk of the
/// series).
pub async fn tsdb(State(s): State<Shared>, p: super::params::Params) -> Result<Response, ApiError> {
    let cap = s.cfg.limits.max_lookup_results;
    let asked = p.limit()?.unwrap_or(10);
    let limit = asked.min(cap);
    let node = s.node.clone();
    let fetch = async move {
        let st = node.tsdb_stats().await.map_err(super::cluster_error)?;
        Ok((st, node.stats().disk_usage_bytes))
    };
    super::lookup::run(fetch, move |(st, disk_usage_bytes)| {
        let top = |v: Vec<(String, u64)>| -> Vec<serde_json::Value> {
            v.into_iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect()
        };
        // The label pairs are the longest list.
        let mut warnings = Vec::new();
        if limit < asked && st.num_label_pairs() > limit as u64 {
            warnings.push(format!(
                "results truncated due to limit (--max-lookup-results={cap})"
            ));
        }
        let data = json!({
            "headStats": {
                "numSeries": st.num_series,
                "numLabelPairs": st.num_label_pairs(),
                "chunkCount": serde_json::Value::Null,
                "minTime": serde_json::Value::Null,
                "maxTime": serde_json::Value::Null,
            },
            "seriesCountByMetricName": top(st.series_count_by_metric_name(limit)),
            "labelValueCountByLabelName": top(st.label_value_count_by_label_name(limit)),
            "memoryInBytesByLabelName": top(st.memory_in_bytes_by_label_name(limit)),
            "seriesCountByLabelValuePair": top(st.series_count_by_label_value_pair(limit)),
            "diskUsageBytes": disk_usage_bytes,
        });
        Success::with_notes(data, warnings, vec![]).into_response()
    })
    .await
}

/// `GET /-/healthy`.
pub async fn healthy() -> Response {
    (StatusCode::OK, "Silverback is Healthy.\n").into_response()
}

/// `GET /-/ready`: 200 once the node has joined its groups and replayed.
pub async fn ready(State(s): State<Shared>) -> Response {
    if s.node.is_ready() {
        (StatusCode::OK, "Silverback is Ready.\n").into_response()
    } else if let Some(why) = s.node.disk_problem() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Service Unavailable: {why}\n"),
        )
            .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

/// The content type of [`metrics`].
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub async fn metrics(State(s): State<Shared>) -> Response {
    let text = s.metrics.render(&s.node.stats(), s.node.is_meta_leader());
    ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response()
}
