//! The Prometheus-compatible HTTP API: [`routes::router`] is the one table of
//! every endpoint; handlers live in one module per area ([`query`], [`meta`],
//! [`status`], [`write`], [`rules`]); [`json`] and [`render`] produce
//! Prometheus' JSON shapes; [`params`] parses request parameters;
//! [`middleware`] does auth, logging and per-route metrics; [`lookup`] runs
//! the series-metadata endpoints off the runtime's workers.

pub mod ast_json;
pub mod json;
pub mod lookup;
pub mod meta;
pub mod middleware;
pub mod params;
pub mod query;
pub mod render;
pub mod routes;
pub mod rules;
pub mod status;
pub mod write;

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::{ApiError, ErrorKind};
use crate::ingest::remote_write::Metadata;
use crate::metrics::Metrics;

/// Most metadata entries kept per metric family.
const MAX_METADATA_PER_METRIC: usize = 10;

/// Metric metadata received through remote write, kept in memory.
#[derive(Default, Debug)]
pub struct MetadataStore {
    by_metric: RwLock<BTreeMap<String, Vec<Metadata>>>,
}

impl MetadataStore {
    /// Records entries (newest first, deduplicated, bounded per metric).
    pub fn record(&self, entries: Vec<(String, Metadata)>) {
        if entries.is_empty() {
            return;
        }
        let mut m = self.by_metric.write();
        for (name, md) in entries {
            let v = m.entry(name).or_default();
            if v.first() == Some(&md) {
                continue;
            }
            v.retain(|x| x != &md);
            v.insert(0, md);
            v.truncate(MAX_METADATA_PER_METRIC);
        }
    }

    /// A copy of the entries, optionally for one metric.
    pub fn snapshot(&self, metric: Option<&str>) -> BTreeMap<String, Vec<Metadata>> {
        let m = self.by_metric.read();
        match metric {
            Some(name) => m
                .get(name)
                .map(|v| BTreeMap::from([(name.to_string(), v.clone())]))
                .unwrap_or_default(),
            None => m.clone(),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    /// This cluster member.
    pub node: Arc<cluster::Node>,
    /// The resolved configuration.
    pub cfg: Arc<Config>,
    /// The server's metrics.
    pub metrics: Arc<Metrics>,
    /// Metadata from remote write.
    pub metadata: MetadataStore,
    /// Bounds concurrent queries (`--max-concurrent-queries`).
    pub query_slots: Semaphore,
    /// When the server started.
    pub started: chrono::DateTime<chrono::Utc>,
    /// Rule manager state (set by the rules module when it runs).
    pub rules: rules::RulesSlot,
    /// Raw labels -> shard and series id, for remote write.
    pub ingest_cache: crate::ingest::cache::IngestCache,
    /// Remote-write bytes in flight, in KiB (`--max-inflight-write-bytes`).
    pub write_bytes: Arc<Semaphore>,
}

/// The state as axum shares it.
pub type Shared = Arc<AppState>;

impl AppState {
    /// Builds the state.
    pub fn new(node: Arc<cluster::Node>, cfg: Arc<Config>, metrics: Arc<Metrics>) -> Self {
        AppState {
            node,
            query_slots: Semaphore::new(cfg.limits.max_concurrent_queries),
            ingest_cache: crate::ingest::cache::IngestCache::new(cfg.limits.ingest_cache_series),
            write_bytes: Arc::new(Semaphore::new(
                (cfg.limits.max_inflight_write_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS),
            )),
            cfg,
            metrics,
            metadata: MetadataStore::default(),
            started: chrono::Utc::now(),
            rules: rules::RulesSlot::default(),
        }
    }
}

/// The one mapping from cluster error kinds to API error kinds.
pub fn cluster_error(e: cluster::ClusterError) -> ApiError {
    let kind = match e.kind() {
        cluster::ErrorKind::BadData => ErrorKind::BadData,
        cluster::ErrorKind::Overloaded => ErrorKind::Overloaded,
        cluster::ErrorKind::NoLeader | cluster::ErrorKind::Unavailable => ErrorKind::Unavailable,
        cluster::ErrorKind::Internal => ErrorKind::Internal,
    };
    ApiError::new(kind, e.to_string())
}

/// The one mapping from query error kinds to API error kinds.
pub fn query_error(e: ::query::engine::QueryError) -> ApiError {
    let kind = match e.kind() {
        "bad_data" => ErrorKind::BadData,
        "execution" => ErrorKind::Execution,
        "timeout" => ErrorKind::Timeout,
        "canceled" => ErrorKind::Canceled,
        "unavailable" => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    ApiError::new(kind, e.to_string())
}

/// Maps a store error to an API error.
pub fn queryable_error(e: ::query::model::QueryableError) -> ApiError {
    use ::query::model::QueryableError as Q;
    let kind = match &e {
        Q::Unavailable(_) => ErrorKind::Unavailable,
        Q::Limit(_) => ErrorKind::Execution,
        Q::BadData(_) => ErrorKind::BadData,
        Q::Internal(_) => ErrorKind::Internal,
        Q::TooManySamples => ErrorKind::Execution,
        Q::Timeout => ErrorKind::Timeout,
    };
    ApiError::new(kind, e.to_string())
}
