//! The node's background loop: readiness, proposing the cluster map on the
//! meta leader, periodic checkpoints (openraft snapshots, after which the
//! log is purged) and the retention cut-off on the shards this node leads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::WriteBatch;

use crate::group::Group;
use crate::node::Node;

const TICK: Duration = Duration::from_millis(200);

/// Runs until the node stops.
pub async fn run(node: Arc<Node>) {
    let mut last_checkpoint = Instant::now();
    let mut last_retention = Instant::now();
    let mut stop = node.stop_signal();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        node.refresh_ready();
        if let Err(e) = node.ensure_meta_initialised().await {
            tracing::debug!(error = %e, "cannot record the cluster map yet");
        }
        if last_checkpoint.elapsed() >= node.cfg.checkpoint_interval {
            last_checkpoint = Instant::now();
            checkpoint_all(&node).await;
        }
        if last_retention.elapsed() >= node.cfg.retention_interval {
            last_retention = Instant::now();
            retention(&node).await;
        }
    }
}

/// Asks every group that applied something since its last snapshot to take
/// one (a storage checkpoint; the log up to it is purged afterwards).
pub async fn checkpoint_all(node: &Node) {
    let groups: Vec<Group> = node.groups.read().values().cloned().collect();
    for g in groups {
        let m = g.raft.metrics().borrow().clone();
        let applied = m.last_applied.map(|l| l.index);
        let snap = m.snapshot.map(|l| l.index);
        if applied > snap {
            if let Err(e) = g.raft.trigger().snapshot().await {
                tracing::warn!(group = g.id, error = %e, "cannot trigger checkpoint");
            }
        }
    }
}

async fn retention(node: &Node) {
    let retention_ms = node.cfg.storage.retention_ms;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let cutoff_ms = now_ms - retention_ms;
    let groups: Vec<Group> = node.groups.read().values().cloned().collect();
    for g in groups {
        let Some(p) = g.proposer.as_ref().filter(|_| g.is_leader(node.id)) else {
            continue;
        };
        if let Err(e) = p.write_raw(WriteBatch::Retention { cutoff_ms }).await {
            tracing::warn!(group = g.id, error = ?e, "cannot propose retention");
        }
    }
}
