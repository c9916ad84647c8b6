//! The server's own metrics, exposed at `/metrics` in the OpenMetrics text
//! format via the `prometheus-client` crate.
//!
//! Counters and histograms are updated where things happen (ingest, HTTP,
//! queries); gauges that mirror cluster, storage and process state are
//! refreshed from a [`cluster::NodeStats`] and `/proc` just before
//! each encoding ([`Metrics::render`]).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use cluster::NodeStats as BackendStats;

/// `{reason=..}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why samples were rejected.
    pub reason: String,
}

/// `{handler=..}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerLabel {
    /// The route pattern.
    pub handler: String,
}

/// `{handler=.., code=..}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandlerCodeLabel {
    /// The route pattern.
    pub handler: String,
    /// HTTP status code.
    pub code: String,
}

/// Query kinds as a label set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryKind {
    /// `instant` or `range`.
    pub query_type: String,
}

/// `{group=.., shard=..}` for Raft figures.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabel {
    /// Raft group id (0 = meta group).
    pub group: String,
}

type FGauge = Gauge<f64, AtomicU64>;

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// Samples accepted by storage.
    pub ingest_samples: Counter,
    /// Samples rejected, by reason.
    pub ingest_rejected: Family<ReasonLabel, Counter>,
    /// Remote write requests handled.
    pub ingest_requests: Counter,
    /// Remote write requests answered 429 (`--max-inflight-write-bytes`).
    pub ingest_throttled: Counter,
    /// Exemplars received and not stored.
    pub exemplars_dropped: Counter,
    /// Remote-write series found in the ingest cache.
    pub ingest_cache_hits: Counter,
    /// Remote-write series not in the ingest cache (validated, sent by
    /// labels).
    pub ingest_cache_misses: Counter,
    /// HTTP request latency per route.
    pub http_duration: Family<HandlerLabel, Histogram>,
    /// HTTP requests per route and status code.
    pub http_requests: Family<HandlerCodeLabel, Counter>,
    /// Query latency.
    pub query_duration: Family<QueryKind, Histogram>,
    /// Samples loaded by queries.
    pub query_samples: Counter,
    /// Queries currently running.
    pub queries_running: Gauge,
    /// Rule evaluations (one per rule per group cycle).
    pub rule_evaluations: Counter,
    /// Rule evaluations that failed.
    pub rule_evaluation_failures: Counter,
    /// Alerts posted to Alertmanager (counted per Alertmanager).
    pub notifications_sent: Counter,
    /// Alerts not delivered: queue full or every retry failed.
    pub notifications_dropped: Counter,
    raft_leader: Family<GroupLabel, Gauge>,
    raft_term: Family<GroupLabel, Gauge>,
    raft_last_log: Family<GroupLabel, Gauge>,
    raft_apply_lag: Family<GroupLabel, Gauge>,
    raft_snapshots_installed: Counter,
    storage_series: Gauge,
    storage_bytes: Gauge,
    meta_leader: Gauge,
    process_rss: Gauge,
    process_cpu: FGauge,
    process_fds: Gauge,
    process_start: FGauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s
    Histogram::new(exponential_buckets(0.001, 4.0, 9))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let m = Metrics {
            ingest_samples: Counter::default(),
            ingest_rejected: Family::default(),
            ingest_requests: Counter::default(),
            ingest_throttled: Counter::default(),
            exemplars_dropped: Counter::default(),
            ingest_cache_hits: Counter::default(),
            ingest_cache_misses: Counter::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            http_requests: Family::default(),
            query_duration: Family::new_with_constructor(latency_histogram),
            query_samples: Counter::default(),
            queries_running: Gauge::default(),
            rule_evaluations: Counter::default(),
            rule_evaluation_failures: Counter::default(),
            notifications_sent: Counter::default(),
            notifications_dropped: Counter::default(),
            raft_leader: Family::default(),
            raft_term: Family::default(),
            raft_last_log: Family::default(),
            raft_apply_lag: Family::default(),
            raft_snapshots_installed: Counter::default(),
            storage_series: Gauge::default(),
            storage_bytes: Gauge::default(),
            meta_leader: Gauge::default(),
            process_rss: Gauge::default(),
            process_cpu: FGauge::default(),
            process_fds: Gauge::default(),
            process_start: FGauge::default(),
            registry: Registry::default(),
        };
        // Names get the `silverback_` prefix here rather than through
        // `Registry::with_prefix`, so the `process_*` names stay standard.
        macro_rules! reg {
            ($name:expr, $help:expr, $m:ident) => {
                r.register(concat!("silverback_", $name), $help, m.$m.clone())
            };
        }
        reg!(
            "ingest_samples",
            "Samples accepted through remote write and self-scrape.",
            ingest_samples
        );
        reg!(
            "ingest_rejected_samples",
            "Samples rejected at ingestion, by reason.",
            ingest_rejected
        );
        reg!(
            "ingest_requests",
            "Remote write requests received.",
            ingest_requests
        );
        reg!(
            "ingest_throttled_requests",
            "Remote write requests refused with 429: too many bytes in flight (--max-inflight-write-bytes).",
            ingest_throttled
        );
        reg!(
            "ingest_exemplars_dropped",
            "Exemplars received and not stored (exemplar storage is not implemented).",
            exemplars_dropped
        );
        reg!(
            "ingest_cache_hits",
            "Remote-write series found in the ingest cache (written by id, labels not parsed).",
            ingest_cache_hits
        );
        reg!(
            "ingest_cache_misses",
            "Remote-write series not in the ingest cache (validated once and written by labels).",
            ingest_cache_misses
        );
        reg!(
            "rule_evaluations",
            "Rule evaluations on this node (the meta leader evaluates).",
            rule_evaluations
        );
        reg!(
            "rule_evaluation_failures",
            "Rule evaluations that failed.",
            rule_evaluation_failures
        );
        reg!(
            "notifications_sent",
            "Alerts posted to Alertmanager, per Alertmanager.",
            notifications_sent
        );
        reg!(
            "notifications_dropped",
            "Alerts not delivered to Alertmanager (queue full or retries exhausted).",
            notifications_dropped
        );
        reg!(
            "http_request_duration_seconds",
            "HTTP request latency by route.",
            http_duration
        );
        reg!(
            "http_requests",
            "HTTP requests by route and status code.",
            http_requests
        );
        reg!(
            "query_duration_seconds",
            "PromQL query latency by query type.",
            query_duration
        );
        reg!(
            "query_samples_loaded",
            "Samples loaded from storage by PromQL queries.",
            query_samples
        );
        reg!(
            "queries_running",
            "Queries and series lookups holding a query slot now (--max-concurrent-queries).",
            queries_running
        );
        reg!(
            "raft_is_leader",
            "1 if this node leads the Raft group.",
            raft_leader
        );
        reg!(
            "raft_term",
            "Current Raft term of the group on this node.",
            raft_term
        );
        reg!(
            "raft_last_log_index",
            "Last Raft log index of the group on this node.",
            raft_last_log
        );
        reg!(
            "raft_apply_lag_entries",
            "Committed log entries not yet applied, per group.",
            raft_apply_lag
        );
        reg!(
            "raft_snapshots_installed",
            "Shard snapshots this node received and installed (a replica that could not catch up from the log).",
            raft_snapshots_installed
        );
        reg!(
            "storage_series",
            "Series in the shard replicas hosted on this node.",
            storage_series
        );
        reg!(
            "storage_disk_usage_bytes",
            "Size of the RocksDB data on disk.",
            storage_bytes
        );
        reg!(
            "cluster_is_meta_leader",
            "1 if this node leads the meta group (evaluates rules).",
            meta_leader
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            m.process_rss.clone(),
        );
        r.register(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            m.process_cpu.clone(),
        );
        r.register(
            "process_open_fds",
            "Number of open file descriptors.",
            m.process_fds.clone(),
        );
        r.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            m.process_start.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Counts samples rejected for `reason`.
    pub fn reject(&self, reason: &str, n: u64) {
        self.ingest_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc_by(n);
    }

    /// Refreshes the state gauges and encodes everything as OpenMetrics text.
    pub fn render(&self, stats: &BackendStats, is_meta_leader: bool) -> String {
        for g in &stats.groups {
            let l = GroupLabel {
                group: g.group.to_string(),
            };
            self.raft_leader
                .get_or_create(&l)
                .set(i64::from(g.is_leader));
            self.raft_term.get_or_create(&l).set(g.term as i64);
            self.raft_last_log
                .get_or_create(&l)
                .set(g.last_log_index as i64);
            self.raft_apply_lag
                .get_or_create(&l)
                .set(g.apply_lag as i64);
        }
        self.raft_snapshots_installed.inner().store(
            stats.snapshots_installed,
            std::sync::atomic::Ordering::Relaxed,
        );
        let series: u64 = stats.groups.iter().filter_map(|g| g.series).sum();
        self.storage_series.set(series as i64);
        self.storage_bytes.set(stats.disk_usage_bytes as i64);
        self.meta_leader.set(i64::from(is_meta_leader));
        let p = crate::process::sample();
        self.process_rss.set(p.rss_bytes as i64);
        self.process_cpu.set(p.cpu_seconds);
        self.process_fds.set(p.open_fds as i64);
        self.process_start.set(p.start_time_seconds);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out = "# cannot encode metrics\n".into();
        }
        out
    }
}
