//! Sends alerts to every configured Alertmanager (`POST /api/v2/alerts`),
//! over HTTP or HTTPS (the system's CA certificates, plus
//! `--alertmanager-ca-file`).
//!
//! Each Alertmanager has its own bounded queue and delivery task, so one
//! that is down or slow delays none of the others. A queue decouples rule
//! evaluation from delivery: when it is full the new batch is dropped for
//! that Alertmanager and counted (`silverback_notifications_dropped`); a
//! failed post is retried a few times with a short backoff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Batches waiting for delivery, per Alertmanager.
const QUEUE: usize = 256;
/// Tries per batch and Alertmanager.
const TRIES: u32 = 3;
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One alert as Alertmanager's v2 API takes it (`postableAlert`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AmAlert {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339: when it started firing.
    pub starts_at: String,
    /// RFC 3339: when it resolved, or until when the firing alert is valid.
    pub ends_at: String,
    /// Link to the rule's expression.
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// Why the notifier cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// The CA file cannot be read or holds no usable certificate.
    #[error("cannot read --alertmanager-ca-file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The HTTP client cannot be built.
    #[error("cannot build the Alertmanager HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// The sending side: one queue per Alertmanager.
#[derive(Clone)]
pub struct Notifier {
    queues: Vec<(String, mpsc::Sender<Arc<Vec<AmAlert>>>)>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Starts a delivery task per URL in `urls` (Alertmanager base URLs),
    /// trusting the system's CAs and those in `ca_file`; `None` when there
    /// are no URLs.
    pub fn start(
        urls: &[String],
        ca_file: Option<&Path>,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Notifier>, NotifierError> {
        if urls.is_empty() {
            return Ok(None);
        }
        let client = client(ca_file)?;
        let queues = urls
            .iter()
            .map(|u| {
                let url = format!("{}/api/v2/alerts", u.trim_end_matches('/'));
                let (tx, rx) = mpsc::channel(QUEUE);
                tokio::spawn(deliver(rx, client.clone(), url.clone(), metrics.clone()));
                (url, tx)
            })
            .collect();
        Ok(Some(Notifier { queues, metrics }))
    }

    /// Queues `alerts` for every Alertmanager; drops (and counts) them for
    /// one whose queue is full.
    pub fn send(&self, alerts: Vec<AmAlert>) {
        if alerts.is_empty() {
            return;
        }
        let n = alerts.len() as u64;
        let batch = Arc::new(alerts);
        for (url, tx) in &self.queues {
            if tx.try_send(batch.clone()).is_err() {
                self.metrics.notifications_dropped.inc_by(n);
                tracing::warn!(alertmanager = %url, alerts = n, "notification queue full: alerts dropped");
            }
        }
    }
}

fn client(ca_file: Option<&Path>) -> Result<reqwest::Client, NotifierError> {
    let mut b = reqwest::Client::builder().timeout(TIMEOUT);
    if let Some(path) = ca_file {
        let ca_err = |source: Box<dyn std::error::Error + Send + Sync>| NotifierError::CaFile {
            path: path.to_path_buf(),
            source,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.into()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(e.into()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate in the file".into()));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(NotifierError::Client)
}

async fn deliver(
    mut rx: mpsc::Receiver<Arc<Vec<AmAlert>>>,
    client: reqwest::Client,
    url: String,
    metrics: Arc<Metrics>,
) {
    while let Some(batch) = rx.recv().await {
        let n = batch.len() as u64;
        match post(&client, &url, &batch).await {
            Ok(()) => {
                metrics.notifications_sent.inc_by(n);
            }
            Err(e) => {
                metrics.notifications_dropped.inc_by(n);
                tracing::warn!(alertmanager = %url, alerts = n, error = %e, "cannot send alerts");
            }
        }
    }
}

async fn post(client: &reqwest::Client, url: &str, batch: &[AmAlert]) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
        }
        match client.post(url).json(batch).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
