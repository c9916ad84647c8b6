//! Checks on meta commands received from peers, made on the meta leader
//! before the command is proposed.
//!
//! [`MetaState::apply`] takes every command as it comes, so a forged or
//! confused `SetReplicas` naming a node that is not a member, or an empty
//! replica set, would be replicated to every node and leave a shard without
//! a usable replica set. A command from the Meta RPC is proposed only when
//! it makes sense for the cluster map as the leader knows it:
//!
//! - `Init` only before the cluster is initialised, with shards, and
//!   replica sets of existing shards naming initial nodes only;
//! - replica sets (`SetReplicas`, `FinishMove`) name existing shards, are
//!   not empty, have no duplicates and only nodes of the map that have not
//!   left; `SetReplicas` must also keep a majority of the current set (a
//!   set without the current quorum would let a minority rewrite the
//!   shard's history);
//! - `StartMove` moves a current replica (`from`) to a member that is not
//!   one (`to`, not leaving or gone);
//! - `AddNode` has an id and an address; `SetNodeState` names a known node.

use std::collections::BTreeSet;

use crate::meta::{MetaCommand, MetaState, NodeState};
use crate::types::NodeId;

/// Why a meta command from a peer was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetaRefusal {
    /// `Init` on an initialised cluster, or an `Init` that makes no sense.
    #[error("cannot initialise the cluster: {0}")]
    Init(String),
    /// A shard that does not exist.
    #[error("shard {shard} does not exist (the cluster has {count} shards)")]
    NoShard {
        /// The shard.
        shard: u32,
        /// The shard count.
        count: u32,
    },
    /// A replica set that cannot be used.
    #[error("cannot set the replicas of shard {shard} to {replicas:?}: {why}")]
    Replicas {
        /// The shard.
        shard: u32,
        /// The set given.
        replicas: Vec<NodeId>,
        /// What is wrong with it.
        why: String,
    },
    /// A node that is not in the cluster map (or not in a usable state).
    #[error("node {node} {why}")]
    Node {
        /// The node.
        node: NodeId,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A move that does not fit the shard.
    #[error("cannot move a replica of shard {shard}: {why}")]
    Move {
        /// The shard.
        shard: u32,
        /// What is wrong with it.
        why: String,
    },
}

/// Checks `cmd`, received from a peer, against the cluster map `m`.
pub fn check(m: &MetaState, cmd: &MetaCommand) -> Result<(), MetaRefusal> {
    match cmd {
        MetaCommand::Init {
            shard_count,
            replication_factor,
            nodes,
            replicas,
        } => {
            let bad = |why: &str| Err(MetaRefusal::Init(why.to_string()));
            if m.initialised() {
                return bad("it is initialised already");
            }
            if *shard_count == 0 || *replication_factor == 0 || nodes.is_empty() {
                return bad("no shards, no replicas or no nodes");
            }
            if replicas.keys().any(|s| *s >= *shard_count) {
                return bad("a replica set is for a shard past the shard count");
            }
            let ok = replicas
                .values()
                .all(|r| !r.is_empty() && r.iter().all(|n| nodes.contains_key(n)));
            if !ok {
                return bad("a replica set is empty or names a node that is not initial");
            }
            Ok(())
        }
        MetaCommand::AddNode { id, addr } => {
            if *id == 0 || addr.trim().is_empty() {
                return Err(MetaRefusal::Node {
                    node: *id,
                    why: "cannot be added without an id > 0 and an address",
                });
            }
            Ok(())
        }
        MetaCommand::SetNodeState { id, .. } => known(m, *id).map(|_| ()),
        MetaCommand::SetReplicas { shard, replicas } => {
            replica_set(m, *shard, replicas)?;
            let current = m.replicas.get(shard).cloned().unwrap_or_default();
            let kept = current.iter().filter(|n| replicas.contains(n)).count();
            if !current.is_empty() && kept * 2 <= current.len() {
                return Err(MetaRefusal::Replicas {
                    shard: *shard,
                    replicas: replicas.clone(),
                    why: format!(
                        "it keeps {kept} of the current replicas {current:?}, not a majority"
                    ),
                });
            }
            Ok(())
        }
        MetaCommand::FinishMove { shard, replicas } => replica_set(m, *shard, replicas),
        MetaCommand::StartMove { shard, from, to } => {
            let current = shard_replicas(m, *shard)?;
            let bad = |why: String| Err(MetaRefusal::Move { shard: *shard, why });
            if from.is_none() && to.is_none() {
                return bad("neither a replica to remove nor a node to add".into());
            }
            if let Some(f) = from {
                if !current.contains(f) {
                    return bad(format!("node {f} is not one of its replicas {current:?}"));
                }
            }
            if let Some(t) = to {
                if known(m, *t)? != NodeState::Active {
                    return bad(format!("node {t} is leaving or gone"));
                }
                if current.contains(t) {
                    return bad(format!("node {t} is one of its replicas already"));
                }
            }
            Ok(())
        }
        MetaCommand::CancelMove { shard } => shard_replicas(m, *shard).map(|_| ()),
        MetaCommand::Put { .. } => Ok(()),
    }
}

/// The state of `node`, which must be in the map.
fn known(m: &MetaState, node: NodeId) -> Result<NodeState, MetaRefusal> {
    m.nodes
        .get(&node)
        .map(|n| n.state)
        .ok_or(MetaRefusal::Node {
            node,
            why: "is not a member of the cluster",
        })
}

/// The current replicas of `shard`, which must exist.
fn shard_replicas(m: &MetaState, shard: u32) -> Result<&[NodeId], MetaRefusal> {
    if shard >= m.shard_count {
        return Err(MetaRefusal::NoShard {
            shard,
            count: m.shard_count,
        });
    }
    Ok(m.replicas.get(&shard).map_or(&[], Vec::as_slice))
}

/// A new replica set of `shard`: not empty, no duplicates, members only.
fn replica_set(m: &MetaState, shard: u32, replicas: &[NodeId]) -> Result<(), MetaRefusal> {
    shard_replicas(m, shard)?;
    let bad = |why: String| {
        Err(MetaRefusal::Replicas {
            shard,
            replicas: replicas.to_vec(),
            why,
        })
    };
    if replicas.is_empty() {
        return bad("the set is empty".into());
    }
    if replicas.iter().collect::<BTreeSet<_>>().len() != replicas.len() {
        return bad("a node is named twice".into());
    }
    for n in replicas {
        match m.nodes.get(n).map(|i| i.state) {
            None => return bad(format!("node {n} is not a member of the cluster")),
            Some(NodeState::Removed) => return bad(format!("node {n} has left the cluster")),
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::meta::NodeInfo;

    /// Shards 0 and 1 on nodes 1-3; node 4 active without replicas, node 5
    /// decommissioning, node 6 removed.
    fn map() -> MetaState {
        let node = |state| NodeInfo {
            addr: "127.0.0.1:1".into(),
            state,
        };
        MetaState {
            shard_count: 2,
            replication_factor: 3,
            nodes: BTreeMap::from([
                (1, node(NodeState::Active)),
                (2, node(NodeState::Active)),
                (3, node(NodeState::Active)),
                (4, node(NodeState::Active)),
                (5, node(NodeState::Decommissioning)),
                (6, node(NodeState::Removed)),
            ]),
            replicas: BTreeMap::from([(0, vec![1, 2, 3]), (1, vec![1, 2, 3])]),
            ..Default::default()
        }
    }

    #[test]
    fn replica_sets_from_peers_are_checked() {
        let m = map();
        let f = |cmd: MetaCommand, ok: bool| {
            let got = check(&m, &cmd);
            assert_eq!(got.is_ok(), ok, "{cmd:?}: {got:?}");
        };
        let set = |shard, replicas: &[NodeId]| MetaCommand::SetReplicas {
            shard,
            replicas: replicas.to_vec(),
        };
        let finish = |shard, replicas: &[NodeId]| MetaCommand::FinishMove {
            shard,
            replicas: replicas.to_vec(),
        };
        f(set(0, &[1, 2, 4]), true);
        f(set(0, &[1, 2]), true);
        f(set(0, &[1, 2, 3, 4]), true);
        f(set(0, &[]), false); // empty
        f(set(0, &[1, 2, 9]), false); // 9 is no member
        f(set(0, &[1, 2, 6]), false); // 6 has left
        f(set(0, &[1, 1, 2]), false); // duplicate
        f(set(0, &[1, 4, 5]), false); // keeps 1 of 3: no quorum
        f(set(2, &[1, 2, 3]), false); // no shard 2
        f(finish(0, &[1, 2, 4]), true);
        f(finish(0, &[1, 4, 5]), true); // Raft committed it: recorded
        f(finish(0, &[]), false);
        f(finish(1, &[1, 2, 9]), false);
    }

    #[test]
    fn moves_nodes_and_init_from_peers_are_checked() {
        let m = map();
        let f = |cmd: MetaCommand, ok: bool| {
            let got = check(&m, &cmd);
            assert_eq!(got.is_ok(), ok, "{cmd:?}: {got:?}");
        };
        let mv = |shard, from, to| MetaCommand::StartMove { shard, from, to };
        f(mv(0, Some(3), Some(4)), true);
        f(mv(0, None, Some(4)), true);
        f(mv(0, Some(3), None), true);
        f(mv(0, None, None), false);
        f(mv(0, Some(4), Some(3)), false); // 4 is no replica, 3 is one
        f(mv(0, Some(3), Some(5)), false); // 5 is leaving
        f(mv(0, Some(3), Some(9)), false); // 9 is no member
        f(mv(7, Some(3), Some(4)), false);
        f(MetaCommand::CancelMove { shard: 1 }, true);
        f(MetaCommand::CancelMove { shard: 9 }, false);
        let state = |id| MetaCommand::SetNodeState {
            id,
            state: NodeState::Decommissioning,
        };
        f(state(2), true);
        f(state(9), false);
        let add = |id, addr: &str| MetaCommand::AddNode {
            id,
            addr: addr.into(),
        };
        f(add(7, "10.0.0.7:9301"), true);
        f(add(0, "10.0.0.7:9301"), false);
        f(add(7, " "), false);
        let init = MetaCommand::Init {
            shard_count: 1,
            replication_factor: 1,
            nodes: BTreeMap::from([(1, "a".to_string())]),
            replicas: BTreeMap::from([(0, vec![1])]),
        };
        f(init.clone(), false); // initialised already
        let fresh = MetaState::default();
        assert_eq!(check(&fresh, &init), Ok(()));
        let bad = MetaCommand::Init {
            shard_count: 2,
            replication_factor: 1,
            nodes: BTreeMap::from([(1, "a".to_string())]),
            replicas: BTreeMap::from([(0, vec![1]), (1, vec![2])]),
        };
        assert!(check(&fresh, &bad).is_err()); // node 2 is not initial
        let bad = MetaCommand::Init {
            shard_count: 1,
            replication_factor: 1,
            nodes: BTreeMap::from([(1, "a".to_string())]),
            replicas: BTreeMap::from([(0, vec![1]), (1, vec![1])]),
        };
        assert!(check(&fresh, &bad).is_err()); // no shard 1
        f(
            MetaCommand::Put {
                key: "k".into(),
                value: vec![],
            },
            true,
        );
    }
}
