//! What `/api/v1/status/cluster` and `/metrics` show: [`ClusterStatus`] and
//! [`NodeStats`].

use serde::Serialize;

use crate::meta::NodeState;
use crate::node::Node;
use crate::raft::group::Group;
use crate::types::{group_shard, shard_group, GroupId, NodeId, META_GROUP};

/// The cluster as this node sees it.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterStatus {
    /// This node.
    pub node_id: NodeId,
    /// Whether this node is ready (groups joined, replay done).
    pub ready: bool,
    /// The meta leader (the silverback), when known.
    pub meta_leader: Option<NodeId>,
    /// Shards.
    pub shard_count: u32,
    /// Target replicas per shard.
    pub replication_factor: usize,
    /// Whether the cluster map has been recorded in the meta group.
    pub map_recorded: bool,
    /// Nodes.
    pub nodes: Vec<NodeStatus>,
    /// Shards, their replicas and leaders.
    pub shards: Vec<ShardStatus>,
    /// Replica moves in flight.
    pub moves: Vec<MoveStatus>,
    /// Configuration this node warns about (an unauthenticated cluster
    /// port on a non-loopback address, ...); empty when all is well.
    pub warnings: Vec<String>,
}

/// A replica move in [`ClusterStatus`].
#[derive(Clone, Debug, Serialize)]
pub struct MoveStatus {
    /// The shard.
    pub shard: u32,
    /// The replica that leaves, if any.
    pub from: Option<NodeId>,
    /// The node that receives a replica, if any.
    pub to: Option<NodeId>,
}

/// One node in [`ClusterStatus`].
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// Id.
    pub id: NodeId,
    /// gRPC address.
    pub addr: String,
    /// Lifecycle state.
    pub state: NodeState,
    /// Whether it answered this node's health probes in the last seconds.
    pub up: bool,
    /// Shard replicas it holds.
    pub replicas: usize,
    /// Shards it leads (as known here).
    pub leaders: usize,
}

/// One shard in [`ClusterStatus`].
#[derive(Clone, Debug, Serialize)]
pub struct ShardStatus {
    /// Shard number.
    pub shard: u32,
    /// Voters.
    pub replicas: Vec<NodeId>,
    /// Leader, when known here.
    pub leader: Option<NodeId>,
    /// Raft term seen by the local replica (when hosted here).
    pub term: Option<u64>,
    /// Last applied index of the local replica (when hosted here).
    pub applied_index: Option<u64>,
}

/// Raft and storage figures of one hosted group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupStats {
    /// Group id (0 = meta).
    pub group: GroupId,
    /// Shard, for shard groups.
    pub shard: Option<u32>,
    /// "Leader", "Follower", "Candidate", "Learner" or "Shutdown".
    pub state: String,
    /// Whether this replica leads.
    pub is_leader: bool,
    /// Current term.
    pub term: u64,
    /// Known leader.
    pub leader: Option<NodeId>,
    /// Last log index.
    pub last_log_index: u64,
    /// Last applied index.
    pub applied_index: u64,
    /// Entries in the log but not applied yet.
    pub apply_lag: u64,
    /// Last snapshot (checkpoint) index.
    pub snapshot_index: u64,
    /// Last purged log index.
    pub purged_index: u64,
    /// Series in the shard (shard groups).
    pub series: Option<u64>,
}

/// Per-node figures for `/metrics`.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStats {
    /// This node.
    pub node_id: NodeId,
    /// One entry per hosted group.
    pub groups: Vec<GroupStats>,
    /// RocksDB size on disk.
    pub disk_usage_bytes: u64,
    /// Shard snapshots received and installed since the node started.
    pub snapshots_installed: u64,
}

fn group_stats(g: &Group) -> GroupStats {
    let m = g.raft.metrics().borrow().clone();
    let last = m.last_log_index.unwrap_or(0);
    let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
    GroupStats {
        group: g.id,
        shard: group_shard(g.id),
        state: format!("{:?}", m.state),
        is_leader: m.current_leader == Some(m.id),
        term: m.current_term,
        leader: m.current_leader,
        last_log_index: last,
        applied_index: applied,
        apply_lag: last.saturating_sub(applied),
        snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
        purged_index: m.purged.map(|l| l.index).unwrap_or(0),
        series: g.shard.as_ref().map(|s| s.stats().series),
    }
}

impl Node {
    /// The cluster as this node sees it.
    pub fn status(&self) -> ClusterStatus {
        let meta = self.meta().clone();
        let layout = self.layout();
        let mut shards = Vec::with_capacity(layout.len());
        for (s, r) in &layout {
            let g = self.group(shard_group(*s));
            let m = g.as_ref().map(|g| g.raft.metrics().borrow().clone());
            shards.push(ShardStatus {
                shard: *s,
                replicas: r.clone(),
                leader: m
                    .as_ref()
                    .and_then(|m| m.current_leader)
                    .or_else(|| self.hinted_leader(shard_group(*s))),
                term: m.as_ref().map(|m| m.current_term),
                applied_index: m.as_ref().and_then(|m| m.last_applied.map(|l| l.index)),
            });
        }
        let mut nodes: Vec<NodeStatus> = if meta.initialised() {
            meta.nodes
                .iter()
                .map(|(id, n)| NodeStatus {
                    id: *id,
                    addr: n.addr.clone(),
                    state: n.state,
                    up: false,
                    replicas: 0,
                    leaders: 0,
                })
                .collect()
        } else {
            self.members()
                .iter()
                .map(|(id, a)| NodeStatus {
                    id: *id,
                    addr: a.clone(),
                    state: NodeState::Active,
                    up: false,
                    replicas: 0,
                    leaders: 0,
                })
                .collect()
        };
        for n in &mut nodes {
            n.up = self.seen_within(n.id, std::time::Duration::from_secs(3));
            n.replicas = shards.iter().filter(|s| s.replicas.contains(&n.id)).count();
            n.leaders = shards.iter().filter(|s| s.leader == Some(n.id)).count();
        }
        ClusterStatus {
            node_id: self.id(),
            ready: self.is_ready(),
            meta_leader: self.group(META_GROUP).and_then(|g| g.leader()),
            shard_count: self.shard_count(),
            replication_factor: self.cfg().replication_factor,
            map_recorded: meta.initialised(),
            nodes,
            shards,
            moves: meta
                .moves
                .iter()
                .map(|(s, m)| MoveStatus {
                    shard: *s,
                    from: m.from,
                    to: m.to,
                })
                .collect(),
            warnings: self
                .exposure_warning()
                .into_iter()
                .chain(self.disk_problem())
                .collect(),
        }
    }

    /// Raft and storage figures of every hosted group.
    pub fn stats(&self) -> NodeStats {
        let mut groups: Vec<GroupStats> = self.hosted_groups().iter().map(group_stats).collect();
        groups.sort_by_key(|g| g.group);
        NodeStats {
            node_id: self.id(),
            groups,
            disk_usage_bytes: self.db().disk_usage_bytes(),
            snapshots_installed: self.snapshots_installed(),
        }
    }
}
