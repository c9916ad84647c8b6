//! Starting and stopping the server: logging, the cluster node, the HTTP
//! listener, the self-scrape, and graceful shutdown on SIGTERM/SIGINT (stop
//! accepting, finish in-flight requests, checkpoint via
//! [`cluster::Node::shutdown`], exit 0).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{routes, AppState, Shared};
use crate::config::{Config, LogFormat};
use crate::metrics::Metrics;

/// Installs the global tracing subscriber (RUST_LOG wins over
/// `--log-level`).
pub fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
        peers: cfg
            .peers
            .iter()
            .map(|p| (p.id, p.addr.clone()))
            .collect::<BTreeMap<_, _>>(),
        join: cfg.join.clone(),
        data_dir: cfg.data_dir.clone(),
        shards: cfg.shards,
        replication_factor: cfg.replication_factor as usize,
        storage: storage::StorageOptions {
            retention_ms: cfg.retention.0.as_millis() as i64,
            ..d.storage.clone()
        },
        ..d
    }
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
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create --data-dir {}", cfg.data_dir.display()))?;
    // Bind first, so a busy port fails fast before storage is opened.
    let listener = TcpListener::bind(cfg.http_listen)
        .await
        .with_context(|| format!("cannot listen on --http-listen {}", cfg.http_listen))?;
    let node = cluster::Node::start(node_config(&cfg))
        .await
        .context("cannot start the cluster node")?;
    let state: Shared = Arc::new(AppState::new(
        node.clone(),
        cfg.clone(),
        Arc::new(Metrics::new()),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
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
    axum::serve(listener, routes::router(state.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;
    let _ = stop_tx.send(true);
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
