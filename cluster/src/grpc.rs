//! The node-to-node gRPC service, a thin dispatcher: each call goes to the
//! operation that serves it, [`raft::serve`](crate::raft::serve) for Raft
//! RPCs, [`write::serve`](crate::write::serve) for forwarded writes,
//! [`read::serve`](crate::read::serve) for reads and
//! [`membership::serve`](crate::membership::serve) for meta commands and
//! joins.

use std::sync::{Arc, Weak};

use proto::cluster as pb;
use proto::cluster::cluster_server::Cluster;
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::raft::guard::SnapshotStreams;
use crate::read::serve as read;
use crate::tls::PeerIdentity;

/// The service; holds the node weakly so dropping the node stops it.
pub struct Service {
    node: Weak<Node>,
    snapshots: SnapshotStreams,
}

impl Service {
    /// A service for `node`.
    pub fn new(node: Weak<Node>) -> Self {
        Service {
            node,
            snapshots: SnapshotStreams::default(),
        }
    }

    fn node(&self) -> Result<Arc<Node>, Status> {
        self.node
            .upgrade()
            .ok_or_else(|| Status::unavailable("node is shutting down"))
    }

    /// Who sent `r`, as far as the transport proves it.
    fn peer<T>(&self, r: &Request<T>) -> Result<PeerIdentity, Status> {
        Ok(PeerIdentity::of(r, self.node()?.cfg().tls.is_some()))
    }
}

#[tonic::async_trait]
impl Cluster for Service {
    async fn raft(
        &self,
        r: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftResponse>, Status> {
        let peer = self.peer(&r)?;
        let node = self.node()?;
        crate::raft::serve::serve(&node, &self.snapshots, peer, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn write(
        &self,
        r: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let node = self.node()?;
        crate::write::serve::serve_write(&node, r.into_inner())
            .await
            .map(Response::new)
    }

    type ReadStream = read::ReadStream;

    async fn read(
        &self,
        r: Request<pb::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let node = self.node()?;
        // The caller's deadline (tonic sends it as `grpc-timeout`): the
        // shard reads stop there too, not only this handler.
        let deadline = read::request_deadline(r.metadata());
        read::read(&node, deadline, r.into_inner()).map(Response::new)
    }

    async fn meta(
        &self,
        r: Request<pb::MetaRequest>,
    ) -> Result<Response<pb::MetaResponse>, Status> {
        let node = self.node()?;
        crate::membership::serve::meta(&node, &r.into_inner().command)
            .await
            .map(Response::new)
    }

    async fn join(
        &self,
        r: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let node = self.node()?;
        let peer = self.peer(&r)?;
        crate::membership::serve::join(&node, peer, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn change_replicas(
        &self,
        r: Request<pb::ChangeReplicasRequest>,
    ) -> Result<Response<pb::ChangeReplicasResponse>, Status> {
        let node = self.node()?;
        let r = r.into_inner();
        Ok(Response::new(
            node.change_replicas(r.shard, r.add, &r.add_addr, r.remove)
                .await,
        ))
    }

    async fn health(
        &self,
        _r: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let node = self.node()?;
        Ok(Response::new(pb::HealthResponse {
            node_id: node.id(),
            ready: node.is_ready(),
            meta_applied: node.meta_applied(),
        }))
    }
}
