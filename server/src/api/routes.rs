//! The one route table: every HTTP endpoint Silverback serves.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use super::{meta, middleware, query, rules, status, write, Shared};
use crate::error::{ApiError, ErrorKind};

/// Builds the router with every endpoint, body limits, auth, logging and
/// metrics.
pub fn router(state: Shared) -> Router {
    let body_limit = state.cfg.limits.max_body_bytes;
    let slot = axum::middleware::from_fn_with_state(state.clone(), middleware::query_slot);
    Router::new()
        // Ingestion (the handler enforces --max-body-bytes itself, with a
        // message naming the flag).
        .route(
            "/api/v1/write",
            post(write::remote_write).layer(DefaultBodyLimit::disable()),
        )
        // PromQL.
        .route("/api/v1/query", get(query::instant).post(query::instant))
        .route("/api/v1/query_range", get(query::range).post(query::range))
        .route(
            "/api/v1/query_exemplars",
            get(query::exemplars).post(query::exemplars),
        )
        .route(
            "/api/v1/format_query",
            get(query::format).post(query::format),
        )
        .route(
            "/api/v1/parse_query",
            get(query::parse_tree).post(query::parse_tree),
        )
        // Series metadata (each takes a query slot and honours the query
        // timeout, as /api/v1/status/tsdb below does).
        .route(
            "/api/v1/series",
            get(meta::series)
                .post(meta::series)
                .route_layer(slot.clone()),
        )
        .route(
            "/api/v1/labels",
            get(meta::label_names)
                .post(meta::label_names)
                .route_layer(slot.clone()),
        )
        .route(
            "/api/v1/label/{name}/values",
            get(meta::label_values).route_layer(slot.clone()),
        )
        .route("/api/v1/metadata", get(meta::metadata))
        // Rules and alerts.
        .route("/api/v1/rules", get(rules::rules).post(rules::rules))
        .route("/api/v1/alerts", get(rules::alerts).post(rules::alerts))
        .route(
            "/-/reload",
            post(rules::reload)
                .put(rules::reload)
                .route_layer(axum::middleware::from_fn(middleware::same_site)),
        )
        // Status.
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/tsdb", get(status::tsdb).route_layer(slot))
        .route("/api/v1/status/cluster", get(status::cluster))
        .route(
            "/api/v1/admin/cluster/decommission",
            post(status::decommission)
                .put(status::decommission)
                .route_layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::admin,
                )),
        )
        .route("/-/healthy", get(status::healthy))
        .route("/-/ready", get(status::ready))
        .route("/metrics", get(status::metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::auth,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!("no such endpoint: {}", uri.path()),
    )
}
