//! The receiving side of forwarded writes: a peer sends shards' encoded
//! batches to this node, which leads the shards (or answers with a
//! redirect); the bytes are checked whole before they are proposed.

use proto::cluster as pb;

use crate::error::ClusterError;
use crate::node::Node;
use crate::raft::group::Group;
use crate::types::shard_group;
use crate::write::propose::ProposeError;

/// Proposes the batches forwarded by a peer, all at once, and answers
/// with their outcomes in order. More batches than the cluster has shards
/// are refused whole.
pub(crate) async fn serve_write(
    node: &Node,
    req: pb::WriteRequest,
) -> Result<pb::WriteResponse, tonic::Status> {
    if req.batches.len() > node.shard_count() as usize {
        return Err(tonic::Status::invalid_argument(format!(
            "{} batches in one write; the cluster has {} shards",
            req.batches.len(),
            node.shard_count()
        )));
    }
    let answers =
        futures::future::join_all(req.batches.into_iter().map(|b| serve_forwarded(node, b))).await;
    Ok(pb::WriteResponse { answers })
}

/// Proposes one batch forwarded by a peer and answers with its outcome.
async fn serve_forwarded(node: &Node, req: pb::ShardWriteRequest) -> pb::ShardWriteResponse {
    let g = shard_group(req.shard);
    let fail = |e: ClusterError| pb::ShardWriteResponse {
        error: e.to_string(),
        error_kind: crate::convert::kind_to_pb(e.kind()) as i32,
        ..Default::default()
    };
    if let Some(rd) = node.redirect_unless_leader(g) {
        return pb::ShardWriteResponse {
            redirect: Some(rd),
            ..Default::default()
        };
    }
    let Some(p) = node.group(g).and_then(|x: Group| x.proposer) else {
        return fail(ClusterError::NoLeader { group: g });
    };
    if let Err(e) = node.check_storage() {
        return fail(e);
    }
    // Bytes from a peer: checked whole before they reach the log.
    match storage::BatchView::check(&req.batch) {
        Ok(_) => {}
        Err(e) => return fail(ClusterError::BadData(format!("cannot decode batch: {e}"))),
    }
    if !matches!(
        storage::BatchView::open(&req.batch),
        Ok(storage::BatchView::Samples(_))
    ) {
        return fail(ClusterError::BadData(
            "only samples can be forwarded".into(),
        ));
    }
    match p.write(req.batch).await {
        Ok(o) => pb::ShardWriteResponse {
            accepted: o.accepted,
            series_ids: o.series_ids.iter().map(|i| i.unwrap_or(0)).collect(),
            unknown: o.unknown.iter().map(|&i| i as u64).collect(),
            rejections: o
                .rejected
                .into_iter()
                .map(crate::convert::rejection_to_pb)
                .collect(),
            ..Default::default()
        },
        Err(ProposeError::NotLeader(l)) => pb::ShardWriteResponse {
            redirect: Some(pb::Redirect {
                not_leader: true,
                leader_id: l.as_ref().map(|x| x.0).unwrap_or(0),
                leader_addr: l.map(|x| x.1).unwrap_or_default(),
            }),
            ..Default::default()
        },
        Err(ProposeError::Overloaded) => fail(ClusterError::Overloaded(format!(
            "the write queue of shard {} is full",
            req.shard
        ))),
        Err(ProposeError::Failed(e)) => fail(ClusterError::Unavailable(e)),
    }
}
