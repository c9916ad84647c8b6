//! One Raft group hosted on this node: its openraft instance, and for shard
//! groups the storage shard and the batching proposer.

use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, Raft, SnapshotPolicy};

use crate::config::NodeConfig;
use crate::error::ClusterError;
use crate::raft::log_store::{LogSizes, LogStore, RocksProvider, Syncer};
use crate::raft::network::{GroupNetworkFactory, Router};
use crate::types::{GroupId, NodeId, TypeConfig};
use crate::write::propose::Proposer;

/// The openraft handle type.
pub type RaftHandle = Raft<TypeConfig>;

/// A hosted group.
#[derive(Clone)]
pub struct Group {
    /// Group id.
    pub id: GroupId,
    /// The Raft instance.
    pub raft: RaftHandle,
    /// The storage shard (shard groups only).
    pub shard: Option<Arc<storage::Shard>>,
    /// The batching proposer (shard groups only).
    pub proposer: Option<Proposer>,
}

impl Group {
    /// The leader as this replica knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Whether this replica leads the group.
    pub fn is_leader(&self, me: NodeId) -> bool {
        self.leader() == Some(me)
    }
}

/// The openraft configuration of every group.
pub fn raft_config(cfg: &NodeConfig) -> Result<Arc<Config>, ClusterError> {
    let hb = cfg.heartbeat_interval.as_millis() as u64;
    let el = cfg.election_timeout.as_millis() as u64;
    let c = Config {
        cluster_name: "silverback".into(),
        heartbeat_interval: hb.max(10),
        election_timeout_min: el.max(hb * 3),
        election_timeout_max: el.max(hb * 3) * 2,
        install_snapshot_timeout: cfg.rpc_timeout.max(Duration::from_secs(10)).as_millis() as u64,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(20_000),
        // Never purge by count alone: the supervisor purges, keeping the
        // log that followers which fell behind still need, within
        // `--raft-log-max-bytes` (see `supervisor::purge_logs`).
        max_in_snapshot_log_to_keep: u64::MAX,
        purge_batch_size: 1,
        max_payload_entries: 64,
        snapshot_max_chunk_size: 4 << 20,
        ..Default::default()
    };
    Ok(Arc::new(
        c.validate()
            .map_err(|e| ClusterError::Config(e.to_string()))?,
    ))
}

/// What a group needs to start.
pub struct GroupDeps {
    /// This node.
    pub node_id: NodeId,
    /// Raft config.
    pub config: Arc<Config>,
    /// Shared RocksDB.
    pub db: Arc<dyn RocksProvider>,
    /// Log group commit.
    pub syncer: Syncer,
    /// Peers.
    pub router: Arc<Router>,
    /// Bytes of each group's log.
    pub log_sizes: Arc<LogSizes>,
}

impl GroupDeps {
    /// The log store and network factory of `group`.
    pub fn parts(&self, group: GroupId) -> (LogStore, GroupNetworkFactory) {
        (
            LogStore::new(
                group,
                self.db.clone(),
                self.syncer.clone(),
                self.log_sizes.clone(),
            ),
            GroupNetworkFactory::new(group, self.router.clone()),
        )
    }
}
