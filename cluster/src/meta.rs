//! The cluster map held by the meta group: nodes and their addresses, the
//! replica set of every shard, and a small replicated key/value store (rule
//! alert state). Commands are applied in log order on every node, so every
//! node's copy is identical.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

/// A node as the cluster map knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// gRPC address other nodes dial.
    pub addr: String,
    /// Lifecycle state.
    pub state: NodeState,
}

/// Where a node is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Serving replicas.
    Active,
    /// Replicas are moving away; leaves once it holds none.
    Decommissioning,
    /// Has left the cluster.
    Removed,
}

/// One change to the cluster map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MetaCommand {
    /// Sets the shard layout once, when the cluster is created.
    Init {
        /// Number of shards.
        shard_count: u32,
        /// Target replicas per shard.
        replication_factor: usize,
        /// Initial nodes.
        nodes: BTreeMap<NodeId, String>,
        /// Initial replica set of every shard.
        replicas: BTreeMap<u32, Vec<NodeId>>,
    },
    /// Adds or readdresses a node.
    AddNode {
        /// Its id.
        id: NodeId,
        /// Its gRPC address.
        addr: String,
    },
    /// Changes a node's lifecycle state.
    SetNodeState {
        /// The node.
        id: NodeId,
        /// New state.
        state: NodeState,
    },
    /// Records a shard's new replica set.
    SetReplicas {
        /// The shard.
        shard: u32,
        /// Its voters after the change.
        replicas: Vec<NodeId>,
    },
    /// Starts moving a replica of `shard` from `from` to `to` (only adding
    /// one when `from` is `None`, only removing one when `to` is `None`).
    /// `to` opens the group and is added as a learner by the shard leader;
    /// [`MetaCommand::FinishMove`] records the result once the shard's
    /// membership change is committed.
    StartMove {
        /// The shard.
        shard: u32,
        /// The replica that leaves, if any.
        from: Option<NodeId>,
        /// The node that receives a replica, if any.
        to: Option<NodeId>,
    },
    /// Ends a move: the shard's voters as committed in its Raft group.
    FinishMove {
        /// The shard.
        shard: u32,
        /// Its voters after the change.
        replicas: Vec<NodeId>,
    },
    /// Abandons a move whose target cannot take the replica.
    CancelMove {
        /// The shard.
        shard: u32,
    },
    /// Sets a key of the replicated KV store.
    Put {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
}

/// A replica move in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The replica that leaves, if any.
    pub from: Option<NodeId>,
    /// The node that receives a replica, if any.
    pub to: Option<NodeId>,
}

/// The replicated cluster map.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetaState {
    /// Number of shards (0 before `Init`).
    pub shard_count: u32,
    /// Target replicas per shard.
    pub replication_factor: usize,
    /// Known nodes.
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// Replica set of every shard.
    pub replicas: BTreeMap<u32, Vec<NodeId>>,
    /// Replica moves in flight, at most one per shard.
    #[serde(default)]
    pub moves: BTreeMap<u32, Move>,
    /// The KV store.
    pub kv: BTreeMap<String, Vec<u8>>,
}

impl MetaState {
    /// Applies one command (deterministic).
    pub fn apply(&mut self, cmd: &MetaCommand) {
        match cmd {
            MetaCommand::Init {
                shard_count,
                replication_factor,
                nodes,
                replicas,
            } => {
                if self.shard_count != 0 {
                    return; // already initialised: first Init wins
                }
                self.shard_count = *shard_count;
                self.replication_factor = *replication_factor;
                for (id, addr) in nodes {
                    self.nodes.insert(
                        *id,
                        NodeInfo {
                            addr: addr.clone(),
                            state: NodeState::Active,
                        },
                    );
                }
                self.replicas = replicas.clone();
            }
            MetaCommand::AddNode { id, addr } => {
                let e = self.nodes.entry(*id).or_insert(NodeInfo {
                    addr: addr.clone(),
                    state: NodeState::Active,
                });
                e.addr = addr.clone();
                if e.state == NodeState::Removed {
                    e.state = NodeState::Active;
                }
            }
            MetaCommand::SetNodeState { id, state } => {
                if let Some(n) = self.nodes.get_mut(id) {
                    n.state = *state;
                }
            }
            MetaCommand::SetReplicas { shard, replicas } => {
                self.replicas.insert(*shard, replicas.clone());
            }
            MetaCommand::StartMove { shard, from, to } => {
                let valid = from.is_some() || to.is_some();
                if valid && self.replicas.contains_key(shard) && !self.moves.contains_key(shard) {
                    self.moves.insert(
                        *shard,
                        Move {
                            from: *from,
                            to: *to,
                        },
                    );
                }
            }
            MetaCommand::FinishMove { shard, replicas } => {
                self.moves.remove(shard);
                self.replicas.insert(*shard, replicas.clone());
            }
            MetaCommand::CancelMove { shard } => {
                self.moves.remove(shard);
            }
            MetaCommand::Put { key, value } => {
                self.kv.insert(key.clone(), value.clone());
            }
        }
    }

    /// Whether `Init` has been applied.
    pub fn initialised(&self) -> bool {
        self.shard_count != 0
    }

    /// Whether `node` should host a replica of `shard`: it is a voter, or
    /// the target of a move in flight.
    pub fn hosts(&self, node: NodeId, shard: u32) -> bool {
        self.replicas.get(&shard).is_some_and(|r| r.contains(&node))
            || self.moves.get(&shard).is_some_and(|m| m.to == Some(node))
    }

    /// Number of replicas (voters and move targets) on each node.
    pub fn replica_counts(&self) -> BTreeMap<NodeId, usize> {
        let mut out: BTreeMap<NodeId, usize> = self.nodes.keys().map(|n| (*n, 0)).collect();
        for (s, r) in &self.replicas {
            for n in r {
                *out.entry(*n).or_default() += 1;
            }
            if let Some(to) = self.moves.get(s).and_then(|m| m.to) {
                if !r.contains(&to) {
                    *out.entry(to).or_default() += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_once_then_changes() {
        let mut s = MetaState::default();
        let init = |n: u32| MetaCommand::Init {
            shard_count: n,
            replication_factor: 1,
            nodes: BTreeMap::from([(1, "a".to_string())]),
            replicas: BTreeMap::from([(0, vec![1])]),
        };
        s.apply(&init(4));
        s.apply(&init(8));
        assert_eq!(s.shard_count, 4);
        s.apply(&MetaCommand::AddNode {
            id: 2,
            addr: "b".into(),
        });
        s.apply(&MetaCommand::SetReplicas {
            shard: 0,
            replicas: vec![2],
        });
        s.apply(&MetaCommand::Put {
            key: "k".into(),
            value: vec![1],
        });
        assert_eq!(s.replicas[&0], vec![2]);
        assert_eq!(s.nodes[&2].state, NodeState::Active);
        assert_eq!(s.kv["k"], vec![1]);
    }
}
