//! Starting and stopping the server: logging, the cluster node, the HTTP
//! listener, the self-scrape, and graceful shutdown on SIGTERM/SIGINT (stop
//! accepting, finish in-flight requests, checkpoint via
//! [`cluster::Node::shutdown`], exit 0).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use query::engine::{Engine, EngineOptions};
use tokio::net::TcpListener;

use crate::api::{routes, AppState, Shared};
use crate::config::{Config, LogFormat};
use crate::metrics::Metrics;
use crate::rules::group::{ClusterStore, Ctx};
use crate::rules::manager::Manager;
use crate::rules::notifier::Notifier;

/// Prometheus' default `--rules.alert.resend-delay`.
const RESEND_DELAY_MS: i64 = 60_000;

/// Installs the global tracing subscriber (RUST_LOG wins over
/// `--log-level`).
///
/// A line that cannot be written (stderr redirected to a file on a full
/// disk) is dropped: tracing-subscriber would otherwise report it with
/// `eprintln!` to the same stderr, which panics, inside whatever task was
/// logging (a Raft group's core, which then stops without a storage error
/// to show, so the node neither fails nor stops).
pub fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    let _ = match cfg.log_format {
        LogFormat::Json => b.json().try_init(),
        LogFormat::Text => b.try_init(),
    };
}

/// The cluster node configuration for `cfg`.
pub fn node_config(cfg: &Config) -> cluster::NodeConfig {
    let d = cluster::NodeConfig::default();
    cluster::NodeConfig {
        node_id: cfg.node_id,
        grpc_listen: cfg.grpc_listen,
        advertise_addr: cfg.advertise_addr.clone(),
        peers: cfg
            .peers
            .iter()
            .map(|p| (p.id, p.addr.clone()))
            .collect::<BTreeMap<_, _>>(),
        join: cfg.join.clone(),
        data_dir: cfg.data_dir.clone(),
        shards: cfg.shards,
        down_grace: cfg.down_grace.0,
        checkpoint_interval: cfg.checkpoint_interval.0,
        raft_log_keep: cfg.raft_log_keep,
        raft_log_max_bytes: cfg.raft_log_max_bytes,
        replication_factor: cfg.replication_factor as usize,
        storage: storage::StorageOptions {
            retention_ms: cfg.retention.0.as_millis() as i64,
            release_memory: Some(crate::alloc::release_free_memory),
            ..d.storage.clone()
        },
        cluster_secret: cfg.cluster_secret.clone(),
        max_series: cfg.limits.max_series,
        max_series_per_metric: cfg.limits.max_series_per_metric,
        min_free_disk_bytes: cfg.limits.min_free_disk_bytes,
        tls: cfg.cluster_tls.clone(),
        ..d
    }
}

/// Loads the rule files and starts their evaluation (on the meta leader);
/// `None` without `--rule-file`. A bad file stops the start, naming it.
fn start_rules(
    cfg: &Config,
    node: &Arc<cluster::Node>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Option<Arc<Manager>>> {
    if cfg.rule_files.is_empty() {
        return Ok(None);
    }
    let ctx = Ctx {
        store: Arc::new(ClusterStore(node.clone())),
        engine: Engine::new(EngineOptions {
            max_samples: cfg.limits.max_query_samples,
            timeout: cfg.limits.query_timeout.0,
            parse: cfg.parse_options(),
            ..EngineOptions::default()
        }),
        external_url: format!(
            "{}://{}",
            if cfg.tls_cert_file.is_some() {
                "https"
            } else {
                "http"
            },
            cfg.http_listen
        ),
        resend_delay_ms: RESEND_DELAY_MS,
    };
    let notifier = Notifier::start(
        &cfg.alertmanager_urls,
        cfg.alertmanager_ca_file.as_deref(),
        metrics.clone(),
    )?;
    let m = Manager::start(node.clone(), ctx, cfg.rule_files.clone(), notifier, metrics)
        .map_err(|e| anyhow::anyhow!("cannot load --rule-file: {e}"))?;
    Ok(Some(m))
}

/// The SIGHUP stream, registered once at the start of [`run`] so that from
/// then on SIGHUP never ends the process (its default action), rules or not.
#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn listen_for_sighup() -> Hangup {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

/// Re-reads the rule files on SIGHUP (as `POST /-/reload` does); without
/// rule files SIGHUP is logged and ignored, as operators send it to any
/// Prometheus-like server.
async fn reload_on_sighup(
    hup: Hangup,
    m: Option<Arc<Manager>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    #[cfg(unix)]
    {
        use crate::api::rules::RulesApi;
        let Some(mut hup) = hup else { return };
        loop {
            tokio::select! {
                _ = hup.recv() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let Some(m) = &m else {
                tracing::info!("SIGHUP received; no --rule-file to reload");
                continue;
            };
            match m.reload().await {
                Ok(()) => tracing::info!("rule files reloaded (SIGHUP)"),
                Err(e) => tracing::error!(error = %e, "rule reload failed; previous rules stay"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (hup, m, stop.wait_for(|s| *s).await);
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Runs the server until a signal arrives.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    for f in cfg.unknown_features() {
        tracing::warn!(option = f, "Unknown option for --enable-feature; ignored");
    }
    if cfg.parse_options().experimental_functions {
        tracing::info!("Experimental PromQL functions enabled.");
    }
    let hup = listen_for_sighup();
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create --data-dir {}", cfg.data_dir.display()))?;
    // TLS files and the port are checked first, so a bad certificate or a
    // busy port fails fast before storage is opened.
    let tls = match (&cfg.tls_cert_file, &cfg.tls_key_file) {
        (Some(c), Some(k)) => Some(crate::tls::load_config(c, k).map_err(anyhow::Error::msg)?),
        _ => None,
    };
    let listener = TcpListener::bind(cfg.http_listen)
        .await
        .with_context(|| format!("cannot listen on --http-listen {}", cfg.http_listen))?;
    let node = cluster::Node::start(node_config(&cfg))
        .await
        .context("cannot start the cluster node")?;
    let metrics = Arc::new(Metrics::new());
    let state: Shared = Arc::new(AppState::new(node.clone(), cfg.clone(), metrics.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let rules = start_rules(&cfg, &node, metrics)?;
    if let Some(m) = &rules {
        state.rules.install(m.clone());
    }
    tasks.push(tokio::spawn(reload_on_sighup(
        hup,
        rules.clone(),
        stop_rx.clone(),
    )));
    if !cfg.self_scrape_interval.0.is_zero() {
        tasks.push(tokio::spawn(crate::self_scrape::run(
            state.clone(),
            cfg.self_scrape_interval.0,
            stop_rx.clone(),
        )));
    }
    tracing::info!(
        http = %cfg.http_listen,
        grpc = %cfg.grpc_listen,
        node_id = cfg.node_id,
        data_dir = %cfg.data_dir.display(),
        "silverback listening"
    );
    let app = routes::router(state.clone());
    let opts = crate::http_server::ServeOptions::from_config(&cfg, tls);
    let fatal = Arc::new(parking_lot::Mutex::new(None));
    let stop_on = {
        let (node, fatal) = (node.clone(), fatal.clone());
        async move {
            tokio::select! {
                _ = shutdown_signal() => {}
                e = node.fatal_error() => {
                    tracing::error!(error = %e, "stopping: storage failed");
                    *fatal.lock() = Some(e);
                }
            }
        }
    };
    crate::http_server::serve(listener, app, opts, stop_on).await;
    let _ = stop_tx.send(true);
    let failed = fatal.lock().take();
    if let Some(e) = failed {
        // Fail-stop: no checkpoint on a disk that just failed; what was
        // acknowledged is in the fsynced log and comes back on restart.
        node.halt();
        anyhow::bail!("{e}");
    }
    if let Some(m) = &rules {
        m.stop();
    }
    for t in tasks {
        let _ = t.await;
    }
    tracing::info!("HTTP server stopped; checkpointing");
    node.shutdown()
        .await
        .context("cannot shut the node down cleanly")?;
    tracing::info!("shutdown complete");
    Ok(())
}
