//! The serving side of the membership calls: a peer's meta command (checked
//! against the cluster map first, see [`check`](super::check)), and a new
//! node's join request.

use proto::cluster as pb;
use tonic::Status;

use crate::node::Node;
use crate::tls::PeerIdentity;

/// Proposes a peer's meta command, if this node leads the meta group and
/// the command fits the cluster map.
pub(crate) async fn meta(node: &Node, command: &[u8]) -> Result<pb::MetaResponse, Status> {
    if let Some(rd) = node.redirect_unless_leader(crate::types::META_GROUP) {
        return Ok(pb::MetaResponse {
            redirect: Some(rd),
            ..Default::default()
        });
    }
    let cmd = serde_json::from_slice(command)
        .map_err(|e| Status::invalid_argument(format!("cannot decode meta command: {e}")))?;
    // A command from a peer must fit the cluster map.
    let checked = super::check::check(&node.meta(), &cmd);
    if let Err(e) = checked {
        tracing::warn!(error = %e, "refused a meta command from a peer");
        return Ok(pb::MetaResponse {
            error: format!("cannot accept the meta command: {e}"),
            ..Default::default()
        });
    }
    Ok(match node.meta_propose_local(cmd).await {
        Ok(()) => pb::MetaResponse::default(),
        Err(e) => pb::MetaResponse {
            error: e.to_string(),
            ..Default::default()
        },
    })
}

/// Admits a joining node (it may only speak for itself).
pub(crate) async fn join(
    node: &Node,
    peer: PeerIdentity,
    r: pb::JoinRequest,
) -> Result<pb::JoinResponse, Status> {
    peer.check_speaks_for(r.node_id, "join request")?;
    Ok(match node.admit(r.node_id, r.addr).await {
        Ok((members, shard_count)) => pb::JoinResponse {
            members: serde_json::to_vec(&members).map_err(|e| Status::internal(e.to_string()))?,
            shard_count,
            ..Default::default()
        },
        Err(e) => pb::JoinResponse {
            error: e.to_string(),
            ..Default::default()
        },
    })
}
