//! The server side of the Raft RPCs: a peer's message is decoded, checked
//! by the [`guard`](super::guard) against the group's membership (and, with
//! TLS, against the sender's certificate), and handed to the group's
//! openraft instance.

use proto::cluster as pb;
use tonic::Status;

use crate::node::Node;
use crate::raft::guard::{Refusal, SnapshotStreams};
use crate::raft::rpc;
use crate::tls::PeerIdentity;

/// Handles one Raft RPC for the group it names.
pub(crate) async fn serve(
    node: &Node,
    snapshots: &SnapshotStreams,
    peer: PeerIdentity,
    mut req: pb::RaftRequest,
) -> Result<pb::RaftResponse, Status> {
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
            node.disk()
                .check()
                .map_err(|e| Status::unavailable(e.to_string()))?;
            let id = &r.meta.snapshot_id;
            match snapshots.accept(g.id, id, r.offset, r.data.len()) {
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
