//! [`Node`]: one cluster member. It opens storage, serves the node-to-node
//! gRPC service, runs the Raft groups it hosts (the meta group and its shard
//! replicas) and a supervisor task (bootstrap, readiness, checkpoints,
//! retention).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{BasicNode, Raft};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use crate::error::ClusterError;
use crate::membership::layout::initial_replicas;
use crate::meta::{MetaCommand, MetaState};
use crate::raft::group::{raft_config, Group, GroupDeps};
use crate::raft::log_store::{RocksProvider, Syncer};
use crate::raft::meta_sm::MetaStateMachine;
use crate::raft::network::{Router, MAX_MESSAGE_BYTES};
use crate::raft::shard_sm::ShardStateMachine;
use crate::types::{group_shard, shard_group, GroupId, NodeId, Request, META_GROUP};
use crate::write::propose::Proposer;

struct StorageRocks(Arc<storage::Db>);

impl RocksProvider for StorageRocks {
    fn rocks(&self) -> &rocksdb::DB {
        self.0.rocks()
    }
}

/// A member of a Silverback cluster (a single node is a cluster of one).
pub struct Node {
    cfg: NodeConfig,
    id: NodeId,
    db: Arc<storage::Db>,
    deps: GroupDeps,
    groups: RwLock<HashMap<GroupId, Group>>,
    meta: Arc<RwLock<MetaState>>,
    members: BTreeMap<NodeId, String>,
    shard_count: u32,
    layout: RwLock<BTreeMap<u32, Vec<NodeId>>>,
    leader_hints: RwLock<HashMap<GroupId, NodeId>>,
    replay_targets: Mutex<HashMap<GroupId, u64>>,
    /// What membership tracks about peers and moves.
    tracking: crate::membership::Tracking,
    ready: AtomicBool,
    /// Free space on the data volume.
    disk: crate::disk::DiskGuard,
    /// Shard snapshots installed since start.
    snapshots_installed: Arc<std::sync::atomic::AtomicU64>,
    /// Set once a Raft group stopped on a storage error (see
    /// [`Node::fatal_error`]).
    fatal: watch::Sender<Option<String>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn storage_err(e: storage::StorageError) -> ClusterError {
    ClusterError::Internal(format!("cannot open storage: {e}"))
}

/// The reason a node stops, from the Raft groups that stopped on a storage
/// error (group id, error), if any did. Every group's error is named, the
/// same error once: the groups share one RocksDB, and after its first
/// failure the others may only see "Writer has previous error".
fn storage_failure(mut stopped: Vec<(GroupId, String)>) -> Option<String> {
    stopped.sort();
    let mut by_error: Vec<(String, Vec<String>)> = Vec::new();
    for (g, e) in stopped {
        match by_error.iter_mut().find(|(seen, _)| *seen == e) {
            Some((_, groups)) => groups.push(g.to_string()),
            None => by_error.push((e, vec![g.to_string()])),
        }
    }
    if by_error.is_empty() {
        return None;
    }
    let why: Vec<String> = by_error
        .into_iter()
        .map(|(e, groups)| {
            let s = if groups.len() > 1 { "s" } else { "" };
            format!("Raft group{s} {} stopped: {e}", groups.join(", "))
        })
        .collect();
    Some(format!(
        "storage failed: {}; the node stops (restart it once the disk is healthy)",
        why.join("; ")
    ))
}

impl Node {
    /// Opens storage, starts the gRPC server and the Raft groups, and
    /// bootstraps a new cluster when this node has the lowest id. Returns
    /// once everything is started; [`Node::is_ready`] tells when every
    /// group has a leader and local replay is done.
    pub async fn start(cfg: NodeConfig) -> Result<Arc<Node>, ClusterError> {
        let mut members = cfg.initial_members();
        if cfg.join.is_none() && !members.contains_key(&cfg.node_id) {
            return Err(ClusterError::Config(format!(
                "node id {} is not in the peer list {:?}; add it or change --node-id",
                cfg.node_id,
                members.keys().collect::<Vec<_>>()
            )));
        }
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            ClusterError::Config(format!(
                "cannot create data dir {}: {e}",
                cfg.data_dir.display()
            ))
        })?;
        let db = storage::Db::open(&cfg.data_dir, cfg.storage.clone()).map_err(storage_err)?;
        let provider: Arc<dyn RocksProvider> = Arc::new(StorageRocks(db.clone()));
        let client_auth =
            crate::auth::ClientAuth::new(cfg.cluster_secret.clone()).with_tls(cfg.tls.clone());
        let router = Arc::new(Router::new(
            cfg.node_id,
            cfg.rpc_timeout,
            client_auth.clone(),
        ));
        let syncer = Syncer::start(provider.clone()).map_err(ClusterError::internal)?;
        let (meta_tx, _meta_rx) = watch::channel(0u64);
        let meta = Arc::new(RwLock::new(MetaState::default()));
        let meta_sm = MetaStateMachine::open(provider.clone(), meta.clone(), meta_tx)
            .map_err(ClusterError::internal)?;
        let joined = if meta.read().initialised() {
            None // a member already: the local cluster map is authoritative
        } else if let Some(addr) = &cfg.join {
            let deadline = Instant::now() + Duration::from_secs(120);
            let (m, shards) = crate::membership::join_cluster(
                addr,
                cfg.node_id,
                &cfg.advertised(),
                cfg.rpc_timeout,
                &client_auth,
                deadline,
            )
            .await?;
            members = m;
            Some(shards)
        } else {
            None
        };
        if let Some(m) = meta.read().initialised().then(|| meta.read().clone()) {
            members = m
                .nodes
                .iter()
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect();
        }
        for (id, a) in &members {
            router.set_addr(*id, a.clone());
        }
        let (shard_count, layout) = {
            let m = meta.read();
            if m.initialised() {
                (m.shard_count, m.replicas.clone())
            } else if let Some(shards) = joined {
                (shards, BTreeMap::new())
            } else {
                let ids: Vec<NodeId> = members.keys().copied().collect();
                (
                    cfg.shards,
                    initial_replicas(&ids, cfg.shards, cfg.replication_factor),
                )
            }
        };
        let deps = GroupDeps {
            node_id: cfg.node_id,
            config: raft_config(&cfg)?,
            db: provider,
            syncer,
            router,
            log_sizes: Default::default(),
        };
        let (stop, _) = watch::channel(false);
        let disk = crate::disk::DiskGuard::new(cfg.data_dir.clone(), cfg.min_free_disk_bytes);
        let node = Arc::new(Node {
            id: cfg.node_id,
            cfg,
            db,
            deps,
            groups: RwLock::new(HashMap::new()),
            meta,
            members,
            shard_count,
            layout: RwLock::new(layout),
            leader_hints: RwLock::new(HashMap::new()),
            replay_targets: Mutex::new(HashMap::new()),
            tracking: Default::default(),
            ready: AtomicBool::new(false),
            disk,
            snapshots_installed: Default::default(),
            fatal: watch::channel(None).0,
            stop,
            tasks: Mutex::new(Vec::new()),
        });
        node.serve_grpc().await?;
        node.open_meta_group(meta_sm).await?;
        let mine: Vec<u32> = node
            .layout
            .read()
            .iter()
            .filter(|(_, r)| r.contains(&node.id))
            .map(|(s, _)| *s)
            .collect();
        for s in mine {
            node.open_shard_group(s).await?;
        }
        if node.cfg.join.is_none() && !node.meta.read().initialised() {
            node.bootstrap().await;
        }
        let sup = tokio::spawn(crate::supervisor::run(node.clone()));
        let mem = tokio::spawn(crate::membership::run(node.clone()));
        node.tasks.lock().extend([sup, mem]);
        Ok(node)
    }

    async fn serve_grpc(self: &Arc<Self>) -> Result<(), ClusterError> {
        let listener = tokio::net::TcpListener::bind(self.cfg.grpc_listen)
            .await
            .map_err(|e| {
                ClusterError::Config(format!(
                    "cannot listen on {} for the cluster gRPC service: {e}",
                    self.cfg.grpc_listen
                ))
            })?;
        if let Some(w) = self.exposure_warning() {
            tracing::warn!("INSECURE CLUSTER PORT: {w}");
        }
        let svc = proto::cluster::cluster_server::ClusterServer::new(crate::grpc::Service::new(
            Arc::downgrade(self),
        ))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
        // The secret is checked on the request's headers, before its body
        // is read and decoded.
        let svc = tonic::service::interceptor::InterceptedService::new(
            svc,
            crate::auth::ServerAuth::new(self.cfg.cluster_secret.clone()),
        );
        let mut stop = self.stop.subscribe();
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = &self.cfg.tls {
            server = server.tls_config(tls.server_config()).map_err(|e| {
                ClusterError::Config(format!(
                    "grpc_tls_cert_file/grpc_tls_key_file: cannot use them for the cluster \
                     port: {e}"
                ))
            })?;
        }
        let h = tokio::spawn(async move {
            let res = server
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = res {
                tracing::error!(error = %e, "cluster gRPC server failed");
            }
        });
        self.tasks.lock().push(h);
        Ok(())
    }

    /// Why the cluster port is open to strangers, if it is (shown at start
    /// and in `/api/v1/status/cluster`).
    pub(crate) fn exposure_warning(&self) -> Option<String> {
        let protected = self.cfg.cluster_secret.is_some() || self.cfg.tls.is_some();
        crate::auth::exposure_warning(self.cfg.grpc_listen, protected)
    }

    async fn replay_target(&self, group: GroupId) -> u64 {
        use openraft::storage::RaftLogStorage;
        let (mut log, _) = self.deps.parts(group);
        log.read_committed()
            .await
            .ok()
            .flatten()
            .map(|l| l.index)
            .unwrap_or(0)
    }

    async fn open_meta_group(&self, sm: MetaStateMachine) -> Result<(), ClusterError> {
        let target = self.replay_target(META_GROUP).await;
        let (log, net) = self.deps.parts(META_GROUP);
        let raft = Raft::new(self.id, self.deps.config.clone(), net, log, sm)
            .await
            .map_err(ClusterError::internal)?;
        self.replay_targets.lock().insert(META_GROUP, target);
        self.groups.write().insert(
            META_GROUP,
            Group {
                id: META_GROUP,
                raft,
                shard: None,
                proposer: None,
            },
        );
        Ok(())
    }

    pub(crate) async fn open_shard_group(&self, shard: u32) -> Result<(), ClusterError> {
        let group = shard_group(shard);
        if self.groups.read().contains_key(&group) {
            return Ok(());
        }
        let st = self.db.shard(shard).map_err(storage_err)?;
        let sm = ShardStateMachine::new(st.clone(), self.snapshots_installed.clone())
            .map_err(ClusterError::internal)?;
        let target = self.replay_target(group).await;
        let (log, net) = self.deps.parts(group);
        let raft = Raft::new(self.id, self.deps.config.clone(), net, log, sm)
            .await
            .map_err(ClusterError::internal)?;
        let proposer = Proposer::start(
            raft.clone(),
            self.cfg.max_batch_callers,
            self.cfg.proposer_queue,
            self.cfg.shard_series_limits(self.shard_count),
        );
        self.replay_targets.lock().insert(group, target);
        self.groups.write().insert(
            group,
            Group {
                id: group,
                raft,
                shard: Some(st),
                proposer: Some(proposer),
            },
        );
        Ok(())
    }

    fn basic_nodes(&self, ids: &[NodeId]) -> BTreeMap<NodeId, BasicNode> {
        ids.iter()
            .filter_map(|id| {
                let a = self.deps.router.addr(*id)?;
                Some((*id, BasicNode::new(a)))
            })
            .collect()
    }

    /// Initialises the groups this node bootstraps (no-op when they already
    /// have state): the meta group on the lowest id, each shard group on its
    /// first replica (so leaders start spread over the nodes).
    async fn bootstrap(&self) {
        let lowest = self.members.keys().next().copied();
        let mut todo: Vec<(GroupId, Vec<NodeId>)> = Vec::new();
        if lowest == Some(self.id) {
            let ids: Vec<NodeId> = self.members.keys().copied().collect();
            todo.push((META_GROUP, ids));
        }
        for (s, r) in self.layout.read().iter() {
            if r.first() == Some(&self.id) {
                todo.push((shard_group(*s), r.clone()));
            }
        }
        for (g, ids) in todo {
            let Some(raft) = self.group(g).map(|g| g.raft) else {
                continue;
            };
            let nodes = self.basic_nodes(&ids);
            match raft.initialize(nodes).await {
                Ok(()) => tracing::info!(group = g, "bootstrapped raft group"),
                Err(e) => tracing::debug!(group = g, error = %e, "group already initialised"),
            }
        }
    }

    /// The last meta-group log index this node has applied (0: none).
    pub fn meta_applied(&self) -> u64 {
        self.group(META_GROUP)
            .and_then(|g| g.raft.metrics().borrow().last_applied.map(|l| l.index))
            .unwrap_or(0)
    }

    /// The hosted group `g`, if any.
    pub(crate) fn group(&self, g: GroupId) -> Option<Group> {
        self.groups.read().get(&g).cloned()
    }

    /// The node's configuration.
    pub(crate) fn cfg(&self) -> &NodeConfig {
        &self.cfg
    }

    /// The node's storage.
    pub(crate) fn db(&self) -> &Arc<storage::Db> {
        &self.db
    }

    /// What every hosted group shares: log store parts, peers, log sizes.
    pub(crate) fn deps(&self) -> &GroupDeps {
        &self.deps
    }

    /// The peers' addresses and channels.
    pub(crate) fn router(&self) -> &crate::raft::network::Router {
        &self.deps.router
    }

    /// The cluster map as this node has applied it (read-only: it changes
    /// only by applying meta entries).
    pub(crate) fn meta(&self) -> parking_lot::RwLockReadGuard<'_, MetaState> {
        self.meta.read()
    }

    /// The nodes this node was started with or joined, and their addresses.
    pub(crate) fn members(&self) -> &BTreeMap<NodeId, String> {
        &self.members
    }

    /// The ids of [`Node::members`].
    pub(crate) fn member_ids(&self) -> Vec<NodeId> {
        self.members.keys().copied().collect()
    }

    /// Whether this node hosts group `g`.
    pub(crate) fn hosts(&self, g: GroupId) -> bool {
        self.groups.read().contains_key(&g)
    }

    /// Every hosted group.
    pub(crate) fn hosted_groups(&self) -> Vec<Group> {
        self.groups.read().values().cloned().collect()
    }

    /// The replica layout this node follows (shard -> replicas).
    pub(crate) fn layout(&self) -> BTreeMap<u32, Vec<NodeId>> {
        self.layout.read().clone()
    }

    /// Follows the cluster map's replica layout; whether it changed.
    pub(crate) fn set_layout(&self, replicas: &BTreeMap<u32, Vec<NodeId>>) -> bool {
        if *self.layout.read() == *replicas {
            return false;
        }
        *self.layout.write() = replicas.clone();
        true
    }

    /// Forgets the leader hint of group `g`.
    pub(crate) fn forget_leader(&self, g: GroupId) {
        self.leader_hints.write().remove(&g);
    }

    /// The leader hint of group `g`, if any.
    pub(crate) fn hinted_leader(&self, g: GroupId) -> Option<NodeId> {
        self.leader_hints.read().get(&g).copied()
    }

    /// Free space on the data volume.
    pub(crate) fn disk(&self) -> &crate::disk::DiskGuard {
        &self.disk
    }

    /// Shard snapshots installed since start.
    pub(crate) fn snapshots_installed(&self) -> u64 {
        self.snapshots_installed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What membership tracks about peers and moves.
    pub(crate) fn tracking(&self) -> &crate::membership::Tracking {
        &self.tracking
    }

    /// A redirect to `g`'s leader when this node does not lead it (`None`
    /// when it does).
    pub(crate) fn redirect_unless_leader(&self, g: GroupId) -> Option<proto::cluster::Redirect> {
        let leader = self.group(g).and_then(|x| x.leader());
        if leader == Some(self.id()) {
            return None;
        }
        let l = leader.unwrap_or(0);
        Some(proto::cluster::Redirect {
            not_leader: true,
            leader_id: l,
            leader_addr: self.deps.router.addr(l).unwrap_or_default(),
        })
    }

    /// The hosted group `g`, if it may take log entries and snapshots from
    /// its leader: a shard's replica only while this node's copy of the
    /// cluster map says it hosts the shard (any group before the map is
    /// set up). Checked under the map's lock, as
    /// [`Node::remove_group_unless_hosted`] is, so a replica that the map
    /// has told this node to delete takes no more entries.
    ///
    /// This alone does not stop a leader from matching a new learner
    /// against an old copy: a node that comes back after being replaced
    /// still has a map that gives it the shard until it catches up. That
    /// is the meta leader's wait in `poll_move`.
    pub(crate) fn group_for_log(&self, g: GroupId) -> Option<Group> {
        let meta = self.meta.read();
        if let Some(shard) = group_shard(g) {
            if meta.initialised() && !meta.hosts(self.id, shard) {
                return None;
            }
        }
        self.group(g)
    }

    /// What this node knows of group `g`, to judge a Raft message for it:
    /// the local replica's voters and learners, the shard's replicas (and
    /// move target) in the cluster map, every node of the map for the meta
    /// group, the initial members while the map is not recorded yet.
    pub(crate) fn raft_view(&self, g: &Group) -> crate::raft::guard::GroupView {
        let (mut members, term) = {
            let m = g.raft.metrics();
            let m = m.borrow();
            let ids: std::collections::BTreeSet<NodeId> = m
                .membership_config
                .membership()
                .nodes()
                .map(|(id, _)| *id)
                .collect();
            (ids, m.current_term)
        };
        let meta = self.meta.read();
        match group_shard(g.id) {
            Some(s) => {
                members.extend(meta.replicas.get(&s).into_iter().flatten());
                members.extend(meta.moves.get(&s).and_then(|m| m.to));
            }
            None => members.extend(meta.nodes.keys()),
        }
        if !meta.initialised() {
            members.extend(self.members.keys());
        }
        crate::raft::guard::GroupView {
            group: g.id,
            members,
            term,
        }
    }

    /// Takes the replica of `shard` out of the hosted groups, unless this
    /// node's copy of the cluster map says it hosts the shard (checked under
    /// the map's lock, see [`Node::group_for_log`]).
    pub(crate) fn remove_group_unless_hosted(&self, shard: u32) -> Option<Group> {
        let meta = self.meta.read();
        if meta.hosts(self.id, shard) {
            return None;
        }
        self.groups.write().remove(&shard_group(shard))
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Number of shards.
    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// The leader of `g` as best known here: the local replica's view, else
    /// the last redirect seen, else the group's first replica.
    pub(crate) fn leader_of(&self, g: GroupId) -> Option<NodeId> {
        if let Some(l) = self.group(g).and_then(|x| x.leader()) {
            return Some(l);
        }
        if let Some(l) = self.leader_hints.read().get(&g) {
            return Some(*l);
        }
        let s = group_shard(g)?;
        self.layout.read().get(&s).and_then(|r| r.first().copied())
    }

    /// Remembers a leader learnt from a peer.
    pub(crate) fn hint_leader(&self, g: GroupId, leader: NodeId, addr: Option<&str>) {
        self.leader_hints.write().insert(g, leader);
        if let Some(a) = addr {
            if !a.is_empty() && self.deps.router.addr(leader).is_none() {
                self.deps.router.set_addr(leader, a.to_string());
            }
        }
    }

    /// Replicas of `shard`.
    pub(crate) fn replicas(&self, shard: u32) -> Vec<NodeId> {
        self.layout.read().get(&shard).cloned().unwrap_or_default()
    }

    /// True once every hosted group has a leader and has replayed its log.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Why the node refuses writes (disk nearly full, or storage failed),
    /// if it does.
    pub fn disk_problem(&self) -> Option<String> {
        if let Some(e) = self.fatal.borrow().clone() {
            return Some(e);
        }
        self.disk.check().err().map(|e| e.to_string())
    }

    /// Resolves with the reason once a Raft group of this node has stopped
    /// on a storage error (a failed write or fsync of its log or state).
    /// Such a node is fail-stop: a failed fsync cannot be retried safely
    /// (the kernel may have dropped the dirty pages), so the server exits
    /// and its supervisor restarts it, recovering from what was fsynced;
    /// nothing acknowledged depends on the failed write.
    pub async fn fatal_error(&self) -> String {
        let mut rx = self.fatal.subscribe();
        let seen = match rx.wait_for(|f| f.is_some()).await {
            Ok(f) => f.clone(),
            Err(_) => None,
        };
        match seen {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// The error for a write on a node whose storage failed.
    pub(crate) fn check_storage(&self) -> Result<(), ClusterError> {
        match self.fatal.borrow().as_ref() {
            Some(e) => Err(ClusterError::Unavailable(e.clone())),
            None => self.disk.check(),
        }
    }

    pub(crate) fn refresh_ready(&self) -> bool {
        let groups: Vec<Group> = self.groups.read().values().cloned().collect();
        let targets = self.replay_targets.lock().clone();
        self.disk.refresh();
        if self.fatal.borrow().is_none() {
            let stopped = groups.iter().filter_map(|g| {
                let m = g.raft.metrics().borrow().clone();
                m.running_state.err().map(|e| (g.id, e.to_string()))
            });
            if let Some(msg) = storage_failure(stopped.collect()) {
                tracing::error!("FATAL: {msg}");
                self.fatal.send_replace(Some(msg));
            }
        }
        let ok = self.fatal.borrow().is_none()
            && !self.disk.is_full()
            && groups.iter().all(|g| {
                let m = g.raft.metrics().borrow().clone();
                let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
                m.current_leader.is_some() && applied >= targets.get(&g.id).copied().unwrap_or(0)
            });
        self.ready.store(ok, Ordering::Release);
        ok
    }

    /// True when this node leads the meta group (the "silverback": it
    /// evaluates rules and places replicas).
    pub fn is_meta_leader(&self) -> bool {
        self.group(META_GROUP).is_some_and(|g| g.is_leader(self.id))
    }

    /// Confirms this node leads the meta group (a quorum answered) and waits
    /// until its copy of the meta state holds everything committed so far.
    /// A new leader calls it before reading state its predecessor wrote
    /// (the rule alert state): right after an election the last committed
    /// entries may not be applied yet.
    pub async fn meta_read_barrier(&self) -> Result<(), ClusterError> {
        let g = self
            .group(META_GROUP)
            .ok_or_else(|| ClusterError::internal("meta group is not running"))?;
        match tokio::time::timeout(self.cfg.rpc_timeout, g.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(ClusterError::NoLeader { group: META_GROUP }),
        }
    }

    /// Proposes the cluster map once, from the meta leader.
    pub(crate) async fn ensure_meta_initialised(&self) -> Result<(), ClusterError> {
        if self.meta.read().initialised() || !self.is_meta_leader() {
            return Ok(());
        }
        let cmd = MetaCommand::Init {
            shard_count: self.shard_count,
            replication_factor: self.cfg.replication_factor,
            nodes: self.members.clone(),
            replicas: self.layout.read().clone(),
        };
        self.meta_propose(cmd).await
    }

    /// Proposes a meta command on the meta leader (local or forwarded).
    pub(crate) async fn meta_propose(&self, cmd: MetaCommand) -> Result<(), ClusterError> {
        let deadline = Instant::now() + self.cfg.rpc_timeout;
        loop {
            let leader = self.leader_of(META_GROUP);
            let res = match leader {
                Some(l) if l == self.id => self.meta_propose_local(cmd.clone()).await,
                Some(l) => self.meta_forward(l, &cmd).await,
                None => Err(ClusterError::NoLeader { group: META_GROUP }),
            };
            match res {
                Err(ClusterError::NoLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r => return r,
            }
        }
    }

    pub(crate) async fn meta_propose_local(&self, cmd: MetaCommand) -> Result<(), ClusterError> {
        let g = self
            .group(META_GROUP)
            .ok_or_else(|| ClusterError::internal("meta group is not running"))?;
        match g.raft.client_write(Request::Meta(cmd)).await {
            Ok(_) => Ok(()),
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(f),
            )) => {
                if let Some(l) = f.leader_id {
                    self.hint_leader(
                        META_GROUP,
                        l,
                        f.leader_node.as_ref().map(|n| n.addr.as_str()),
                    );
                }
                Err(ClusterError::NoLeader { group: META_GROUP })
            }
            Err(e) => Err(ClusterError::Unavailable(format!("meta group: {e}"))),
        }
    }

    async fn meta_forward(&self, leader: NodeId, cmd: &MetaCommand) -> Result<(), ClusterError> {
        let mut c = self
            .deps
            .router
            .client(leader)
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        let body = serde_json::to_vec(cmd).map_err(ClusterError::internal)?;
        let r = c
            .meta(proto::cluster::MetaRequest { command: body })
            .await
            .map_err(|s| ClusterError::Unavailable(format!("node {leader}: {}", s.message())))?
            .into_inner();
        if let Some(rd) = r.redirect.filter(|r| r.not_leader) {
            if rd.leader_id != 0 && rd.leader_id != leader {
                self.hint_leader(META_GROUP, rd.leader_id, Some(&rd.leader_addr));
            } else {
                self.leader_hints.write().remove(&META_GROUP);
            }
            return Err(ClusterError::NoLeader { group: META_GROUP });
        }
        if !r.error.is_empty() {
            return Err(ClusterError::Unavailable(r.error));
        }
        Ok(())
    }

    /// Sets `key` in the replicated KV store of the meta group (rule alert
    /// state); returns once committed.
    pub async fn meta_put(&self, key: String, value: Vec<u8>) -> Result<(), ClusterError> {
        self.meta_propose(MetaCommand::Put { key, value }).await
    }

    /// Reads `key` from this node's copy of the meta KV store.
    pub fn meta_get(&self, key: &str) -> Option<Vec<u8>> {
        self.meta.read().kv.get(key).cloned()
    }

    /// Stops after a storage failure ([`Node::fatal_error`]): the gRPC
    /// server and the background tasks stop and RocksDB's running
    /// background work is waited for, but nothing is checkpointed on the
    /// failing disk. Without the wait the process could abort on exit.
    pub fn halt(&self) {
        let _ = self.stop.send(true);
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        self.deps.syncer.stop();
        self.db.stop_background_work();
    }

    /// Stops every Raft group, checkpoints every shard and stops the gRPC
    /// server.
    pub async fn shutdown(&self) -> Result<(), ClusterError> {
        let _ = self.stop.send(true);
        let groups: Vec<Group> = self.groups.write().drain().map(|(_, g)| g).collect();
        let mut first_err = None;
        for g in groups {
            if let Err(e) = g.raft.shutdown().await {
                tracing::warn!(group = g.id, error = %e, "raft shutdown failed");
            }
            if let Some(s) = g.shard {
                if let Err(e) = s.checkpoint() {
                    first_err.get_or_insert(ClusterError::Internal(format!(
                        "cannot checkpoint shard {}: {e}",
                        s.id()
                    )));
                } else {
                    self.purge_checkpointed(g.id, &s);
                }
            }
        }
        // The purged entries leave the disk now rather than at some later
        // compaction: a stopped node's data dir holds data, not old log.
        if let Err(e) = self.deps.parts(crate::types::META_GROUP).0.compact_all() {
            tracing::warn!(error = %e, "cannot compact the raft log");
        }
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().drain(..).collect();
        for t in tasks {
            t.abort();
        }
        self.deps.syncer.stop();
        self.db.stop_background_work();
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Node {
    /// After a checkpoint at shutdown: the log up to the checkpointed entry
    /// is not needed for recovery any more, so it is purged (a lagging
    /// follower then catches up from a snapshot of this replica).
    fn purge_checkpointed(&self, group: GroupId, s: &storage::Shard) {
        let Some(meta) = s.user_meta() else { return };
        let Ok(meta) = serde_json::from_slice::<crate::raft::shard_sm::SmMeta>(&meta) else {
            return;
        };
        let Some(last) = meta.last_applied else {
            return;
        };
        let (log, _) = self.deps.parts(group);
        if let Err(e) = log.purge_through(last, true) {
            tracing::warn!(group, error = %e, "cannot purge the raft log at shutdown");
        }
    }

    /// A receiver that turns true when the node stops.
    pub(crate) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failure_names_every_distinct_error() {
        let f = |stopped: &[(GroupId, &str)], want: Option<&str>| {
            let got = storage_failure(stopped.iter().map(|(g, e)| (*g, e.to_string())).collect());
            let want = want.map(|w| {
                format!("storage failed: {w}; the node stops (restart it once the disk is healthy)")
            });
            assert_eq!(got, want, "{stopped:?}");
        };
        f(&[], None);
        f(&[(2, "eio")], Some("Raft group 2 stopped: eio"));
        f(
            &[(2, "previous"), (1, "eio"), (0, "eio")],
            Some("Raft groups 0, 1 stopped: eio; Raft group 2 stopped: previous"),
        );
    }
}
