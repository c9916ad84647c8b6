//! Node configuration.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::types::NodeId;

/// How to start a [`crate::Node`].
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (unique in the cluster, > 0).
    pub node_id: NodeId,
    /// Where the gRPC server listens (not the HTTP listener).
    pub grpc_listen: SocketAddr,
    /// The gRPC address other nodes dial (default: `grpc_listen`).
    pub advertise_addr: Option<String>,
    /// Initial members: id -> gRPC address, identical on every initial node.
    /// Empty means a single-node cluster.
    pub peers: BTreeMap<NodeId, String>,
    /// Address of any member, for a node joining a running cluster.
    pub join: Option<String>,
    /// Where RocksDB lives.
    pub data_dir: PathBuf,
    /// Shards of a new cluster (fixed once created).
    pub shards: u32,
    /// Replicas per shard (capped at the node count).
    pub replication_factor: usize,
    /// Storage options.
    pub storage: storage::StorageOptions,
    /// How often shard state is checkpointed (and the log purged).
    pub checkpoint_interval: Duration,
    /// Log entries always kept behind a checkpoint (more are kept for
    /// followers that fell behind, see `raft_log_max_bytes`).
    pub raft_log_keep: u64,
    /// Bytes of log a leader keeps, over all the groups it leads, for
    /// followers that fell behind (down or restarting for less than
    /// `down_grace`), so they catch up from the log rather than from a
    /// snapshot of the whole shard; a follower needing more gets a snapshot.
    pub raft_log_max_bytes: u64,
    /// How long a node may be down before its replicas are re-created
    /// elsewhere.
    pub down_grace: Duration,
    /// Raft heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Raft election timeout (lower bound; the upper bound is twice it).
    pub election_timeout: Duration,
    /// Timeout of a node-to-node RPC.
    pub rpc_timeout: Duration,
    /// How often the shard leaders propose the retention cut-off.
    pub retention_interval: Duration,
    /// Maximum callers batched into one Raft entry per shard.
    pub max_batch_callers: usize,
    /// Queue depth of each shard's proposer (beyond it: overloaded).
    pub proposer_queue: usize,
    /// Most series in the cluster (0 = no limit), enforced per shard as its
    /// share, ⌈max_series / shards⌉: series spread evenly over shards.
    pub max_series: u64,
    /// Most series of one metric name in the cluster (0 = no limit), per
    /// shard as its share like `max_series`.
    pub max_series_per_metric: u64,
    /// Below this many free bytes on the data volume the node refuses
    /// writes and is not ready (0 = never; see [`crate::disk`]).
    pub min_free_disk_bytes: u64,
    /// The shared secret every node-to-node call must carry (`None`: the
    /// cluster port takes every caller; see [`crate::auth`]).
    pub cluster_secret: Option<crate::auth::ClusterSecret>,
    /// Mutual TLS on the cluster port: this node's certificate and key and
    /// the cluster CA (`None`: plain TCP; see [`crate::tls`]).
    pub tls: Option<crate::tls::ClusterTls>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            node_id: 1,
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 9301)),
            advertise_addr: None,
            peers: BTreeMap::new(),
            join: None,
            data_dir: PathBuf::from("./data"),
            shards: 32,
            replication_factor: 3,
            storage: storage::StorageOptions::default(),
            checkpoint_interval: Duration::from_secs(30),
            raft_log_keep: 2_000,
            raft_log_max_bytes: 1 << 30,
            down_grace: Duration::from_secs(300),
            heartbeat_interval: Duration::from_millis(250),
            election_timeout: Duration::from_millis(1000),
            rpc_timeout: Duration::from_secs(5),
            retention_interval: Duration::from_secs(300),
            max_batch_callers: 64,
            proposer_queue: 1024,
            max_series: 0,
            max_series_per_metric: 0,
            min_free_disk_bytes: 100 << 20,
            cluster_secret: None,
            tls: None,
        }
    }
}

impl NodeConfig {
    /// The address peers dial to reach this node.
    pub fn advertised(&self) -> String {
        self.advertise_addr
            .clone()
            .unwrap_or_else(|| self.grpc_listen.to_string())
    }

    /// One shard's share of the series limits in a cluster of `shards`.
    pub fn shard_series_limits(&self, shards: u32) -> storage::SeriesLimits {
        let share = |n: u64| n.div_ceil(u64::from(shards.max(1)));
        storage::SeriesLimits {
            max_series: share(self.max_series),
            max_series_per_metric: share(self.max_series_per_metric),
        }
    }

    /// The initial member list: `peers`, or only this node when empty.
    pub fn initial_members(&self) -> BTreeMap<NodeId, String> {
        if self.peers.is_empty() {
            BTreeMap::from([(self.node_id, self.advertised())])
        } else {
            self.peers.clone()
        }
    }
}
