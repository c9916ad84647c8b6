//! Membership and replica moves.
//!
//! Every node runs `run`: it probes its peers' health, keeps its router
//! and shard layout in step with the replicated cluster map, and opens or
//! closes the shard replicas the map gives it. The meta leader additionally
//! keeps the meta group's voters and learners right
//! ([`planner::meta_voters`]), plans replica moves ([`planner::plan`]) and
//! drives each one:
//!
//! 1. `StartMove` in the meta group: the target opens an empty replica of
//!    the shard.
//! 2. `ChangeReplicas` on the shard's leader: add the target as a learner,
//!    wait until it has caught up (a storage snapshot, then the log), then
//!    replace the voters (joint consensus). A leader that removes itself
//!    steps down once the change is committed.
//! 3. `FinishMove` in the meta group with the voters the shard committed:
//!    the source closes its replica and deletes its data.
//!
//! Reads and writes go on throughout: until step 3 the old replicas serve,
//! and a request that reaches a node no longer leading a shard is
//! redirected.

pub mod check;
pub mod layout;
pub mod planner;
pub mod serve;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use openraft::{BasicNode, ChangeMembers};
use proto::cluster as pb;

use crate::error::ClusterError;
use crate::meta::{MetaCommand, Move, NodeState};
use crate::node::Node;
use crate::types::{shard_group, NodeId, META_GROUP};
use planner::{Liveness, Step};

/// How often the loop runs.
const TICK: Duration = Duration::from_millis(500);
/// A peer that has not answered a probe for this long is unreachable.
const UNREACHABLE_AFTER: Duration = Duration::from_secs(3);
/// Moves in flight at once, cluster-wide.
const MAX_MOVES: usize = 2;
/// Longest wait for a learner to catch up before the attempt is retried.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(600);

/// The outcome of a replica change: `None` while it runs, then the voters
/// or why it failed.
type ChangeState = Arc<parking_lot::Mutex<Option<Result<Vec<NodeId>, String>>>>;

/// What membership tracks about peers and moves; the node holds it, only
/// this module reads or changes it.
#[derive(Default)]
pub(crate) struct Tracking {
    /// When each peer last answered a health probe.
    last_seen: parking_lot::Mutex<HashMap<NodeId, Instant>>,
    /// The meta log index each peer had applied at its last probe.
    peer_meta_applied: parking_lot::Mutex<HashMap<NodeId, u64>>,
    /// On the meta leader: for a move's `(shard, target)`, the meta log
    /// index the target must have applied before the move starts (see
    /// `move_target_is_current`).
    move_gates: parking_lot::Mutex<HashMap<(u32, NodeId), u64>>,
    /// Replica changes this node runs as a shard leader.
    replica_changes: parking_lot::Mutex<HashMap<u32, ChangeTask>>,
}

/// A replica change running on a shard leader.
struct ChangeTask {
    add: NodeId,
    remove: NodeId,
    state: ChangeState,
}

/// Runs until the node stops.
pub(crate) async fn run(node: Arc<Node>) {
    let mut stop = node.stop_signal();
    let mut leader_since: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        node.probe_peers().await;
        node.reconcile_local().await;
        if node.is_meta_leader() {
            let since = *leader_since.get_or_insert_with(Instant::now);
            if let Err(e) = node.drive(since).await {
                tracing::debug!(error = %e, "membership step failed; retrying");
            }
        } else {
            leader_since = None;
        }
    }
}

impl Node {
    /// Asks every known peer for its health; remembers who answered.
    async fn probe_peers(&self) {
        let peers: Vec<NodeId> = {
            let m = self.meta();
            if m.initialised() {
                m.nodes
                    .iter()
                    .filter(|(_, i)| i.state != NodeState::Removed)
                    .map(|(id, _)| *id)
                    .collect()
            } else {
                self.member_ids()
            }
        };
        let probes = peers
            .into_iter()
            .filter(|p| *p != self.id())
            .map(|p| async move {
                let Ok(mut c) = self.router().client(p) else {
                    return (p, None);
                };
                let mut req = tonic::Request::new(pb::HealthRequest {
                    from_node: self.id(),
                });
                req.set_timeout(Duration::from_secs(1));
                (p, c.health(req).await.ok().map(|r| r.into_inner()))
            });
        let now = Instant::now();
        for (p, reply) in join_all(probes).await {
            if let Some(r) = reply {
                self.tracking().last_seen.lock().insert(p, now);
                self.tracking()
                    .peer_meta_applied
                    .lock()
                    .insert(p, r.meta_applied);
            }
        }
    }

    /// Whether `n` answered a probe within `within`.
    pub(crate) fn seen_within(&self, n: NodeId, within: Duration) -> bool {
        n == self.id()
            || self
                .tracking()
                .last_seen
                .lock()
                .get(&n)
                .is_some_and(|t| t.elapsed() < within)
    }

    /// The liveness view the planner uses; nobody counts as dead before
    /// this node has led the meta group for the whole grace period.
    fn liveness(&self, leader_since: Instant) -> Liveness {
        let m = self.meta();
        let mut live = Liveness::default();
        for id in m.nodes.keys() {
            if !self.seen_within(*id, UNREACHABLE_AFTER) {
                live.unreachable.insert(*id);
                if leader_since.elapsed() > self.cfg().down_grace
                    && !self.seen_within(*id, self.cfg().down_grace)
                {
                    live.dead.insert(*id);
                }
            }
        }
        live
    }

    /// Follows the cluster map: peer addresses, the shard layout, and the
    /// replicas this node should host (opened) or no longer hosts (closed
    /// and deleted, once this node's copy of the map is known to be
    /// current).
    async fn reconcile_local(&self) {
        let meta = self.meta().clone();
        if !meta.initialised() {
            return;
        }
        for (id, info) in &meta.nodes {
            if self.router().addr(*id).as_deref() != Some(info.addr.as_str()) {
                self.router().set_addr(*id, info.addr.clone());
            }
        }
        self.set_layout(&meta.replicas);
        for shard in 0..meta.shard_count {
            let hosted = self.hosts(shard_group(shard));
            let wanted = meta.hosts(self.id(), shard);
            if wanted && !hosted {
                match self.open_shard_group(shard).await {
                    Ok(()) => tracing::info!(shard, "opened a replica of shard"),
                    Err(e) => tracing::warn!(shard, error = %e, "cannot open a replica"),
                }
            } else if !wanted && hosted && self.meta_is_current() {
                if let Err(e) = self.close_shard_group(shard).await {
                    tracing::warn!(shard, error = %e, "cannot remove a replica");
                }
            }
        }
    }

    /// True when this node's copy of the meta state has everything its
    /// meta leader sent: a leader is known and the local log is applied.
    fn meta_is_current(&self) -> bool {
        if !self.is_ready() {
            return false;
        }
        let Some(g) = self.group(META_GROUP) else {
            return false;
        };
        let m = g.raft.metrics().borrow().clone();
        m.current_leader.is_some() && m.last_applied.map(|l| l.index) == m.last_log_index
    }

    /// Stops this node's replica of `shard` and deletes its data and log.
    async fn close_shard_group(&self, shard: u32) -> Result<(), ClusterError> {
        let g = shard_group(shard);
        let Some(group) = self.remove_group_unless_hosted(shard) else {
            return Ok(());
        };
        self.forget_leader(g);
        if let Err(e) = group.raft.shutdown().await {
            tracing::warn!(shard, error = %e, "raft shutdown of a removed replica failed");
        }
        drop(group);
        self.db()
            .drop_shard(shard)
            .map_err(|e| ClusterError::Internal(format!("cannot delete shard {shard}: {e}")))?;
        let (log, _) = self.deps().parts(g);
        log.destroy().map_err(ClusterError::internal)?;
        tracing::info!(shard, "removed this node's replica of shard (moved away)");
        Ok(())
    }

    /// One round of the meta leader's duties.
    async fn drive(&self, leader_since: Instant) -> Result<(), ClusterError> {
        let meta = self.meta().clone();
        if !meta.initialised() {
            return Ok(());
        }
        let live = self.liveness(leader_since);
        self.reconcile_meta_group(&meta, &live).await?;

        let leaders: BTreeMap<u32, NodeId> = (0..meta.shard_count)
            .filter_map(|s| Some((s, self.leader_of(shard_group(s))?)))
            .collect();
        let voters = self.meta_voter_set();
        for step in planner::plan(&meta, &live, &leaders, MAX_MOVES) {
            let cmd = match step {
                Step::Start { shard, mv } => {
                    tracing::info!(shard, from = ?mv.from, to = ?mv.to, "starting a replica move");
                    MetaCommand::StartMove {
                        shard,
                        from: mv.from,
                        to: mv.to,
                    }
                }
                Step::Cancel { shard } => {
                    tracing::info!(shard, "cancelling a replica move: its target left");
                    MetaCommand::CancelMove { shard }
                }
                Step::Remove { node } if !voters.contains(&node) => {
                    tracing::info!(node, "decommissioned node holds no replicas: removed");
                    MetaCommand::SetNodeState {
                        id: node,
                        state: NodeState::Removed,
                    }
                }
                Step::Remove { .. } => continue,
            };
            self.meta_propose(cmd).await?;
        }

        let moves: Vec<(u32, Move)> = self.meta().moves.clone().into_iter().collect();
        self.tracking()
            .move_gates
            .lock()
            .retain(|(shard, to), _| moves.iter().any(|(s, mv)| s == shard && mv.to == Some(*to)));
        let results = join_all(
            moves
                .into_iter()
                .map(|(shard, mv)| async move { (shard, self.poll_move(shard, mv).await) }),
        )
        .await;
        for (shard, r) in results {
            match r {
                Ok(Some(voters)) => {
                    tracing::info!(shard, ?voters, "replica move committed");
                    self.meta_propose(MetaCommand::FinishMove {
                        shard,
                        replicas: voters,
                    })
                    .await?;
                }
                Ok(None) => {}
                Err(e) => tracing::info!(shard, error = %e, "replica move not done yet"),
            }
        }
        Ok(())
    }

    /// The meta group's voters as the local replica knows them.
    fn meta_voter_set(&self) -> BTreeSet<NodeId> {
        self.group(META_GROUP)
            .map(|g| {
                g.raft
                    .metrics()
                    .borrow()
                    .membership_config
                    .membership()
                    .voter_ids()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds every member as a learner of the meta group (so it has the
    /// cluster map), keeps the voters right and drops removed nodes.
    async fn reconcile_meta_group(
        &self,
        meta: &crate::meta::MetaState,
        live: &Liveness,
    ) -> Result<(), ClusterError> {
        let Some(g) = self.group(META_GROUP) else {
            return Ok(());
        };
        let membership = g.raft.metrics().borrow().membership_config.clone();
        let m = membership.membership();
        if m.get_joint_config().len() > 1 {
            return Ok(()); // a change is in progress
        }
        let in_group: BTreeSet<NodeId> = m.nodes().map(|(id, _)| *id).collect();
        let meta_err = |e| ClusterError::Unavailable(format!("meta membership: {e}"));
        for (id, info) in &meta.nodes {
            if info.state != NodeState::Removed && !in_group.contains(id) {
                tracing::info!(node = id, "adding node to the meta group as a learner");
                g.raft
                    .add_learner(*id, BasicNode::new(&info.addr), false)
                    .await
                    .map_err(meta_err)?;
            }
        }
        let current: BTreeSet<NodeId> = m.voter_ids().collect();
        if let Some(voters) = planner::meta_voters(meta, live, &current) {
            let missing: Vec<NodeId> = voters.difference(&in_group).copied().collect();
            if missing.is_empty() {
                tracing::info!(?current, ?voters, "changing the meta group's voters");
                g.raft
                    .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
                    .await
                    .map_err(meta_err)?;
            }
            return Ok(());
        }
        let removed: BTreeSet<NodeId> = in_group
            .iter()
            .copied()
            .filter(|id| {
                !current.contains(id)
                    && meta
                        .nodes
                        .get(id)
                        .is_none_or(|i| i.state == NodeState::Removed)
            })
            .collect();
        if !removed.is_empty() {
            tracing::info!(?removed, "removing nodes from the meta group");
            g.raft
                .change_membership(ChangeMembers::RemoveNodes(removed), false)
                .await
                .map_err(meta_err)?;
        }
        Ok(())
    }

    /// Whether the target of a move on `shard` has the move in its copy of
    /// the cluster map. Until it has, it may still hold an old replica of
    /// the shard (from before it was down and replaced) that its map tells
    /// it to delete: a leader that matched the new learner's log against
    /// that copy would then see it vanish after counting it towards
    /// commits, losing acknowledged writes. Once the move is in its map,
    /// the target keeps the replica. The bar is the meta log index this
    /// leader had applied when it first saw the move (which holds the move).
    fn move_target_is_current(&self, shard: u32, to: NodeId) -> bool {
        let need = *self
            .tracking()
            .move_gates
            .lock()
            .entry((shard, to))
            .or_insert_with(|| self.meta_applied());
        let has = if to == self.id() {
            self.meta_applied()
        } else {
            self.tracking()
                .peer_meta_applied
                .lock()
                .get(&to)
                .copied()
                .unwrap_or(0)
        };
        has >= need
    }

    /// Asks the shard's leader to carry out `mv`; `Some(voters)` once done.
    async fn poll_move(&self, shard: u32, mv: Move) -> Result<Option<Vec<NodeId>>, ClusterError> {
        if let Some(to) = mv.to {
            if !self.move_target_is_current(shard, to) {
                tracing::debug!(
                    shard,
                    to,
                    "move waits for its target to catch up with the map"
                );
                return Ok(None);
            }
        }
        let g = shard_group(shard);
        let add = mv.to.unwrap_or(0);
        let remove = mv.from.unwrap_or(0);
        let add_addr = mv
            .to
            .and_then(|t| self.router().addr(t))
            .unwrap_or_default();
        let leader = self
            .leader_of(g)
            .ok_or(ClusterError::NoLeader { group: g })?;
        let r = if leader == self.id() {
            self.change_replicas(shard, add, &add_addr, remove).await
        } else {
            let mut c = self
                .router()
                .client(leader)
                .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
            c.change_replicas(pb::ChangeReplicasRequest {
                shard,
                add,
                add_addr,
                remove,
            })
            .await
            .map_err(|s| ClusterError::Unavailable(format!("node {leader}: {}", s.message())))?
            .into_inner()
        };
        if let Some(rd) = r.redirect.filter(|r| r.not_leader) {
            if rd.leader_id != 0 && rd.leader_id != leader {
                self.hint_leader(g, rd.leader_id, Some(&rd.leader_addr));
            } else {
                self.guess_next_leader(g, leader);
            }
            return Ok(None);
        }
        if !r.error.is_empty() {
            return Err(ClusterError::Unavailable(r.error));
        }
        Ok(r.done.then_some(r.voters))
    }

    /// On the leader of `shard`: makes `add` (0: none) a voter and `remove`
    /// (0: none) no replica, in the background; answers with the state.
    pub(crate) async fn change_replicas(
        &self,
        shard: u32,
        add: NodeId,
        add_addr: &str,
        remove: NodeId,
    ) -> pb::ChangeReplicasResponse {
        let g = shard_group(shard);
        let Some(group) = self.group(g).filter(|x| x.is_leader(self.id())) else {
            let leader = self.group(g).and_then(|x| x.leader()).unwrap_or(0);
            return pb::ChangeReplicasResponse {
                redirect: Some(pb::Redirect {
                    not_leader: true,
                    leader_id: leader,
                    leader_addr: self.router().addr(leader).unwrap_or_default(),
                }),
                ..Default::default()
            };
        };
        let mut tasks = self.tracking().replica_changes.lock();
        if let Some(t) = tasks.get(&shard) {
            if t.add == add && t.remove == remove {
                let state = t.state.lock().clone();
                return match state {
                    None => pb::ChangeReplicasResponse::default(),
                    Some(res) => {
                        tasks.remove(&shard);
                        match res {
                            Ok(voters) => pb::ChangeReplicasResponse {
                                done: true,
                                voters,
                                ..Default::default()
                            },
                            Err(error) => pb::ChangeReplicasResponse {
                                error,
                                ..Default::default()
                            },
                        }
                    }
                };
            }
            if t.state.lock().is_none() {
                return pb::ChangeReplicasResponse {
                    error: format!("shard {shard} is busy with another replica change"),
                    ..Default::default()
                };
            }
        }
        let state: ChangeState = Arc::new(parking_lot::Mutex::new(None));
        tasks.insert(
            shard,
            ChangeTask {
                add,
                remove,
                state: state.clone(),
            },
        );
        let raft = group.raft.clone();
        let addr = add_addr.to_string();
        tokio::spawn(async move {
            let res = apply_change(&raft, shard, add, &addr, remove).await;
            if let Err(e) = &res {
                tracing::warn!(shard, error = %e, "replica change failed");
            }
            *state.lock() = Some(res);
        });
        pb::ChangeReplicasResponse::default()
    }

    /// Handles a `Join` request on any member: records the node in the
    /// cluster map (through the meta leader).
    pub(crate) async fn admit(
        &self,
        id: NodeId,
        addr: String,
    ) -> Result<(BTreeMap<NodeId, String>, u32), ClusterError> {
        if id == 0 || addr.is_empty() {
            return Err(ClusterError::BadData(
                "a joining node needs an id > 0 and an address".into(),
            ));
        }
        let known = self.meta().nodes.get(&id).cloned();
        if let Some(n) = known {
            if n.addr != addr && n.state != NodeState::Removed {
                return Err(ClusterError::BadData(format!(
                    "node id {id} is already a member at {}; pick another --node-id",
                    n.addr
                )));
            }
        }
        self.meta_propose(MetaCommand::AddNode {
            id,
            addr: addr.clone(),
        })
        .await?;
        let meta = self.meta();
        let mut members: BTreeMap<NodeId, String> = meta
            .nodes
            .iter()
            .filter(|(_, i)| i.state != NodeState::Removed)
            .map(|(id, i)| (*id, i.addr.clone()))
            .collect();
        members.insert(id, addr);
        tracing::info!(node = id, "node joined the cluster");
        Ok((members, meta.shard_count))
    }

    /// Starts decommissioning `node_id`: its replicas move to other nodes,
    /// then it is marked removed and can be stopped.
    pub async fn decommission(&self, node_id: NodeId) -> Result<(), ClusterError> {
        let meta = self.meta().clone();
        let Some(info) = meta.nodes.get(&node_id) else {
            return Err(ClusterError::BadData(format!(
                "node {node_id} is not a member of this cluster"
            )));
        };
        if info.state != NodeState::Active {
            return Ok(()); // already decommissioning or removed
        }
        let others = meta
            .nodes
            .iter()
            .filter(|(id, i)| **id != node_id && i.state == NodeState::Active)
            .count();
        if others == 0 {
            return Err(ClusterError::BadData(format!(
                "node {node_id} is the last active node; nothing could take its replicas"
            )));
        }
        tracing::info!(node = node_id, "decommissioning node");
        self.meta_propose(MetaCommand::SetNodeState {
            id: node_id,
            state: NodeState::Decommissioning,
        })
        .await
    }
}

/// Adds `add` as a learner, waits until it has caught up, then replaces the
/// voters. Idempotent: a change already made is reported as done.
async fn apply_change(
    raft: &crate::raft::group::RaftHandle,
    shard: u32,
    add: NodeId,
    add_addr: &str,
    remove: NodeId,
) -> Result<Vec<NodeId>, String> {
    let voters = |raft: &crate::raft::group::RaftHandle| -> BTreeSet<NodeId> {
        raft.metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    };
    let current = voters(raft);
    let mut target = current.clone();
    if remove != 0 {
        target.remove(&remove);
    }
    if add != 0 {
        target.insert(add);
    }
    if target.is_empty() {
        return Err(format!("shard {shard} would have no replica left"));
    }
    if add != 0 && !current.contains(&add) {
        if add_addr.is_empty() {
            return Err(format!("the address of node {add} is unknown"));
        }
        let t0 = Instant::now();
        tokio::time::timeout(
            CATCH_UP_TIMEOUT,
            raft.add_learner(add, BasicNode::new(add_addr), true),
        )
        .await
        .map_err(|_| format!("node {add} did not catch up within {CATCH_UP_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot add node {add} as a learner: {e}"))?;
        tracing::info!(shard, node = add, elapsed = ?t0.elapsed(), "learner caught up");
    }
    if target != current {
        raft.change_membership(ChangeMembers::ReplaceAllVoters(target.clone()), false)
            .await
            .map_err(|e| format!("cannot change the voters of shard {shard}: {e}"))?;
    }
    // Stray learners (from an abandoned move) are dropped too.
    let strays: BTreeSet<NodeId> = {
        let m = raft.metrics().borrow().membership_config.clone();
        m.membership().learner_ids().collect()
    };
    if !strays.is_empty() {
        raft.change_membership(ChangeMembers::RemoveNodes(strays), false)
            .await
            .map_err(|e| format!("cannot drop learners of shard {shard}: {e}"))?;
    }
    Ok(voters(raft).into_iter().collect())
}

/// Asks the member at `addr` to admit this node; returns the members and
/// the shard count. Retries until `deadline` while the member is
/// unreachable or has no meta leader.
pub(crate) async fn join_cluster(
    addr: &str,
    me: NodeId,
    my_addr: &str,
    timeout: Duration,
    auth: &crate::auth::ClientAuth,
    deadline: Instant,
) -> Result<(BTreeMap<NodeId, String>, u32), ClusterError> {
    let mut last = String::new();
    while Instant::now() < deadline {
        match crate::raft::network::connect_lazy(addr, timeout, auth, None) {
            Ok(mut c) => match c
                .join(pb::JoinRequest {
                    node_id: me,
                    addr: my_addr.to_string(),
                })
                .await
            {
                Ok(r) => {
                    let r = r.into_inner();
                    if r.error.is_empty() {
                        let members: HashMap<NodeId, String> = serde_json::from_slice(&r.members)
                            .map_err(|e| {
                            ClusterError::Internal(format!("bad join answer from {addr}: {e}"))
                        })?;
                        return Ok((members.into_iter().collect(), r.shard_count));
                    }
                    if r.error.contains("already a member") {
                        return Err(ClusterError::Config(r.error));
                    }
                    last = r.error;
                }
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                    ) =>
                {
                    return Err(ClusterError::Config(format!(
                        "--join {addr}: the member refused this node: {}",
                        s.message()
                    )))
                }
                Err(s) => last = s.message().to_string(),
            },
            Err(e) => return Err(ClusterError::Config(format!("--join {addr}: {e}"))),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(ClusterError::Config(format!(
        "cannot join the cluster through {addr}: {last}"
    )))
}
