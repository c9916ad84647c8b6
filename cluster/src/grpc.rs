//! The node-to-node gRPC service: Raft RPCs dispatched to the group named in
//! each request, forwarded writes, per-shard reads, meta commands, health.

use std::sync::{Arc, Weak};

use model::Matcher;
use proto::cluster as pb;
use proto::cluster::cluster_server::Cluster;
use tonic::{Request, Response, Status};

use crate::convert::{labels_to_pb, matchers_from_pb};
use crate::error::{ClusterError, ErrorKind};
use crate::node::Node;
use crate::raft::group::Group;
use crate::raft::guard::{Refusal, SnapshotStreams};
use crate::raft::rpc;
use crate::read::{read_local, tsdb_to_pb, ReadOp, ReadOut};
use crate::tls::PeerIdentity;
use crate::types::{shard_group, GroupId};
use crate::write::propose::ProposeError;

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
        Ok(PeerIdentity::of(r, self.node()?.cfg.tls.is_some()))
    }
}

/// A redirect when this node does not lead `g` (None when it does).
fn redirect(node: &Node, g: GroupId) -> Option<pb::Redirect> {
    let leader = node.group(g).and_then(|x| x.leader());
    if leader == Some(node.id()) {
        return None;
    }
    let l = leader.unwrap_or(0);
    Some(pb::Redirect {
        not_leader: true,
        leader_id: l,
        leader_addr: node.deps.router.addr(l).unwrap_or_default(),
    })
}

fn kind_pb(k: ErrorKind) -> pb::ErrorKind {
    match k {
        ErrorKind::BadData => pb::ErrorKind::BadData,
        ErrorKind::Overloaded => pb::ErrorKind::Overloaded,
        ErrorKind::NoLeader => pb::ErrorKind::NoLeader,
        ErrorKind::Unavailable => pb::ErrorKind::Unavailable,
        ErrorKind::Internal => pb::ErrorKind::Internal,
    }
}

impl Service {
    async fn raft_call(
        &self,
        peer: PeerIdentity,
        mut req: pb::RaftRequest,
    ) -> Result<pb::RaftResponse, Status> {
        let node = self.node()?;
        // With TLS the sender is the node its certificate names; the
        // guard then holds the message's vote and leadership to it.
        peer.check_speaks_for(req.from_node, "raft message")?;
        // Votes reach any hosted group; entries and snapshots only a
        // replica the cluster map gives this node (see `group_for_log`).
        let group = match pb::RaftKind::try_from(req.kind) {
            Ok(pb::RaftKind::Vote) => node.group(req.group_id),
            _ => node.group_for_log(req.group_id),
        };
        let Some(g) = group else {
            return Ok(pb::RaftResponse {
                payload: Vec::new(),
                error: format!("node {} does not host group {}", node.id(), req.group_id),
            });
        };
        let bad = |e: rpc::RpcDecodeError| Status::invalid_argument(e.to_string());
        let view = node.raft_view(&g);
        let from = req.from_node;
        let refused = |e: Refusal| {
            tracing::warn!(group = g.id, from, error = %e, "refused a raft message");
            Status::permission_denied(format!("cannot accept the raft message: {e}"))
        };
        let payload = match pb::RaftKind::try_from(req.kind) {
            Ok(pb::RaftKind::AppendEntries) => {
                let r = rpc::decode_append(&req).map_err(bad)?;
                view.check_append(from, &r).map_err(refused)?;
                let reply: rpc::AppendReply = g.raft.append_entries(r).await;
                rpc::encode_reply(&reply)
            }
            Ok(pb::RaftKind::Vote) => {
                let r = rpc::decode_vote(&req).map_err(bad)?;
                view.check_vote(from, &r).map_err(refused)?;
                let reply: rpc::VoteReply = g.raft.vote(r).await;
                rpc::encode_reply(&reply)
            }
            Ok(pb::RaftKind::InstallSnapshot) => {
                let r = rpc::decode_snapshot(&mut req).map_err(bad)?;
                view.check_snapshot(from, &r).map_err(refused)?;
                // A snapshot is received into a file: not while the disk is
                // nearly full (the sender retries later).
                node.disk
                    .check()
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                let id = &r.meta.snapshot_id;
                match self.snapshots.accept(g.id, id, r.offset, r.data.len()) {
                    Ok(()) => {}
                    // The sender starts the stream over, as after a restart.
                    Err(Refusal::SnapshotGap { .. }) => {
                        return Ok(pb::RaftResponse {
                            payload: rpc::encode_reply(&rpc::snapshot_mismatch(&r)),
                            error: String::new(),
                        })
                    }
                    Err(e) => return Err(refused(e)),
                }
                let reply: rpc::SnapshotReply = g.raft.install_snapshot(r).await;
                rpc::encode_reply(&reply)
            }
            _ => return Err(Status::invalid_argument("unknown raft rpc kind")),
        };
        Ok(pb::RaftResponse {
            payload,
            error: String::new(),
        })
    }

    async fn write_call(
        &self,
        req: pb::ShardWriteRequest,
    ) -> Result<pb::ShardWriteResponse, Status> {
        let node = self.node()?;
        let g = shard_group(req.shard);
        let fail = |e: ClusterError| pb::ShardWriteResponse {
            error: e.to_string(),
            error_kind: kind_pb(e.kind()) as i32,
            ..Default::default()
        };
        if let Some(rd) = redirect(&node, g) {
            return Ok(pb::ShardWriteResponse {
                redirect: Some(rd),
                ..Default::default()
            });
        }
        let Some(p) = node.group(g).and_then(|x: Group| x.proposer) else {
            return Ok(fail(ClusterError::NoLeader { group: g }));
        };
        if let Err(e) = node.check_storage() {
            return Ok(fail(e));
        }
        // Bytes from a peer: checked whole before they reach the log.
        match storage::BatchView::check(&req.batch) {
            Ok(_) => {}
            Err(e) => {
                return Ok(fail(ClusterError::BadData(format!(
                    "cannot decode batch: {e}"
                ))))
            }
        }
        if !matches!(
            storage::BatchView::open(&req.batch),
            Ok(storage::BatchView::Samples(_))
        ) {
            return Ok(fail(ClusterError::BadData(
                "only samples can be forwarded".into(),
            )));
        }
        match p.write(req.batch).await {
            Ok(o) => Ok(pb::ShardWriteResponse {
                accepted: o.accepted,
                series_ids: o.series_ids.iter().map(|i| i.unwrap_or(0)).collect(),
                unknown: o.unknown.iter().map(|&i| i as u64).collect(),
                rejections: o
                    .rejected
                    .into_iter()
                    .map(crate::convert::rejection_to_pb)
                    .collect(),
                ..Default::default()
            }),
            Err(ProposeError::NotLeader(l)) => Ok(pb::ShardWriteResponse {
                redirect: Some(pb::Redirect {
                    not_leader: true,
                    leader_id: l.as_ref().map(|x| x.0).unwrap_or(0),
                    leader_addr: l.map(|x| x.1).unwrap_or_default(),
                }),
                ..Default::default()
            }),
            Err(ProposeError::Overloaded) => Ok(fail(ClusterError::Overloaded(format!(
                "the write queue of shard {} is full",
                req.shard
            )))),
            Err(ProposeError::Failed(e)) => Ok(fail(ClusterError::Unavailable(e))),
        }
    }

    /// Runs a read on the local leader replica of `shard`.
    async fn local_read(
        &self,
        shard: u32,
        op: ReadOp,
        ms: &[pb::Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Result<ReadOut, pb::Redirect>, ClusterError> {
        let node = self
            .node()
            .map_err(|s| ClusterError::Unavailable(s.message().into()))?;
        let g = shard_group(shard);
        if let Some(rd) = redirect(&node, g) {
            return Ok(Err(rd));
        }
        let ms: Vec<Matcher> = matchers_from_pb(ms)?;
        let Some(st) = node.group(g).and_then(|x| x.shard) else {
            return Err(ClusterError::NoLeader { group: g });
        };
        let out = tokio::task::spawn_blocking(move || read_local(&st, &op, &ms, min_t, max_t))
            .await
            .map_err(ClusterError::internal)?
            .map_err(|e| ClusterError::Internal(e.to_string()))?;
        Ok(Ok(out))
    }
}

#[tonic::async_trait]
impl Cluster for Service {
    async fn raft(
        &self,
        r: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftResponse>, Status> {
        let peer = self.peer(&r)?;
        self.raft_call(peer, r.into_inner())
            .await
            .map(Response::new)
    }

    async fn write(
        &self,
        r: Request<pb::ShardWriteRequest>,
    ) -> Result<Response<pb::ShardWriteResponse>, Status> {
        self.write_call(r.into_inner()).await.map(Response::new)
    }

    async fn select(
        &self,
        r: Request<pb::SelectRequest>,
    ) -> Result<Response<pb::SelectResponse>, Status> {
        // The caller's deadline (tonic sends it as `grpc-timeout`): the
        // shard read stops there too, not only this handler.
        let deadline = request_deadline(r.metadata());
        let r = r.into_inner();
        let res = self.local_read(
            r.shard,
            ReadOp::SelectChunks(deadline),
            &r.matchers,
            r.min_t,
            r.max_t,
        );
        let out = match res.await {
            Ok(Ok(ReadOut::Chunks(v))) => pb::SelectResponse {
                series: v
                    .into_iter()
                    .map(|s| pb::SeriesChunks {
                        labels: labels_to_pb(&s.labels),
                        chunks: s
                            .chunks
                            .into_iter()
                            .map(|c| pb::Chunk {
                                min_t: c.min_t,
                                max_t: c.max_t,
                                data: c.data,
                            })
                            .collect(),
                    })
                    .collect(),
                ..Default::default()
            },
            Ok(Ok(_)) => pb::SelectResponse {
                error: "invariant broken: select returned another shape".into(),
                ..Default::default()
            },
            Ok(Err(rd)) => pb::SelectResponse {
                redirect: Some(rd),
                ..Default::default()
            },
            Err(e) => pb::SelectResponse {
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(out))
    }

    async fn label_names(
        &self,
        r: Request<pb::LabelsRequest>,
    ) -> Result<Response<pb::LabelsResponse>, Status> {
        let r = r.into_inner();
        Ok(Response::new(
            self.labels_reply(r.shard, ReadOp::LabelNames, &r).await,
        ))
    }

    async fn label_values(
        &self,
        r: Request<pb::LabelsRequest>,
    ) -> Result<Response<pb::LabelsResponse>, Status> {
        let r = r.into_inner();
        let op = ReadOp::LabelValues(r.name.clone());
        Ok(Response::new(self.labels_reply(r.shard, op, &r).await))
    }

    async fn tsdb_stats(
        &self,
        r: Request<pb::TsdbStatsRequest>,
    ) -> Result<Response<pb::TsdbStatsResponse>, Status> {
        let r = r.into_inner();
        let out = match self.local_read(r.shard, ReadOp::TsdbStats, &[], 0, 0).await {
            Ok(Ok(ReadOut::Tsdb(st))) => tsdb_to_pb(st),
            Ok(Ok(_)) => pb::TsdbStatsResponse {
                error: "invariant broken: tsdb stats returned another shape".into(),
                ..Default::default()
            },
            Ok(Err(rd)) => pb::TsdbStatsResponse {
                redirect: Some(rd),
                ..Default::default()
            },
            Err(e) => pb::TsdbStatsResponse {
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(out))
    }

    async fn series(
        &self,
        r: Request<pb::SelectRequest>,
    ) -> Result<Response<pb::SeriesResponse>, Status> {
        let r = r.into_inner();
        let out = match self
            .local_read(r.shard, ReadOp::Series, &r.matchers, r.min_t, r.max_t)
            .await
        {
            Ok(Ok(ReadOut::Labels(v))) => pb::SeriesResponse {
                series: v
                    .iter()
                    .map(|l| pb::SeriesLabels {
                        labels: labels_to_pb(l),
                    })
                    .collect(),
                ..Default::default()
            },
            Ok(Ok(_)) => pb::SeriesResponse {
                error: "invariant broken: series read returned another shape".into(),
                ..Default::default()
            },
            Ok(Err(rd)) => pb::SeriesResponse {
                redirect: Some(rd),
                ..Default::default()
            },
            Err(e) => pb::SeriesResponse {
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(out))
    }

    async fn meta(
        &self,
        r: Request<pb::MetaRequest>,
    ) -> Result<Response<pb::MetaResponse>, Status> {
        let node = self.node()?;
        if let Some(rd) = redirect(&node, crate::types::META_GROUP) {
            return Ok(Response::new(pb::MetaResponse {
                redirect: Some(rd),
                ..Default::default()
            }));
        }
        let cmd = serde_json::from_slice(&r.into_inner().command)
            .map_err(|e| Status::invalid_argument(format!("cannot decode meta command: {e}")))?;
        // A command from a peer must fit the cluster map (see `meta_check`).
        let checked = crate::membership::check::check(&node.meta.read(), &cmd);
        if let Err(e) = checked {
            tracing::warn!(error = %e, "refused a meta command from a peer");
            return Ok(Response::new(pb::MetaResponse {
                error: format!("cannot accept the meta command: {e}"),
                ..Default::default()
            }));
        }
        let out = match node.meta_propose_local(cmd).await {
            Ok(()) => pb::MetaResponse::default(),
            Err(e) => pb::MetaResponse {
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(out))
    }

    async fn join(
        &self,
        r: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let node = self.node()?;
        let peer = self.peer(&r)?;
        let r = r.into_inner();
        peer.check_speaks_for(r.node_id, "join request")?;
        let out = match node.admit(r.node_id, r.addr).await {
            Ok((members, shard_count)) => pb::JoinResponse {
                members: serde_json::to_vec(&members)
                    .map_err(|e| Status::internal(e.to_string()))?,
                shard_count,
                ..Default::default()
            },
            Err(e) => pb::JoinResponse {
                error: e.to_string(),
                ..Default::default()
            },
        };
        Ok(Response::new(out))
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

impl Service {
    async fn labels_reply(
        &self,
        shard: u32,
        op: ReadOp,
        r: &pb::LabelsRequest,
    ) -> pb::LabelsResponse {
        match self
            .local_read(shard, op, &r.matchers, r.min_t, r.max_t)
            .await
        {
            Ok(Ok(ReadOut::Strings(values))) => pb::LabelsResponse {
                values,
                ..Default::default()
            },
            Ok(Ok(_)) => pb::LabelsResponse {
                error: "invariant broken: label read returned another shape".into(),
                ..Default::default()
            },
            Ok(Err(rd)) => pb::LabelsResponse {
                redirect: Some(rd),
                ..Default::default()
            },
            Err(e) => pb::LabelsResponse {
                error: e.to_string(),
                ..Default::default()
            },
        }
    }
}

/// The deadline a caller set with the `grpc-timeout` header (an integer of
/// at most 8 digits and a unit: `H`, `M`, `S`, `m`, `u`, `n`), if any.
fn request_deadline(md: &tonic::metadata::MetadataMap) -> Option<std::time::Instant> {
    let v = md.get("grpc-timeout")?.to_str().ok()?;
    let split = v.len().checked_sub(1)?;
    let (digits, unit) = v.split_at(split);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let d = match unit {
        "H" => std::time::Duration::from_secs(n.checked_mul(3600)?),
        "M" => std::time::Duration::from_secs(n.checked_mul(60)?),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    };
    std::time::Instant::now().checked_add(d)
}

#[cfg(test)]
mod deadline_tests {
    use super::request_deadline;
    use std::time::{Duration, Instant};

    fn md(v: &str) -> tonic::metadata::MetadataMap {
        let mut m = tonic::metadata::MetadataMap::new();
        m.insert("grpc-timeout", v.parse().unwrap());
        m
    }

    #[test]
    fn grpc_timeout_becomes_a_deadline() {
        let now = Instant::now();
        let d = request_deadline(&md("250m")).unwrap();
        assert!(d >= now + Duration::from_millis(250));
        assert!(d <= Instant::now() + Duration::from_millis(250));
        let d = request_deadline(&md("2S")).unwrap();
        assert!(d >= now + Duration::from_secs(2));
        for bad in ["", "m", "12x", "123456789m", "-1m", "1.5S"] {
            assert!(request_deadline(&md(bad)).is_none(), "{bad:?}");
        }
        assert!(request_deadline(&tonic::metadata::MetadataMap::new()).is_none());
    }
}
