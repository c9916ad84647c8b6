//! Configuration: command-line flags ([`RunArgs`], clap) and the optional YAML
//! file given by `--config` ([`FileConfig`], serde), merged into one
//! [`Config`]. A flag given on the command line wins over the same key in the
//! file; keys not set anywhere take the defaults documented in `--help`.
//!
//! Every flag `--some-name` has the YAML key `some_name` (flat, no nesting),
//! so the two stay one-to-one: [`FileConfig`] denies unknown keys, and bad
//! values fail at start with a message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use query::parser::ParseOptions;
use serde::{Deserialize, Serialize};

use crate::duration::PromDuration;

/// `--enable-feature` name for the experimental PromQL functions
/// (Prometheus' name).
pub const FEATURE_EXPERIMENTAL_FUNCTIONS: &str = query::parser::EXPERIMENTAL_FUNCTIONS_FEATURE;
/// `--enable-feature` name for `step()` / `range()` in duration expressions
/// (Prometheus' name).
pub const FEATURE_DURATION_EXPR: &str = "promql-duration-expr";
/// Every `--enable-feature` name Silverback acts on.
pub const KNOWN_FEATURES: &[&str] = &[FEATURE_EXPERIMENTAL_FUNCTIONS, FEATURE_DURATION_EXPR];

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of the server (the default command). Every flag is optional here so
/// that a value from the config file can fill it; defaults are applied in
/// [`Config::resolve`].
#[derive(Args, Debug, Default, Clone)]
pub struct RunArgs {
    /// YAML config file; its keys are the flag names with `_` for `-`
    /// (e.g. `data_dir`). Flags given on the command line win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the flags and the config file, print the resolved config and
    /// exit (0 when valid).
    #[arg(long)]
    pub check_config: bool,

    /// Data directory (RocksDB, Raft logs) [default: ./data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address for the Prometheus API and remote write
    /// [default: 127.0.0.1:9201]
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// gRPC listen address for node-to-node traffic [default: 127.0.0.1:9301]
    #[arg(long, value_name = "ADDR")]
    pub grpc_listen: Option<SocketAddr>,
    /// gRPC address other nodes dial to reach this one, when it differs
    /// from --grpc-listen (e.g. `silverback-3.silverback:9301` when
    /// listening on 0.0.0.0); needed with --join [default: this node's
    /// --peers entry, else --grpc-listen]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_addr: Option<String>,
    /// This node's id, unique in the cluster, > 0 [default: 1]
    #[arg(long, value_name = "ID")]
    pub node_id: Option<u64>,
    /// Initial cluster members as `ID=GRPC_ADDR`, comma-separated or
    /// repeated (e.g. `1=10.0.0.1:9301,2=10.0.0.2:9301`). Empty: a
    /// single-node cluster of this node.
    #[arg(long, value_name = "ID=ADDR", value_delimiter = ',')]
    pub peers: Vec<String>,
    /// gRPC address of a running member to join (instead of --peers)
    #[arg(long, value_name = "ADDR")]
    pub join: Option<String>,
    /// Number of shards, fixed when the cluster is created [default: 32]
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// How long a node may be unreachable before the meta leader re-creates
    /// its replicas on other nodes [default: 5m]
    #[arg(long, value_name = "DURATION")]
    pub down_grace: Option<PromDuration>,
    /// How often shard state is checkpointed and the Raft log purged
    /// [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub checkpoint_interval: Option<PromDuration>,
    /// Raft log entries always kept behind a checkpoint [default: 2000]
    #[arg(long, value_name = "N")]
    pub raft_log_keep: Option<u64>,
    /// Bytes of Raft log a leader keeps, over all groups it leads, for
    /// followers that fell behind (down or restarting), so they catch up
    /// from the log; one needing more gets a snapshot [default: 1073741824]
    #[arg(long, value_name = "BYTES")]
    pub raft_log_max_bytes: Option<u64>,
    /// Replicas per shard (capped at the node count) [default: 3]
    #[arg(long, value_name = "N")]
    pub replication_factor: Option<u32>,
    /// How long samples are kept, as a Prometheus duration [default: 15d]
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<PromDuration>,
    /// Prometheus rule file or glob; repeatable
    #[arg(long = "rule-file", value_name = "GLOB")]
    pub rule_files: Vec<String>,
    /// Alertmanager base URL (e.g. http://127.0.0.1:9093); repeatable
    #[arg(long = "alertmanager-url", value_name = "URL")]
    pub alertmanager_urls: Vec<String>,
    /// PEM CA certificates trusted for https Alertmanagers, besides the
    /// system's
    #[arg(long, value_name = "FILE")]
    pub alertmanager_ca_file: Option<PathBuf>,
    /// Log format [default: text]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter in tracing's env-filter syntax; RUST_LOG wins when set
    /// [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Interval at which the server writes its own /metrics into itself; 0
    /// turns it off [default: 15s]
    #[arg(long, value_name = "DURATION")]
    pub self_scrape_interval: Option<PromDuration>,

    /// Largest accepted HTTP request body in bytes (remote write bodies are
    /// compressed) [default: 33554432]
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most series in one remote write request [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_series_per_request: Option<usize>,
    /// Longest label name in bytes [default: 1024]
    #[arg(long, value_name = "BYTES")]
    pub max_label_name_length: Option<usize>,
    /// Longest label value in bytes [default: 4096]
    #[arg(long, value_name = "BYTES")]
    pub max_label_value_length: Option<usize>,
    /// Most labels on one series, __name__ included [default: 64]
    #[arg(long, value_name = "N")]
    pub max_labels_per_series: Option<usize>,
    /// Most samples one query may hold in memory at once: samples loaded, plus one slot per step of every series it builds; more is refused with 422 [default: 50000000]
    #[arg(long, value_name = "N")]
    pub max_query_samples: Option<usize>,
    /// Longest a query may run [default: 2m]
    #[arg(long, value_name = "DURATION")]
    pub query_timeout: Option<PromDuration>,
    /// Most queries evaluated at once; more wait [default: 20]
    #[arg(long, value_name = "N")]
    pub max_concurrent_queries: Option<usize>,
    /// Samples later than now plus this are refused (a sender with a wrong
    /// clock would otherwise block its series' real samples as out of
    /// order) [default: 10m]
    #[arg(long, value_name = "DURATION")]
    pub max_future: Option<PromDuration>,
    /// Most series in the cluster; a new series beyond it is refused (400).
    /// Each shard enforces its share, ⌈N / shards⌉; 0 = no limit
    /// [default: 0]
    #[arg(long, value_name = "N")]
    pub max_series: Option<u64>,
    /// Most series of one metric name in the cluster, enforced per shard
    /// like --max-series; 0 = no limit [default: 0]
    #[arg(long, value_name = "N")]
    pub max_series_per_metric: Option<u64>,
    /// Below this many free bytes on the data directory's volume the node
    /// refuses writes (503 "disk full") and reports not ready, until space
    /// is freed; 0 = never [default: 104857600]
    #[arg(long, value_name = "BYTES")]
    pub min_free_disk_bytes: Option<u64>,
    /// Most remote-write bytes (compressed plus uncompressed) being decoded
    /// and written at once; requests beyond it are answered 429
    /// [default: 536870912]
    #[arg(long, value_name = "BYTES")]
    pub max_inflight_write_bytes: Option<usize>,
    /// Series whose shard and id the ingest cache remembers (about 40 bytes
    /// each; a known series skips label parsing and validation)
    /// [default: 2000000]
    #[arg(long, value_name = "N")]
    pub ingest_cache_series: Option<usize>,
    /// Prometheus feature to switch on; comma-separated or repeated:
    /// `promql-experimental-functions` (experimental PromQL functions such
    /// as sort_by_label, and the limitk / limit_ratio aggregations),
    /// `promql-duration-expr` (step() and range() in durations). Unknown
    /// names are logged and ignored, as Prometheus does
    #[arg(long = "enable-feature", value_name = "NAME", value_delimiter = ',')]
    pub enable_feature: Vec<String>,
    /// Most results /api/v1/series, /api/v1/labels and
    /// /api/v1/label/*/values return, and most entries of each list of
    /// /api/v1/status/tsdb; more are cut off with a warning, as a smaller
    /// `limit` parameter does [default: 100000]
    #[arg(long, value_name = "N")]
    pub max_lookup_results: Option<usize>,

    /// Require HTTP basic auth with this user name on every endpoint except
    /// /-/healthy and /-/ready (needs --basic-auth-password-file)
    #[arg(long, value_name = "USER")]
    pub basic_auth_username: Option<String>,
    /// File holding the basic-auth password (trailing newline ignored)
    #[arg(long, value_name = "FILE")]
    pub basic_auth_password_file: Option<PathBuf>,
    /// Require `Authorization: Bearer <token>` with the token in this file
    /// (trailing newline ignored); may be combined with basic auth
    #[arg(long, value_name = "FILE")]
    pub bearer_token_file: Option<PathBuf>,
    /// Serve the HTTP API over TLS with this PEM certificate chain (needs
    /// --tls-key-file); off by default
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for --tls-cert-file
    #[arg(long, value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// Serve the admin endpoints (/api/v1/admin/...); off by default, as in
    /// Prometheus, so they answer 503 "admin APIs disabled"
    #[arg(long)]
    pub enable_admin_api: bool,
    /// Longest a client may take to send a request's headers; slower
    /// connections are closed [default: 10s]
    #[arg(long, value_name = "DURATION")]
    pub http_header_read_timeout: Option<PromDuration>,
    /// Longest an HTTP connection may stay without traffic before it is
    /// closed [default: 2m]
    #[arg(long, value_name = "DURATION")]
    pub http_idle_timeout: Option<PromDuration>,
    /// Most HTTP connections served at once (TLS handshakes included); more
    /// wait in the kernel's accept queue [default: 512]
    #[arg(long, value_name = "N")]
    pub http_max_connections: Option<usize>,
    /// File holding the shared cluster secret (surrounding whitespace
    /// ignored); every node-to-node gRPC call must carry it, --join
    /// included. Give every node the same file; make one with
    /// `openssl rand -hex 32`. Off by default
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// This node's certificate (PEM) for mutual TLS on the cluster port;
    /// its subjectAltName must hold DNS:node-<id>.silverback and
    /// DNS:silverback (scripts/make-cluster-certs.sh makes them). With
    /// --grpc-tls-key-file and --grpc-tls-ca-file, all three or none. Off
    /// by default
    #[arg(long, value_name = "FILE")]
    pub grpc_tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of --grpc-tls-cert-file
    #[arg(long, value_name = "FILE")]
    pub grpc_tls_key_file: Option<PathBuf>,
    /// The cluster's CA certificate (PEM): peers must present a certificate
    /// it signed
    #[arg(long, value_name = "FILE")]
    pub grpc_tls_ca_file: Option<PathBuf>,
}

/// The YAML config file: the same settings as [`RunArgs`], keyed by the flag
/// names with `_` for `-`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub http_listen: Option<SocketAddr>,
    pub grpc_listen: Option<SocketAddr>,
    pub advertise_addr: Option<String>,
    pub node_id: Option<u64>,
    pub peers: Option<Vec<String>>,
    pub join: Option<String>,
    pub shards: Option<u32>,
    pub down_grace: Option<PromDuration>,
    pub checkpoint_interval: Option<PromDuration>,
    pub raft_log_keep: Option<u64>,
    pub raft_log_max_bytes: Option<u64>,
    pub replication_factor: Option<u32>,
    pub retention: Option<PromDuration>,
    pub rule_files: Option<Vec<String>>,
    pub alertmanager_urls: Option<Vec<String>>,
    pub alertmanager_ca_file: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub self_scrape_interval: Option<PromDuration>,
    pub max_body_bytes: Option<usize>,
    pub max_series_per_request: Option<usize>,
    pub max_label_name_length: Option<usize>,
    pub max_label_value_length: Option<usize>,
    pub max_labels_per_series: Option<usize>,
    pub max_query_samples: Option<usize>,
    pub query_timeout: Option<PromDuration>,
    pub max_concurrent_queries: Option<usize>,
    pub max_future: Option<PromDuration>,
    pub max_series: Option<u64>,
    pub max_series_per_metric: Option<u64>,
    pub max_inflight_write_bytes: Option<usize>,
    pub min_free_disk_bytes: Option<u64>,
    pub ingest_cache_series: Option<usize>,
    pub enable_feature: Option<Vec<String>>,
    pub max_lookup_results: Option<usize>,
    pub basic_auth_username: Option<String>,
    pub basic_auth_password_file: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub enable_admin_api: Option<bool>,
    pub http_header_read_timeout: Option<PromDuration>,
    pub http_idle_timeout: Option<PromDuration>,
    pub http_max_connections: Option<usize>,
    pub cluster_secret_file: Option<PathBuf>,
    pub grpc_tls_cert_file: Option<PathBuf>,
    pub grpc_tls_key_file: Option<PathBuf>,
    pub grpc_tls_ca_file: Option<PathBuf>,
}

/// The HTTP listener's protections: admin endpoints off by default, and
/// bounds against slow or idle connections (slowloris).
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct HttpConfig {
    pub enable_admin_api: bool,
    pub http_header_read_timeout: PromDuration,
    pub http_idle_timeout: PromDuration,
    pub http_max_connections: usize,
}

/// Limits that protect the server from large or abusive requests.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_series_per_request: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    pub max_labels_per_series: usize,
    pub max_query_samples: usize,
    pub query_timeout: PromDuration,
    pub max_concurrent_queries: usize,
    pub max_future: PromDuration,
    pub max_series: u64,
    pub max_series_per_metric: u64,
    pub max_inflight_write_bytes: usize,
    pub min_free_disk_bytes: u64,
    pub ingest_cache_series: usize,
    pub max_lookup_results: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 << 20,
            max_series_per_request: 100_000,
            max_label_name_length: 1024,
            max_label_value_length: 4096,
            max_labels_per_series: 64,
            max_query_samples: 50_000_000,
            query_timeout: PromDuration::from_millis(120_000),
            max_concurrent_queries: 20,
            max_future: PromDuration::from_millis(600_000),
            max_series: 0,
            max_series_per_metric: 0,
            max_inflight_write_bytes: 512 << 20,
            min_free_disk_bytes: 100 << 20,
            ingest_cache_series: 2_000_000,
            max_lookup_results: 100_000,
        }
    }
}

/// One initial cluster member from `--peers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// Node id.
    pub id: u64,
    /// gRPC address.
    pub addr: String,
}

/// HTTP authentication settings (credentials read from files at start).
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// Basic-auth user and password.
    pub basic: Option<(String, String)>,
    /// Bearer token.
    pub bearer: Option<String>,
}

impl AuthConfig {
    /// True when any authentication is required.
    pub fn enabled(&self) -> bool {
        self.basic.is_some() || self.bearer.is_some()
    }
}

/// The resolved configuration the server runs with.
#[derive(Clone, Debug, Serialize)]
#[allow(missing_docs)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_listen: SocketAddr,
    pub grpc_listen: SocketAddr,
    pub advertise_addr: Option<String>,
    pub node_id: u64,
    pub peers: Vec<Peer>,
    pub join: Option<String>,
    pub shards: u32,
    pub down_grace: PromDuration,
    pub checkpoint_interval: PromDuration,
    pub raft_log_keep: u64,
    pub raft_log_max_bytes: u64,
    pub replication_factor: u32,
    pub retention: PromDuration,
    pub rule_files: Vec<String>,
    pub alertmanager_urls: Vec<String>,
    pub alertmanager_ca_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub self_scrape_interval: PromDuration,
    #[serde(flatten)]
    pub limits: Limits,
    /// `--enable-feature` names, split at commas.
    pub enable_feature: Vec<String>,
    pub basic_auth_username: Option<String>,
    pub basic_auth_password_file: Option<PathBuf>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    #[serde(flatten)]
    pub http: HttpConfig,
    pub cluster_secret_file: Option<PathBuf>,
    pub grpc_tls_cert_file: Option<PathBuf>,
    pub grpc_tls_key_file: Option<PathBuf>,
    pub grpc_tls_ca_file: Option<PathBuf>,
    /// Credentials loaded from the files above (never serialized).
    #[serde(skip)]
    pub auth: AuthConfig,
    /// The secret loaded from `cluster_secret_file` (never serialized).
    #[serde(skip)]
    pub cluster_secret: Option<cluster::auth::ClusterSecret>,
    /// The certificates loaded from `grpc_tls_*_file` (never serialized).
    #[serde(skip)]
    pub cluster_tls: Option<cluster::tls::ClusterTls>,
}

/// A configuration problem, naming the flag/key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is not valid (serde names the key).
    #[error("invalid config file {path}: {msg}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The key (when known) and serde's message, with the line.
        msg: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid value for {key}: {msg}")]
    Invalid {
        /// The flag/key name.
        key: &'static str,
        /// What is wrong.
        msg: String,
    },
}

fn invalid(key: &'static str, msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        msg: msg.into(),
    }
}

impl FileConfig {
    /// Reads and parses a YAML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses YAML text (an empty document is an empty config).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(FileConfig::default());
        }
        // serde_path_to_error names the key whose value is bad (serde_yaml
        // alone reports only the position for custom errors).
        serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|e| {
            let key = e.path().to_string();
            let msg = if key == "." {
                e.inner().to_string()
            } else {
                format!("{key}: {}", e.inner())
            };
            ConfigError::Parse {
                path: path.to_path_buf(),
                msg,
            }
        })
    }
}

fn parse_peer(s: &str) -> Result<Peer, ConfigError> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| invalid("peers", format!("{s:?} is not ID=ADDR")))?;
    let id: u64 = id.trim().parse().map_err(|_| {
        invalid(
            "peers",
            format!("{s:?}: node id must be a positive integer"),
        )
    })?;
    if id == 0 || addr.trim().is_empty() {
        return Err(invalid(
            "peers",
            format!("{s:?} is not ID=ADDR with ID > 0"),
        ));
    }
    Ok(Peer {
        id,
        addr: addr.trim().to_string(),
    })
}

fn read_secret(key: &'static str, path: &Path) -> Result<String, ConfigError> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        return Err(invalid(key, format!("{} is empty", path.display())));
    }
    Ok(s)
}

macro_rules! pick {
    ($args:ident, $file:ident, $field:ident, $default:expr) => {
        $args
            .$field
            .clone()
            .or($file.$field.clone())
            .unwrap_or_else(|| $default)
    };
}

fn pick_vec(args: &[String], file: &Option<Vec<String>>) -> Vec<String> {
    if args.is_empty() {
        file.clone().unwrap_or_default()
    } else {
        args.to_vec()
    }
}

impl HttpConfig {
    fn merge(args: &RunArgs, file: &FileConfig) -> Result<HttpConfig, ConfigError> {
        let c = HttpConfig {
            enable_admin_api: args.enable_admin_api || file.enable_admin_api.unwrap_or(false),
            http_header_read_timeout: pick!(
                args,
                file,
                http_header_read_timeout,
                PromDuration::from_millis(10_000)
            ),
            http_idle_timeout: pick!(
                args,
                file,
                http_idle_timeout,
                PromDuration::from_millis(120_000)
            ),
            http_max_connections: pick!(args, file, http_max_connections, 512),
        };
        if c.http_header_read_timeout.0.is_zero() {
            return Err(invalid("http_header_read_timeout", "must be > 0"));
        }
        if c.http_idle_timeout.0.is_zero() {
            return Err(invalid("http_idle_timeout", "must be > 0"));
        }
        if c.http_max_connections == 0 {
            return Err(invalid("http_max_connections", "must be > 0"));
        }
        Ok(c)
    }
}

impl Config {
    /// Merges flags over the config file (if `--config` was given) over the
    /// defaults, then validates.
    pub fn resolve(args: &RunArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => FileConfig::load(p)?,
            None => FileConfig::default(),
        };
        Self::merge(args, &file)
    }

    /// Merges already-parsed flags and file, then validates.
    pub fn merge(args: &RunArgs, file: &FileConfig) -> Result<Config, ConfigError> {
        let d = Limits::default();
        let limits = Limits {
            max_future: pick!(args, file, max_future, d.max_future),
            ingest_cache_series: pick!(args, file, ingest_cache_series, d.ingest_cache_series),
            max_series: pick!(args, file, max_series, d.max_series),
            max_series_per_metric: pick!(
                args,
                file,
                max_series_per_metric,
                d.max_series_per_metric
            ),
            max_inflight_write_bytes: pick!(
                args,
                file,
                max_inflight_write_bytes,
                d.max_inflight_write_bytes
            ),
            min_free_disk_bytes: pick!(args, file, min_free_disk_bytes, d.min_free_disk_bytes),
            max_body_bytes: pick!(args, file, max_body_bytes, d.max_body_bytes),
            max_series_per_request: pick!(
                args,
                file,
                max_series_per_request,
                d.max_series_per_request
            ),
            max_label_name_length: pick!(
                args,
                file,
                max_label_name_length,
                d.max_label_name_length
            ),
            max_label_value_length: pick!(
                args,
                file,
                max_label_value_length,
                d.max_label_value_length
            ),
            max_labels_per_series: pick!(
                args,
                file,
                max_labels_per_series,
                d.max_labels_per_series
            ),
            max_query_samples: pick!(args, file, max_query_samples, d.max_query_samples),
            query_timeout: pick!(args, file, query_timeout, d.query_timeout),
            max_concurrent_queries: pick!(
                args,
                file,
                max_concurrent_queries,
                d.max_concurrent_queries
            ),
            max_lookup_results: pick!(args, file, max_lookup_results, d.max_lookup_results),
        };
        let peers = pick_vec(&args.peers, &file.peers)
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_peer(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cfg = Config {
            data_dir: pick!(args, file, data_dir, PathBuf::from("./data")),
            http_listen: pick!(args, file, http_listen, ([127, 0, 0, 1], 9201).into()),
            grpc_listen: pick!(args, file, grpc_listen, ([127, 0, 0, 1], 9301).into()),
            advertise_addr: args.advertise_addr.clone().or(file.advertise_addr.clone()),
            node_id: pick!(args, file, node_id, 1),
            peers,
            join: args.join.clone().or(file.join.clone()),
            shards: pick!(args, file, shards, 32),
            down_grace: pick!(args, file, down_grace, PromDuration::from_millis(300_000)),
            checkpoint_interval: pick!(
                args,
                file,
                checkpoint_interval,
                PromDuration::from_millis(30_000)
            ),
            raft_log_keep: pick!(args, file, raft_log_keep, 2_000),
            raft_log_max_bytes: pick!(args, file, raft_log_max_bytes, 1 << 30),
            replication_factor: pick!(args, file, replication_factor, 3),
            retention: pick!(
                args,
                file,
                retention,
                PromDuration::from_millis(15 * 86_400_000)
            ),
            rule_files: pick_vec(&args.rule_files, &file.rule_files),
            alertmanager_urls: pick_vec(&args.alertmanager_urls, &file.alertmanager_urls),
            alertmanager_ca_file: args
                .alertmanager_ca_file
                .clone()
                .or(file.alertmanager_ca_file.clone()),
            log_format: pick!(args, file, log_format, LogFormat::Text),
            log_level: pick!(args, file, log_level, "info".to_string()),
            self_scrape_interval: pick!(
                args,
                file,
                self_scrape_interval,
                PromDuration::from_millis(15_000)
            ),
            limits,
            enable_feature: pick_vec(&args.enable_feature, &file.enable_feature)
                .iter()
                .flat_map(|f| f.split(','))
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect(),
            basic_auth_username: args
                .basic_auth_username
                .clone()
                .or(file.basic_auth_username.clone()),
            basic_auth_password_file: args
                .basic_auth_password_file
                .clone()
                .or(file.basic_auth_password_file.clone()),
            bearer_token_file: args
                .bearer_token_file
                .clone()
                .or(file.bearer_token_file.clone()),
            tls_cert_file: args.tls_cert_file.clone().or(file.tls_cert_file.clone()),
            tls_key_file: args.tls_key_file.clone().or(file.tls_key_file.clone()),
            http: HttpConfig::merge(args, file)?,
            cluster_secret_file: args
                .cluster_secret_file
                .clone()
                .or(file.cluster_secret_file.clone()),
            grpc_tls_cert_file: args
                .grpc_tls_cert_file
                .clone()
                .or(file.grpc_tls_cert_file.clone()),
            grpc_tls_key_file: args
                .grpc_tls_key_file
                .clone()
                .or(file.grpc_tls_key_file.clone()),
            grpc_tls_ca_file: args
                .grpc_tls_ca_file
                .clone()
                .or(file.grpc_tls_ca_file.clone()),
            auth: AuthConfig::default(),
            cluster_secret: None,
            cluster_tls: None,
        };
        cfg.validate()?;
        cfg.auth = cfg.load_auth()?;
        cfg.cluster_secret = cfg.load_cluster_secret()?;
        cfg.cluster_tls = cfg.load_cluster_tls()?;
        Ok(cfg)
    }

    /// The parser switches `--enable-feature` turns on, for every query the
    /// server parses (API, rule files).
    pub fn parse_options(&self) -> ParseOptions {
        let on = |f: &str| self.enable_feature.iter().any(|x| x == f);
        ParseOptions {
            experimental_functions: on(FEATURE_EXPERIMENTAL_FUNCTIONS),
            duration_expr_functions: on(FEATURE_DURATION_EXPR),
            ..ParseOptions::NONE
        }
    }

    /// `--enable-feature` names Silverback does not know (logged at start
    /// and otherwise ignored, as Prometheus does).
    pub fn unknown_features(&self) -> Vec<&str> {
        self.enable_feature
            .iter()
            .map(String::as_str)
            .filter(|f| !KNOWN_FEATURES.contains(f))
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id == 0 {
            return Err(invalid("node_id", "must be > 0"));
        }
        if self.checkpoint_interval.0.is_zero() {
            return Err(invalid("checkpoint_interval", "must be > 0"));
        }
        if self.shards == 0 {
            return Err(invalid("shards", "must be > 0"));
        }
        if self.replication_factor == 0 {
            return Err(invalid("replication_factor", "must be > 0"));
        }
        if self.retention.0 < Duration::from_secs(60) {
            return Err(invalid("retention", "must be at least 1m"));
        }
        if let Some(a) = &self.advertise_addr {
            if a.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(invalid("advertise_addr", format!("{a:?} is not HOST:PORT")));
            }
        }
        if self.join.is_some() && !self.peers.is_empty() {
            return Err(invalid("join", "give either --join or --peers, not both"));
        }
        if !self.peers.is_empty() && !self.peers.iter().any(|p| p.id == self.node_id) {
            return Err(invalid(
                "peers",
                format!("must include this node (--node-id {})", self.node_id),
            ));
        }
        for u in &self.alertmanager_urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(invalid(
                    "alertmanager_urls",
                    format!("{u:?} is not an http(s) URL"),
                ));
            }
        }
        let l = &self.limits;
        for (key, v) in [
            ("max_body_bytes", l.max_body_bytes),
            ("max_series_per_request", l.max_series_per_request),
            ("max_label_name_length", l.max_label_name_length),
            ("max_label_value_length", l.max_label_value_length),
            ("max_labels_per_series", l.max_labels_per_series),
            ("max_query_samples", l.max_query_samples),
            ("max_concurrent_queries", l.max_concurrent_queries),
            ("max_lookup_results", l.max_lookup_results),
            ("max_inflight_write_bytes", l.max_inflight_write_bytes),
        ] {
            if v == 0 {
                return Err(invalid(key, "must be > 0"));
            }
        }
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(_), None) => return Err(invalid("tls_key_file", "required with tls_cert_file")),
            (None, Some(_)) => return Err(invalid("tls_cert_file", "required with tls_key_file")),
            _ => {}
        }
        if l.query_timeout.0.is_zero() {
            return Err(invalid("query_timeout", "must be > 0"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(invalid(
                "log_level",
                format!("{:?} is not a valid filter", self.log_level),
            ));
        }
        Ok(())
    }

    fn load_auth(&self) -> Result<AuthConfig, ConfigError> {
        let basic = match (&self.basic_auth_username, &self.basic_auth_password_file) {
            (Some(u), Some(p)) => Some((u.clone(), read_secret("basic_auth_password_file", p)?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "basic_auth_password_file",
                    "required with basic_auth_username",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "basic_auth_username",
                    "required with basic_auth_password_file",
                ))
            }
        };
        let bearer = match &self.bearer_token_file {
            Some(p) => Some(read_secret("bearer_token_file", p)?),
            None => None,
        };
        Ok(AuthConfig { basic, bearer })
    }

    fn load_cluster_secret(&self) -> Result<Option<cluster::auth::ClusterSecret>, ConfigError> {
        let Some(p) = &self.cluster_secret_file else {
            return Ok(None);
        };
        let key = "cluster_secret_file";
        let text = std::fs::read_to_string(p)
            .map_err(|e| invalid(key, format!("cannot read {}: {e}", p.display())))?;
        cluster::auth::ClusterSecret::new(&text)
            .map(Some)
            .map_err(|e| invalid(key, format!("{}: {e}", p.display())))
    }

    /// Mutual TLS on the cluster port: all three `grpc_tls_*_file` keys or
    /// none; the certificate must come from the CA and name this node.
    fn load_cluster_tls(&self) -> Result<Option<cluster::tls::ClusterTls>, ConfigError> {
        let keys = [
            ("grpc_tls_cert_file", &self.grpc_tls_cert_file),
            ("grpc_tls_key_file", &self.grpc_tls_key_file),
            ("grpc_tls_ca_file", &self.grpc_tls_ca_file),
        ];
        if keys.iter().all(|(_, v)| v.is_none()) {
            return Ok(None);
        }
        if let Some((missing, _)) = keys.iter().find(|(_, v)| v.is_none()) {
            return Err(invalid(
                missing,
                "mutual TLS on the cluster port needs grpc_tls_cert_file, grpc_tls_key_file \
                 and grpc_tls_ca_file together",
            ));
        }
        let (Some(cert), Some(key), Some(ca)) = (
            &self.grpc_tls_cert_file,
            &self.grpc_tls_key_file,
            &self.grpc_tls_ca_file,
        ) else {
            return Ok(None);
        };
        cluster::tls::ClusterTls::load(cert, key, ca, self.node_id)
            .map(Some)
            .map_err(|e| invalid(e.key(), e.to_string()))
    }

    /// The config as YAML (for `/api/v1/status/config` and `--check-config`).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    /// The settings as Prometheus' `/api/v1/status/flags` map: flag name ->
    /// value as a string (lists comma-joined, unset as "").
    pub fn flags(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let v = serde_json::to_value(self).unwrap_or_default();
        if let serde_json::Value::Object(map) = v {
            for (k, v) in map {
                let s = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::Array(a) => a
                        .iter()
                        .map(|x| match x {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Object(o) => format!(
                                "{}={}",
                                o.get("id").map(|v| v.to_string()).unwrap_or_default(),
                                o.get("addr").and_then(|v| v.as_str()).unwrap_or_default()
                            ),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                out.insert(k.replace('_', "-"), s);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(a: &[&str]) -> RunArgs {
        T::try_parse_from(std::iter::once("silverback").chain(a.iter().copied()))
            .unwrap()
            .run
    }

    fn file(text: &str) -> Result<FileConfig, ConfigError> {
        FileConfig::parse(Path::new("test.yml"), text)
    }

    #[test]
    fn defaults() {
        let c = Config::merge(&RunArgs::default(), &FileConfig::default()).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:9201");
        assert_eq!(c.grpc_listen.to_string(), "127.0.0.1:9301");
        assert_eq!(c.retention.to_string(), "15d");
        assert_eq!(c.self_scrape_interval.to_string(), "15s");
        assert_eq!((c.node_id, c.shards, c.replication_factor), (1, 32, 3));
        assert!(c.peers.is_empty() && !c.auth.enabled());
    }

    #[test]
    fn flags_win_over_file() {
        let f = file("shards: 8\nretention: 2d\nrule_files: [a.yml]\nnode_id: 4\n").unwrap();
        let c = Config::merge(&args(&["--shards", "4", "--rule-file", "b.yml"]), &f).unwrap();
        assert_eq!(c.shards, 4);
        assert_eq!(c.retention.to_string(), "2d");
        assert_eq!(c.rule_files, vec!["b.yml".to_string()]);
        assert_eq!(c.node_id, 4);
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        let e = file("shardz: 8\n").unwrap_err().to_string();
        assert!(e.contains("shardz"), "{e}");
        let e = file("retention: 15x\n").unwrap_err().to_string();
        assert!(e.contains("retention") && e.contains("15x"), "{e}");
        let e = file("http_listen: nowhere\n").unwrap_err().to_string();
        assert!(e.contains("http_listen"), "{e}");
        let e = Config::merge(&args(&["--shards", "0"]), &FileConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("shards"), "{e}");
    }

    #[test]
    fn peers_parse_and_must_include_self() {
        let c = Config::merge(
            &args(&[
                "--node-id",
                "2",
                "--peers",
                "1=a:1,2=b:2",
                "--peers",
                "3=c:3",
            ]),
            &FileConfig::default(),
        )
        .unwrap();
        assert_eq!(c.peers.len(), 3);
        assert_eq!(
            c.peers[1],
            Peer {
                id: 2,
                addr: "b:2".into()
            }
        );
        let e = Config::merge(
            &args(&["--node-id", "9", "--peers", "1=a:1"]),
            &FileConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("peers"), "{e}");
        let e = Config::merge(&args(&["--peers", "x"]), &FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("ID=ADDR"), "{e}");
    }

    #[test]
    fn flags_map_uses_flag_names() {
        let c = Config::merge(&args(&["--peers", "1=a:1"]), &FileConfig::default()).unwrap();
        let f = c.flags();
        assert_eq!(f["retention"], "15d");
        assert_eq!(f["max-body-bytes"], "33554432");
        assert_eq!(f["peers"], "1=a:1");
        assert_eq!(f["join"], "");
    }

    #[test]
    fn enable_feature_flag_and_key() {
        let c = Config::merge(&RunArgs::default(), &FileConfig::default()).unwrap();
        assert_eq!(c.parse_options(), ParseOptions::NONE);
        let c = Config::merge(
            &args(&[
                "--enable-feature",
                "promql-experimental-functions,no-such-thing",
                "--enable-feature=promql-duration-expr",
            ]),
            &FileConfig::default(),
        )
        .unwrap();
        let o = c.parse_options();
        assert!(o.experimental_functions && o.duration_expr_functions);
        assert!(!o.fill_modifiers && !o.extended_range_selectors);
        assert_eq!(c.unknown_features(), vec!["no-such-thing"]);
        assert_eq!(
            c.flags()["enable-feature"],
            "promql-experimental-functions,no-such-thing,promql-duration-expr"
        );
        // The YAML key, also comma-separated inside an item.
        let f = file("enable_feature: [\"promql-experimental-functions, x\"]\n").unwrap();
        let c = Config::merge(&RunArgs::default(), &f).unwrap();
        assert!(c.parse_options().experimental_functions);
        assert_eq!(c.unknown_features(), vec!["x"]);
        // A flag on the command line replaces the file's list.
        let c = Config::merge(&args(&["--enable-feature", "y"]), &f).unwrap();
        assert!(!c.parse_options().experimental_functions);
    }

    #[test]
    fn http_protections() {
        let c = Config::merge(&RunArgs::default(), &FileConfig::default()).unwrap();
        assert!(!c.http.enable_admin_api);
        assert_eq!(c.http.http_header_read_timeout.to_string(), "10s");
        assert_eq!(c.http.http_max_connections, 512);
        assert_eq!(c.flags()["enable-admin-api"], "false");
        let f = file("enable_admin_api: true\nhttp_idle_timeout: 30s\n").unwrap();
        let c = Config::merge(&args(&["--http-max-connections", "7"]), &f).unwrap();
        assert!(c.http.enable_admin_api);
        assert_eq!(c.http.http_idle_timeout.to_string(), "30s");
        assert_eq!(c.http.http_max_connections, 7);
        let e = Config::merge(
            &args(&["--http-max-connections", "0"]),
            &FileConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("http_max_connections"), "{e}");
    }

    #[test]
    fn auth_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "secret\n").unwrap();
        let pw = p.to_str().unwrap();
        let c = Config::merge(
            &args(&[
                "--basic-auth-username",
                "u",
                "--basic-auth-password-file",
                pw,
            ]),
            &FileConfig::default(),
        )
        .unwrap();
        assert_eq!(c.auth.basic, Some(("u".into(), "secret".into())));
        assert!(Config::merge(
            &args(&["--basic-auth-username", "u"]),
            &FileConfig::default()
        )
        .is_err());
    }

    #[test]
    fn cluster_secret_file_is_read_from_flag_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret");
        std::fs::write(&p, "  0123abcd\n").unwrap();
        let path = p.to_str().unwrap();
        let c = Config::merge(
            &args(&["--cluster-secret-file", path]),
            &FileConfig::default(),
        )
        .unwrap();
        assert!(c.cluster_secret.as_ref().unwrap().matches(b"0123abcd"));
        let f = file(&format!("cluster_secret_file: {path}\n")).unwrap();
        let c = Config::merge(&RunArgs::default(), &f).unwrap();
        assert!(c.cluster_secret.is_some());
        // The path shows in the config, never the secret.
        assert!(!c.to_yaml().contains("0123abcd"));
        std::fs::write(&p, "\n").unwrap();
        let e = Config::merge(
            &args(&["--cluster-secret-file", path]),
            &FileConfig::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cluster_secret_file") && e.contains("empty"),
            "{e}"
        );
    }
}
