//! Raft network client: one tonic channel per peer, shared by every group
//! (HTTP/2 multiplexes their calls); each RPC is tagged with its group id.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
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
use tonic::transport::{Channel, Endpoint};

use crate::rpc;
use crate::types::{GroupId, NodeId, TypeConfig};

/// Largest gRPC message accepted or sent (snapshot chunks, big batches).
pub const MAX_MESSAGE_BYTES: usize = 256 << 20;

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
    addrs: RwLock<HashMap<NodeId, String>>,
    clients: RwLock<HashMap<NodeId, (String, ClusterClient<Channel>)>>,
    timeout: Duration,
}

impl Router {
    /// A router with per-RPC `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Router {
            addrs: RwLock::new(HashMap::new()),
            clients: RwLock::new(HashMap::new()),
            timeout,
        }
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
    pub fn client(&self, node: NodeId) -> Result<ClusterClient<Channel>, PeerError> {
        let addr = self.addr(node).ok_or(PeerError::UnknownNode(node))?;
        self.client_at(node, &addr)
    }

    /// The shared client of `node` at `addr` (replacing a stale address).
    pub fn client_at(&self, node: NodeId, addr: &str) -> Result<ClusterClient<Channel>, PeerError> {
        if let Some((a, c)) = self.clients.read().get(&node) {
            if a == addr {
                return Ok(c.clone());
            }
        }
        let c = connect_lazy(addr, self.timeout).map_err(|msg| PeerError::BadAddress {
            node,
            addr: addr.to_string(),
            msg,
        })?;
        self.clients
            .write()
            .insert(node, (addr.to_string(), c.clone()));
        Ok(c)
    }
}

/// A lazily connecting client for `addr` (`host:port`).
pub fn connect_lazy(addr: &str, timeout: Duration) -> Result<ClusterClient<Channel>, String> {
    let uri = if addr.starts_with("http://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    let ep = Endpoint::from_shared(uri)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(2).min(timeout))
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(ClusterClient::new(ep.connect_lazy())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
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
    async fn call<E>(&self, req: RaftRequest, option: &RPCOption) -> Result<RaftResponse, RpcErr<E>>
    where
        E: std::error::Error,
    {
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
        let resp = self
            .call(rpc::encode_append(self.group, &req), &option)
            .await?;
        self.decode(&resp)
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
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
