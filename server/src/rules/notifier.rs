//! Sends alerts to every configured Alertmanager (`POST /api/v2/alerts`).
//!
//! A bounded queue decouples rule evaluation from delivery: when it is full
//! the new batch is dropped and counted (`silverback_notifications_dropped`);
//! a failed post is retried a few times with a short backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Batches waiting for delivery.
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

/// The sending side of the queue.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Vec<AmAlert>>,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Starts the delivery task for `urls` (Alertmanager base URLs); `None`
    /// when there are none.
    pub fn start(urls: &[String], metrics: Arc<Metrics>) -> Option<Notifier> {
        if urls.is_empty() {
            return None;
        }
        let endpoints: Vec<String> = urls
            .iter()
            .map(|u| format!("{}/api/v2/alerts", u.trim_end_matches('/')))
            .collect();
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver(rx, endpoints, metrics.clone()));
        Some(Notifier { tx, metrics })
    }

    /// Queues `alerts`; drops (and counts) them when the queue is full.
    pub fn send(&self, alerts: Vec<AmAlert>) {
        if alerts.is_empty() {
            return;
        }
        let n = alerts.len() as u64;
        if self.tx.try_send(alerts).is_err() {
            self.metrics.notifications_dropped.inc_by(n);
            tracing::warn!(alerts = n, "notification queue full: alerts dropped");
        }
    }
}

async fn deliver(
    mut rx: mpsc::Receiver<Vec<AmAlert>>,
    endpoints: Vec<String>,
    metrics: Arc<Metrics>,
) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the Alertmanager HTTP client");
            return;
        }
    };
    while let Some(batch) = rx.recv().await {
        let n = batch.len() as u64;
        for url in &endpoints {
            match post(&client, url, &batch).await {
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
