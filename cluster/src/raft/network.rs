//! Raft network client: one tonic channel per peer, shared by every group
//! (HTTP/2 multiplexes their calls); each RPC is tagged with its group id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use parking_lot::RwLock;
use proto::cluster::cluster_client::ClusterClient;
use proto::cluster::{RaftRequest, RaftResponse};
use tokio::sync::Semaphore;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::auth::ClientAuth;
use crate::raft::rpc;
use crate::types::{GroupId, NodeId, TypeConfig};

/// Largest gRPC message accepted or sent (snapshot chunks, big batches,
/// select answers), on the server and on the client.
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

/// Largest AppendEntries sent: a bigger one is split (openraft retries
/// with fewer entries when told the payload is too large).
pub const MAX_APPEND_BYTES: usize = 64 << 20;

/// Snapshot chunks sent to one peer at once, over all groups.
pub const SNAPSHOT_SENDS_PER_PEER: usize = 2;

/// A client of a peer's cluster service; every call carries the cluster
/// secret (see [`crate::auth`]).
pub type PeerClient = ClusterClient<InterceptedService<Channel, ClientAuth>>;

/// Why a peer could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Address unknown.
    #[error("no address known for node {0}")]
    UnknownNode(NodeId),
    /// Bad address.
    #[error("invalid address {addr:?} of node {node}: {msg}")]
    BadAddress {
        /// Node.
        node: NodeId,
        /// Address.
        addr: String,
        /// Cause.
        msg: String,
    },
}

/// Addresses of peers and one lazily connected channel per peer.
pub struct Router {
    me: NodeId,
    addrs: RwLock<HashMap<NodeId, String>>,
    clients: RwLock<HashMap<NodeId, (String, PeerClient)>>,
    snapshot_sends: RwLock<HashMap<NodeId, Arc<Semaphore>>>,
    timeout: Duration,
    auth: ClientAuth,
}

impl Router {
    /// The router of node `me`, with per-RPC `timeout`, whose calls carry
    /// `auth`.
    pub fn new(me: NodeId, timeout: Duration, auth: ClientAuth) -> Self {
        Router {
            me,
            addrs: RwLock::new(HashMap::new()),
            clients: RwLock::new(HashMap::new()),
            snapshot_sends: RwLock::new(HashMap::new()),
            timeout,
            auth,
        }
    }

    /// What every call of this node carries.
    pub fn auth(&self) -> &ClientAuth {
        &self.auth
    }

    /// The limit of snapshot chunks in flight to `node`.
    fn snapshot_sends(&self, node: NodeId) -> Arc<Semaphore> {
        if let Some(s) = self.snapshot_sends.read().get(&node) {
            return s.clone();
        }
        self.snapshot_sends
            .write()
            .entry(node)
            .or_insert_with(|| Arc::new(Semaphore::new(SNAPSHOT_SENDS_PER_PEER)))
            .clone()
    }

    /// Records (or changes) the address of `node`.
    pub fn set_addr(&self, node: NodeId, addr: String) {
        self.addrs.write().insert(node, addr);
    }

    /// The known address of `node`.
    pub fn addr(&self, node: NodeId) -> Option<String> {
        self.addrs.read().get(&node).cloned()
    }

    /// Per-RPC timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The shared client of `node` (dialled lazily on first use).
    pub fn client(&self, node: NodeId) -> Result<PeerClient, PeerError> {
        let addr = self.addr(node).ok_or(PeerError::UnknownNode(node))?;
        self.client_at(node, &addr)
    }

    /// The shared client of `node` at `addr` (replacing a stale address).
    pub fn client_at(&self, node: NodeId, addr: &str) -> Result<PeerClient, PeerError> {
        if let Some((a, c)) = self.clients.read().get(&node) {
            if a == addr {
                return Ok(c.clone());
            }
        }
        let c = connect_lazy(addr, self.timeout, &self.auth, Some(node)).map_err(|msg| {
            PeerError::BadAddress {
                node,
                addr: addr.to_string(),
                msg,
            }
        })?;
        self.clients
            .write()
            .insert(node, (addr.to_string(), c.clone()));
        Ok(c)
    }
}

/// A lazily connecting client for node `target` (`None`: any member) at
/// `addr` (`host:port`) whose calls carry `auth`: over mutual TLS when
/// `auth` has a certificate, and then only to a server whose certificate
/// names `target` (see [`crate::tls`]).
pub fn connect_lazy(
    addr: &str,
    timeout: Duration,
    auth: &ClientAuth,
    target: Option<NodeId>,
) -> Result<PeerClient, String> {
    let host = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr);
    let scheme = if auth.tls().is_some() {
        "https"
    } else {
        "http"
    };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{host}")).map_err(|e| e.to_string())?;
    if let Some(tls) = auth.tls() {
        ep = ep
            .tls_config(tls.client_config(target))
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
    }
    let ep = ep
        .connect_timeout(Duration::from_secs(2).min(timeout))
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(
        ClusterClient::with_interceptor(ep.connect_lazy(), auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}

/// Creates the per-target network clients of one group.
#[derive(Clone)]
pub struct GroupNetworkFactory {
    group: GroupId,
    router: Arc<Router>,
}

impl GroupNetworkFactory {
    /// The factory of `group`.
    pub fn new(group: GroupId, router: Arc<Router>) -> Self {
        GroupNetworkFactory { group, router }
    }
}

impl RaftNetworkFactory<TypeConfig> for GroupNetworkFactory {
    type Network = GroupNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        GroupNetwork {
            group: self.group,
            target,
            addr: node.addr.clone(),
            router: self.router.clone(),
        }
    }
}

/// Sends one group's RPCs to one target.
pub struct GroupNetwork {
    group: GroupId,
    target: NodeId,
    addr: String,
    router: Arc<Router>,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl GroupNetwork {
    async fn call<E>(
        &self,
        mut req: RaftRequest,
        option: &RPCOption,
    ) -> Result<RaftResponse, RpcErr<E>>
    where
        E: std::error::Error,
    {
        req.from_node = self.router.me;
        let mut client = self
            .router
            .client_at(self.target, &self.addr)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let mut r = tonic::Request::new(req);
        r.set_timeout(option.hard_ttl().min(self.router.timeout()));
        let resp = client
            .raft(r)
            .await
            .map_err(|s| RPCError::Network(NetworkError::new(&s)))?
            .into_inner();
        if !resp.error.is_empty() {
            let e = std::io::Error::other(resp.error);
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        }
        Ok(resp)
    }

    fn decode<T, E>(&self, resp: &RaftResponse) -> Result<T, RpcErr<E>>
    where
        T: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let r: Result<T, RaftError<NodeId, E>> = rpc::decode_reply(&resp.payload)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for GroupNetwork {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let wire = rpc::encode_append(self.group, &req);
        let bytes: usize = wire.entries.iter().map(Vec::len).sum();
        if bytes > MAX_APPEND_BYTES && wire.entries.len() > 1 {
            // Fewer entries next time, so the peer's size cap is never hit.
            let fit = wire.entries.len() * MAX_APPEND_BYTES / bytes;
            let hint = u64::try_from(fit.max(1)).unwrap_or(1);
            return Err(PayloadTooLarge::new_entries_hint(hint).into());
        }
        let resp = self.call(wire, &option).await?;
        self.decode(&resp)
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        // Every group of this node shares the per-peer limit, so a peer
        // that needs many shards gets them a few chunks at a time.
        let ttl = option.hard_ttl().min(self.router.timeout());
        let sends = self.router.snapshot_sends(self.target);
        let _permit = match tokio::time::timeout(ttl, sends.acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                let e = std::io::Error::other(format!(
                    "{SNAPSHOT_SENDS_PER_PEER} snapshot chunks already in flight to node {}",
                    self.target
                ));
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
        };
        let resp = self
            .call(rpc::encode_snapshot(self.group, &req), &option)
            .await?;
        self.decode(&resp)
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        let resp = self
            .call(rpc::encode_vote(self.group, &req), &option)
            .await?;
        self.decode(&resp)
    }
}
