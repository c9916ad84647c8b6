//! Replica placement decisions of the meta leader, as pure functions of the
//! cluster map and the nodes' liveness, so every rule is unit-tested.
//!
//! [`plan`] returns the next steps, in priority order:
//! 1. cancel moves whose target can no longer take the replica (it is dead,
//!    decommissioning or removed);
//! 2. move replicas off nodes that are dead (down longer than the grace
//!    period) or decommissioning, onto the least loaded eligible node that
//!    does not hold the shard yet; when there is none, drop the replica so
//!    the shard keeps as many replicas as there are eligible nodes;
//! 3. add replicas to shards with fewer than the replication factor (capped
//!    at the number of eligible nodes), e.g. after nodes join a cluster that
//!    started smaller;
//! 4. balance: while the most loaded eligible node holds at least two more
//!    replicas than the least loaded one, move one replica from it, picking
//!    a shard it does not lead when it can (so writes see no election);
//! 5. mark decommissioning nodes that hold nothing any more as removed.
//!
//! At most `max_moves` moves are in flight; a shard has at most one.
//! Eligible nodes are active and reachable now.

use std::collections::{BTreeMap, BTreeSet};

use crate::meta::{MetaState, Move, NodeState};
use crate::types::NodeId;

/// One decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start moving a replica of `shard`.
    Start {
        /// The shard.
        shard: u32,
        /// The move.
        mv: Move,
    },
    /// Abandon the move of `shard`.
    Cancel {
        /// The shard.
        shard: u32,
    },
    /// A decommissioned node holds nothing more: mark it removed.
    Remove {
        /// The node.
        node: NodeId,
    },
}

/// What the meta leader knows about liveness.
#[derive(Clone, Debug, Default)]
pub struct Liveness {
    /// Nodes that do not answer right now.
    pub unreachable: BTreeSet<NodeId>,
    /// Nodes down longer than the grace period: their replicas are
    /// re-created elsewhere. A subset of `unreachable`.
    pub dead: BTreeSet<NodeId>,
}

/// The next steps for `meta` (see the module docs). `leaders` maps shards
/// to their leaders where known.
pub fn plan(
    meta: &MetaState,
    live: &Liveness,
    leaders: &BTreeMap<u32, NodeId>,
    max_moves: usize,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if !meta.initialised() {
        return steps;
    }
    let state = |n: NodeId| meta.nodes.get(&n).map(|i| i.state);
    let eligible: BTreeSet<NodeId> = meta
        .nodes
        .iter()
        .filter(|(id, i)| i.state == NodeState::Active && !live.unreachable.contains(id))
        .map(|(id, _)| *id)
        .collect();
    let leaving = |n: NodeId| live.dead.contains(&n) || state(n) != Some(NodeState::Active);

    let mut moving: BTreeMap<u32, Move> = meta.moves.clone();
    for (shard, mv) in &meta.moves {
        if mv.to.is_some_and(leaving) {
            steps.push(Step::Cancel { shard: *shard });
            moving.remove(shard);
        }
    }
    let mut counts = meta.replica_counts();
    let mut budget = max_moves.saturating_sub(moving.len());
    let least_loaded = |counts: &BTreeMap<NodeId, usize>, holders: &[NodeId]| {
        eligible
            .iter()
            .filter(|n| !holders.contains(n))
            .min_by_key(|n| (counts.get(n).copied().unwrap_or(0), **n))
            .copied()
    };
    let rf = meta.replication_factor.clamp(1, eligible.len().max(1));

    // Repairs: replicas on leaving nodes, then missing replicas.
    for (shard, reps) in &meta.replicas {
        if budget == 0 || eligible.is_empty() {
            break;
        }
        if moving.contains_key(shard) {
            continue;
        }
        let mv = if let Some(&from) = reps.iter().find(|n| leaving(**n)) {
            let to = least_loaded(&counts, reps);
            if to.is_none() && reps.len() <= 1 {
                continue; // the last replica stays until there is a target
            }
            Move {
                from: Some(from),
                to,
            }
        } else if reps.len() < rf {
            match least_loaded(&counts, reps) {
                Some(to) => Move {
                    from: None,
                    to: Some(to),
                },
                None => continue,
            }
        } else {
            continue;
        };
        if let Some(t) = mv.to {
            *counts.entry(t).or_default() += 1;
        }
        moving.insert(*shard, mv);
        steps.push(Step::Start { shard: *shard, mv });
        budget -= 1;
    }

    // Balance among eligible nodes.
    while budget > 0 && eligible.len() > 1 {
        let load = |n: &NodeId| counts.get(n).copied().unwrap_or(0);
        let Some(max) = eligible.iter().max_by_key(|n| (load(n), u64::MAX - **n)) else {
            break;
        };
        let Some(min) = eligible.iter().min_by_key(|n| (load(n), **n)) else {
            break;
        };
        if load(max) < load(min) + 2 {
            break;
        }
        let candidates = meta.replicas.iter().filter(|(s, r)| {
            !moving.contains_key(s) && r.contains(max) && !r.contains(min) && r.len() >= rf
        });
        let pick = candidates
            .clone()
            .find(|(s, _)| leaders.get(s) != Some(max))
            .or_else(|| candidates.clone().next());
        let Some((shard, _)) = pick else {
            break;
        };
        let mv = Move {
            from: Some(*max),
            to: Some(*min),
        };
        *counts.entry(*max).or_default() -= 1;
        *counts.entry(*min).or_default() += 1;
        moving.insert(*shard, mv);
        steps.push(Step::Start { shard: *shard, mv });
        budget -= 1;
    }

    for (id, info) in &meta.nodes {
        let holds = counts.get(id).copied().unwrap_or(0) > 0
            || moving.values().any(|m| m.from == Some(*id));
        if info.state == NodeState::Decommissioning && !holds {
            steps.push(Step::Remove { node: *id });
        }
    }
    steps
}

/// How many voters the meta group should have with `n` candidates: every
/// candidate up to 2, then 3, then 5 from five candidates on (odd sizes:
/// a fourth voter adds no fault tolerance).
fn meta_voter_target(n: usize) -> usize {
    match n {
        0..=2 => n,
        3 | 4 => 3,
        _ => 5,
    }
}

/// The meta group's voters as they should be: current voters that are still
/// active and not dead, topped up with other active, reachable nodes (lowest
/// id first) to the target size; a decommissioning voter stays while there
/// is no replacement. Returns `None` when nothing should change.
pub fn meta_voters(
    meta: &MetaState,
    live: &Liveness,
    current: &BTreeSet<NodeId>,
) -> Option<BTreeSet<NodeId>> {
    if !meta.initialised() {
        return None;
    }
    let active = |n: &NodeId| {
        meta.nodes
            .get(n)
            .is_some_and(|i| i.state == NodeState::Active)
            && !live.dead.contains(n)
    };
    let candidates = meta.nodes.keys().filter(|n| active(n)).count();
    let target = meta_voter_target(candidates);
    let mut out: BTreeSet<NodeId> = current.iter().copied().filter(active).collect();
    for n in meta.nodes.keys() {
        if out.len() >= target {
            break;
        }
        if active(n) && !live.unreachable.contains(n) {
            out.insert(*n);
        }
    }
    // A decommissioning voter stays until a replacement is there.
    for n in current {
        if out.len() >= target {
            break;
        }
        if !live.dead.contains(n)
            && meta
                .nodes
                .get(n)
                .is_some_and(|i| i.state != NodeState::Removed)
        {
            out.insert(*n);
        }
    }
    (out != *current && !out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::layout::initial_replicas;
    use crate::meta::{MetaCommand, NodeInfo};

    fn cluster(nodes: &[NodeId], shards: u32, rf: usize) -> MetaState {
        let mut m = MetaState::default();
        m.apply(&MetaCommand::Init {
            shard_count: shards,
            replication_factor: rf,
            nodes: nodes.iter().map(|n| (*n, format!("n{n}"))).collect(),
            replicas: initial_replicas(nodes, shards, rf),
        });
        m
    }

    /// Applies `plan` until it proposes nothing, finishing every move at
    /// once; returns the number of moves made.
    fn settle(m: &mut MetaState, live: &Liveness) -> usize {
        let mut moves = 0;
        for _ in 0..1000 {
            let steps = plan(m, live, &BTreeMap::new(), 4);
            if steps.is_empty() {
                return moves;
            }
            for s in steps {
                match s {
                    Step::Start { shard, mv } => {
                        m.apply(&MetaCommand::StartMove {
                            shard,
                            from: mv.from,
                            to: mv.to,
                        });
                        let mut r = m.replicas[&shard].clone();
                        r.retain(|n| Some(*n) != mv.from);
                        r.extend(mv.to);
                        m.apply(&MetaCommand::FinishMove { shard, replicas: r });
                        moves += 1;
                    }
                    Step::Cancel { shard } => m.apply(&MetaCommand::CancelMove { shard }),
                    Step::Remove { node } => m.apply(&MetaCommand::SetNodeState {
                        id: node,
                        state: NodeState::Removed,
                    }),
                }
            }
        }
        panic!("plan did not settle");
    }

    fn counts(m: &MetaState) -> BTreeMap<NodeId, usize> {
        m.replica_counts()
    }

    #[test]
    fn a_fourth_node_takes_a_quarter_of_the_replicas() {
        let mut m = cluster(&[1, 2, 3], 32, 3);
        assert!(plan(&m, &Liveness::default(), &BTreeMap::new(), 4).is_empty());
        m.apply(&MetaCommand::AddNode {
            id: 4,
            addr: "n4".into(),
        });
        let moved = settle(&mut m, &Liveness::default());
        let c = counts(&m);
        assert_eq!(c[&4], 24, "{c:?}");
        assert!(c.values().all(|&n| n == 24), "{c:?}");
        assert_eq!(moved, 24, "only the needed moves");
        for r in m.replicas.values() {
            assert_eq!(r.len(), 3);
            assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 3, "{r:?}");
        }
    }

    #[test]
    fn balance_moves_replicas_their_node_does_not_lead() {
        let mut m = cluster(&[1, 2, 3], 8, 3);
        m.apply(&MetaCommand::AddNode {
            id: 4,
            addr: "n4".into(),
        });
        let leaders: BTreeMap<u32, NodeId> = (0..8).map(|s| (s, 1 + (s as u64 % 3))).collect();
        for s in plan(&m, &Liveness::default(), &leaders, 8) {
            if let Step::Start { shard, mv } = s {
                assert_ne!(
                    leaders.get(&shard).copied(),
                    mv.from,
                    "moved a leader: {s:?}"
                );
            }
        }
    }

    #[test]
    fn decommission_moves_everything_away_then_removes() {
        let mut m = cluster(&[1, 2, 3, 4], 16, 3);
        m.apply(&MetaCommand::SetNodeState {
            id: 1,
            state: NodeState::Decommissioning,
        });
        settle(&mut m, &Liveness::default());
        assert_eq!(m.nodes[&1].state, NodeState::Removed);
        let c = counts(&m);
        assert_eq!(c[&1], 0);
        assert_eq!(c[&2] + c[&3] + c[&4], 48);
        assert!(m.replicas.values().all(|r| r.len() == 3));
    }

    #[test]
    fn decommission_with_too_few_nodes_shrinks_replica_sets() {
        let mut m = cluster(&[1, 2, 3], 4, 3);
        m.apply(&MetaCommand::SetNodeState {
            id: 3,
            state: NodeState::Decommissioning,
        });
        settle(&mut m, &Liveness::default());
        assert_eq!(m.nodes[&3].state, NodeState::Removed);
        assert!(m
            .replicas
            .values()
            .all(|r| r == &vec![1, 2] || r == &vec![2, 1]));
    }

    #[test]
    fn dead_nodes_lose_their_replicas_unreachable_ones_do_not() {
        let mut m = cluster(&[1, 2, 3, 4], 16, 3);
        let live = Liveness {
            unreachable: BTreeSet::from([4]),
            dead: BTreeSet::new(),
        };
        assert!(
            plan(&m, &live, &BTreeMap::new(), 4).is_empty(),
            "a node that is only unreachable keeps its replicas"
        );
        let live = Liveness {
            unreachable: BTreeSet::from([4]),
            dead: BTreeSet::from([4]),
        };
        settle(&mut m, &live);
        assert_eq!(counts(&m)[&4], 0);
        assert_eq!(m.nodes[&4].state, NodeState::Active, "it may come back");
        assert!(m.replicas.values().all(|r| r.len() == 3 && !r.contains(&4)));
    }

    #[test]
    fn a_move_to_a_node_that_died_is_cancelled() {
        let mut m = cluster(&[1, 2, 3, 4], 4, 3);
        m.apply(&MetaCommand::StartMove {
            shard: 0,
            from: Some(1),
            to: Some(4),
        });
        assert!(m.moves.contains_key(&0));
        let live = Liveness {
            unreachable: BTreeSet::from([4]),
            dead: BTreeSet::from([4]),
        };
        let steps = plan(&m, &live, &BTreeMap::new(), 4);
        assert_eq!(steps.first(), Some(&Step::Cancel { shard: 0 }));
    }

    #[test]
    fn joining_nodes_raise_replication_to_the_factor() {
        let mut m = cluster(&[1], 8, 3);
        assert!(m.replicas.values().all(|r| r.len() == 1));
        for n in [2, 3] {
            m.apply(&MetaCommand::AddNode {
                id: n,
                addr: format!("n{n}"),
            });
        }
        settle(&mut m, &Liveness::default());
        assert!(
            m.replicas.values().all(|r| r.len() == 3),
            "{:?}",
            m.replicas
        );
    }

    #[test]
    fn moves_in_flight_are_capped() {
        let mut m = cluster(&[1, 2, 3], 32, 3);
        m.apply(&MetaCommand::AddNode {
            id: 4,
            addr: "n4".into(),
        });
        let steps = plan(&m, &Liveness::default(), &BTreeMap::new(), 2);
        assert_eq!(steps.len(), 2);
        for s in steps {
            if let Step::Start { shard, mv } = s {
                m.apply(&MetaCommand::StartMove {
                    shard,
                    from: mv.from,
                    to: mv.to,
                });
            }
        }
        assert!(plan(&m, &Liveness::default(), &BTreeMap::new(), 2).is_empty());
    }

    #[test]
    fn meta_voters_replace_leaving_nodes_and_stay_odd() {
        let mut m = cluster(&[1, 2, 3], 4, 3);
        let cur = BTreeSet::from([1, 2, 3]);
        assert_eq!(meta_voters(&m, &Liveness::default(), &cur), None);
        m.apply(&MetaCommand::AddNode {
            id: 4,
            addr: "n4".into(),
        });
        assert_eq!(
            meta_voters(&m, &Liveness::default(), &cur),
            None,
            "4 voters"
        );
        m.nodes.insert(
            1,
            NodeInfo {
                addr: "n1".into(),
                state: NodeState::Decommissioning,
            },
        );
        assert_eq!(
            meta_voters(&m, &Liveness::default(), &cur),
            Some(BTreeSet::from([2, 3, 4]))
        );
        let live = Liveness {
            unreachable: BTreeSet::from([4]),
            dead: BTreeSet::new(),
        };
        assert_eq!(
            meta_voters(&m, &live, &cur),
            None,
            "an unreachable node is not made a voter; 1 stays until it can be replaced"
        );
    }
}
