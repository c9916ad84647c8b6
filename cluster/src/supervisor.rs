//! The node's background loop: readiness, proposing the cluster map on the
//! meta leader, periodic checkpoints (openraft snapshots), purging the log
//! behind them, and the retention cut-off on the shards this node leads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage::WriteBatch;

use crate::node::Node;
use crate::raft::group::Group;

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
        if last_checkpoint.elapsed() >= node.cfg().checkpoint_interval {
            last_checkpoint = Instant::now();
            checkpoint_all(&node).await;
        }
        purge_logs(&node).await;
        if last_retention.elapsed() >= node.cfg().retention_interval {
            last_retention = Instant::now();
            retention(&node).await;
        }
    }
}

/// Asks every group that applied something since its last snapshot to take
/// one (a storage checkpoint; the log up to it is purged afterwards).
pub async fn checkpoint_all(node: &Node) {
    let groups: Vec<Group> = node.hosted_groups();
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

/// Purges each group's log up to its last snapshot, less `raft_log_keep`
/// entries. A leader keeps more for a follower that fell behind (a node
/// that is down or restarting: within `down_grace` it is still a member),
/// as long as what it needs fits its share of `raft_log_max_bytes`; a
/// follower needing more catches up from a snapshot instead.
pub async fn purge_logs(node: &Node) {
    let groups: Vec<Group> = node.hosted_groups();
    let led = groups.iter().filter(|g| g.is_leader(node.id())).count();
    let budget = node.cfg().raft_log_max_bytes / led.max(1) as u64;
    for g in groups {
        let m = g.raft.metrics().borrow().clone();
        let Some(snap) = m.snapshot.map(|l| l.index) else {
            continue;
        };
        let purged = m.purged.map_or(0, |l| l.index);
        let mut upto = snap.saturating_sub(node.cfg().raft_log_keep);
        if let Some(rep) = m
            .replication
            .as_ref()
            .filter(|_| m.current_leader == Some(node.id()))
        {
            for (id, matched) in rep {
                // Progress not known yet (a new leader, a follower that is
                // down): keep what is there while it fits.
                let has = matched.map_or(purged, |l| l.index);
                if *id == node.id() || has >= upto {
                    continue;
                }
                match node.deps().log_sizes.bytes_after(g.id, has) {
                    Some(b) if b <= budget => upto = has,
                    _ => {}
                }
            }
        }
        if upto > purged {
            if let Err(e) = g.raft.trigger().purge_log(upto).await {
                tracing::warn!(group = g.id, error = %e, "cannot purge the log");
            }
        }
    }
}

async fn retention(node: &Node) {
    let retention_ms = node.cfg().storage.retention_ms;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let cutoff_ms = now_ms - retention_ms;
    let groups: Vec<Group> = node.hosted_groups();
    for g in groups {
        let Some(p) = g.proposer.as_ref().filter(|_| g.is_leader(node.id())) else {
            continue;
        };
        if let Err(e) = p.write_raw(WriteBatch::Retention { cutoff_ms }).await {
            tracing::warn!(group = g.id, error = ?e, "cannot propose retention");
        }
    }
}
